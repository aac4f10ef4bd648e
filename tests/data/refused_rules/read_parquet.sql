-- expect-error: FILE:7: table function `read_parquet` is not allowed
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
SELECT time, event_id
FROM read_parquet('/etc/shadow.parquet')

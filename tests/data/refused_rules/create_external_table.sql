-- expect-error: FILE:6: rules are read-only queries; CREATE EXTERNAL TABLE is not allowed
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/'

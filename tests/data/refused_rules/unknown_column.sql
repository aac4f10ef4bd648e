-- expect-error: FILE:6: the query does not plan
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
SELECT time, event_id FROM events WHERE no_such_column = 1

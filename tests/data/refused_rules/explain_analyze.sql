-- expect-error: FILE:6: rules are queries; EXPLAIN is not allowed
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
EXPLAIN ANALYZE SELECT time, event_id FROM events

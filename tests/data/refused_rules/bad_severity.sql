-- expect-error: FILE:4: severity `severe` is not one of
-- id: bad
-- title: Bad
-- severity: severe
-- criteria: CC7.2
SELECT time, event_id FROM events

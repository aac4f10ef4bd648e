-- expect-error: FILE:6: the query must return `event_id`
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
SELECT time, actor_user FROM events

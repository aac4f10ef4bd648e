-- expect-error: FILE:7: function `read_text` reads files
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
SELECT time, event_id,
  read_text('/etc/passwd') AS x FROM events

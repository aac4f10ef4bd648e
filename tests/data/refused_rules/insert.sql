-- expect-error: FILE:6: rules are read-only queries; `INSERT INTO ...` is not allowed
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
INSERT INTO events SELECT * FROM events

-- expect-error: FILE:6: rules are read-only queries; `DROP TABLE ...` is not allowed
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
DROP TABLE events

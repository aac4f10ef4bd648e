-- expect-error: FILE:6: rules are read-only queries; COPY is not allowed
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
COPY (SELECT * FROM events) TO '/tmp/stolen.csv'

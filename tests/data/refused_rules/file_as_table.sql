-- expect-error: FILE:6: unknown table `'/etc/passwd'` (rules cannot read files or other catalogs)
-- id: bad
-- title: Bad
-- severity: low
-- criteria: CC7.2
SELECT * FROM '/etc/passwd'

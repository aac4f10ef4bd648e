-- id: web_scanner_burst
-- title: Scanner burst: many different missing paths requested by one client
-- severity: low
-- criteria: CC7.1, CC7.2
-- tags: web, reconnaissance
-- kind: threshold
-- key: src_ip
-- window: 5m
-- threshold: 25
-- distinct: http_path
-- description: Twenty-five or more different paths answered 404 for one client within five minutes: a scanner
-- description: enumerating admin panels, backups and known vulnerable files.
-- remediation: Block the client at the edge; make sure none of the probed paths exists.
SELECT time, event_id, src_ip, http_path, user_agent
FROM events
WHERE source = 'web.access'
  AND http_status = 404
  AND src_ip IS NOT NULL
  AND http_path IS NOT NULL

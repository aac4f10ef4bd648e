-- id: web_auth_failure_storm
-- title: Storm of 401/403 answers to one client
-- severity: medium
-- criteria: CC6.1, CC7.2
-- tags: web, brute-force
-- kind: threshold
-- key: src_ip
-- window: 5m
-- threshold: 20
-- description: Twenty or more requests answered 401 or 403 for one client address within five minutes:
-- description: credential guessing or forced browsing of protected areas.
-- remediation: Rate-limit or block the client; check the targeted accounts for successful logins.
SELECT time, event_id, src_ip, http_status, user_agent
FROM events
WHERE source = 'web.access'
  AND http_status IN (401, 403)
  AND src_ip IS NOT NULL

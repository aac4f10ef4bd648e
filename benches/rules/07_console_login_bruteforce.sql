-- id: 07_console_login_bruteforce
-- title: Console login brute force from one address
-- severity: high
-- criteria: CC6.1
-- kind: threshold
-- key: address
-- window: 5m
-- windowing: tumbling
-- threshold: 5
-- description: ../shared/bench/rules/07: one alert per (sourceIPAddress, epoch-aligned 5-minute window) with at
-- description: least 5 failed ConsoleLogin events.
SELECT time, event_id, coalesce(src_ip, json_get_str(attrs, 'sourceIPAddress')) AS address
FROM events
WHERE activity = 'ConsoleLogin'
  AND json_get_str(attrs, 'errorMessage') = 'Failed authentication'

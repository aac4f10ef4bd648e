-- id: 08_secret_read_burst
-- title: Burst of secret reads by one principal
-- severity: high
-- criteria: C1.1
-- kind: threshold
-- key: principal
-- window: 5m
-- windowing: tumbling
-- threshold: 20
-- description: ../shared/bench/rules/08: one alert per (principal ARN, epoch-aligned 5-minute window) with at
-- description: least 20 GetSecretValue calls.
SELECT time, event_id, json_get_str(attrs, 'userIdentity', 'arn') AS principal
FROM events
WHERE json_get_str(attrs, 'eventSource') = 'secretsmanager.amazonaws.com'
  AND activity = 'GetSecretValue'

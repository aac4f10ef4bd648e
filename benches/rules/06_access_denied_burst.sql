-- id: 06_access_denied_burst
-- title: Burst of denied API calls by one principal
-- severity: medium
-- criteria: CC7.2
-- kind: threshold
-- key: principal
-- window: 5m
-- windowing: tumbling
-- threshold: 10
-- description: ../shared/bench/rules/06: one alert per (principal ARN, epoch-aligned 5-minute window) with at
-- description: least 10 calls failing with AccessDenied / UnauthorizedOperation.
SELECT time, event_id, json_get_str(attrs, 'userIdentity', 'arn') AS principal
FROM events
WHERE json_get_str(attrs, 'errorCode') IN ('AccessDenied', 'UnauthorizedOperation', 'Client.UnauthorizedOperation')

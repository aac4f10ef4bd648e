-- id: 03_root_account_usage
-- title: Root account used
-- severity: high
-- criteria: CC6.1
-- description: ../shared/bench/rules/03: one alert per call made as root (AWS service events excluded).
SELECT time, event_id, activity, cloud_account, src_ip, user_agent
FROM events
WHERE actor_type = 'Root'
  AND json_get_str(attrs, 'eventType') <> 'AwsServiceEvent'

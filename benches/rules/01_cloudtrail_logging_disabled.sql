-- id: 01_cloudtrail_logging_disabled
-- title: CloudTrail logging stopped or trail deleted
-- severity: high
-- criteria: CC7.2
-- description: ../shared/bench/rules/01, on the canonical schema: one alert per StopLogging / DeleteTrail call,
-- description: failed attempts included.
SELECT time, event_id, activity, actor_user, src_ip, json_get_str(attrs, 'requestParameters', 'name') AS trail
FROM events
WHERE json_get_str(attrs, 'eventSource') = 'cloudtrail.amazonaws.com'
  AND activity IN ('StopLogging', 'DeleteTrail')

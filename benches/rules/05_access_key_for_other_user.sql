-- id: 05_access_key_for_other_user
-- title: Access key created for another user
-- severity: high
-- criteria: CC6.2
-- description: ../shared/bench/rules/05: one alert per successful CreateAccessKey whose requestParameters.userName
-- description: is not the caller's own userName (a caller without one, such as an assumed role, always counts).
SELECT time, event_id, actor_user, target_user, src_ip
FROM events
WHERE json_get_str(attrs, 'eventSource') = 'iam.amazonaws.com'
  AND activity = 'CreateAccessKey'
  AND json_get_str(attrs, 'errorCode') IS NULL
  AND json_get_str(attrs, 'requestParameters', 'userName') IS NOT NULL
  AND json_get_str(attrs, 'requestParameters', 'userName') IS DISTINCT FROM json_get_str(attrs, 'userIdentity', 'userName')

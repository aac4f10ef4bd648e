-- id: 09_security_group_open_to_world
-- title: Security group opened to the world
-- severity: high
-- criteria: CC6.6
-- description: ../shared/bench/rules/09: one alert per successful AuthorizeSecurityGroupIngress whose
-- description: requestParameters contain "0.0.0.0/0" or "::/0".
SELECT time, event_id, actor_user, target_resource, src_ip
FROM events
WHERE json_get_str(attrs, 'eventSource') = 'ec2.amazonaws.com'
  AND activity = 'AuthorizeSecurityGroupIngress'
  AND json_get_str(attrs, 'errorCode') IS NULL
  AND (json_get_json(attrs, 'requestParameters') LIKE '%"0.0.0.0/0"%'
       OR json_get_json(attrs, 'requestParameters') LIKE '%"::/0"%')

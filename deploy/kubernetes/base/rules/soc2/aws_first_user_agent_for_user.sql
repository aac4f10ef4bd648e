-- id: aws_first_user_agent_for_user
-- title: An IAM user called AWS with a user agent it had not used before
-- severity: info
-- criteria: CC6.1, CC7.2
-- tags: aws, first-seen, credential-access
-- lateness: 30m
-- kind: first_seen
-- key: actor_user, user_agent
-- ttl: 90d
-- max_keys: 100000
-- description: An IAM user (or root) made an API call with a user agent not seen for it in the last 90 days: new
-- description: tooling, a new machine, or stolen keys used from somewhere else. Context for other alerts.
-- remediation: Ask the user whether the new tool or machine is theirs; rotate the access key if not.
SELECT time, event_id, actor_user, user_agent, src_ip, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND actor_user IS NOT NULL
  AND user_agent IS NOT NULL
  AND json_get_str(attrs, 'userIdentity', 'invokedBy') IS NULL
  AND json_get_str(attrs, 'userIdentity', 'type') IN ('IAMUser', 'Root')

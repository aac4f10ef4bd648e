-- id: aws_first_role_assumption
-- title: A principal assumed a role for the first time
-- severity: low
-- criteria: CC6.1, CC6.3
-- tags: aws, sts, first-seen
-- lateness: 30m
-- kind: first_seen
-- key: actor_user, role
-- ttl: 90d
-- description: An IAM user or role assumed a role it had not assumed in the last 90 days (of the events seen).
-- remediation: Confirm the principal is meant to use this role; narrow the role's trust policy if not.
SELECT time, event_id, actor_user, src_ip, cloud_account,
       json_get_str(attrs, 'requestParameters', 'roleArn') AS role
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity = 'AssumeRole'
  AND outcome = 'success'
  AND actor_user IS NOT NULL
  AND json_get_str(attrs, 'userIdentity', 'invokedBy') IS NULL
  AND json_get_str(attrs, 'requestParameters', 'roleArn') IS NOT NULL

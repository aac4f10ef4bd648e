-- id: aws_root_account_used
-- title: AWS root account used
-- severity: high
-- criteria: CC6.1, CC6.3
-- tags: aws, privileged-access
-- description: The account's root user made an API call or signed in. Root has unrestricted access and should
-- description: be used only for the few tasks that require it. AWS service events on behalf of root and
-- description: service-linked roles that AWS creates for the account are excluded.
-- remediation: Confirm the use was planned; lock the root credentials away with hardware MFA and use IAM roles instead.
SELECT time, event_id, activity, actor_user, src_ip, user_agent, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND actor_type = 'Root'
  AND json_get_str(attrs, 'userIdentity', 'invokedBy') IS NULL
  AND coalesce(json_get_str(attrs, 'eventType'), '') <> 'AwsServiceEvent'
  AND activity <> 'CreateServiceLinkedRole'

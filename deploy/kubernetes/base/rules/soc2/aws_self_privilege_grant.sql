-- id: aws_self_privilege_grant
-- title: An IAM user granted a policy or group to itself
-- severity: high
-- criteria: CC6.3, CC5.2
-- tags: aws, iam, privilege-escalation
-- description: A user attached a policy to itself, wrote its own inline policy or added itself to a group:
-- description: privilege granted by the one who receives it, without a second person.
-- remediation: Revert the grant and route privilege changes through an approval by someone else.
SELECT time, event_id, activity, actor_user, target_user, privilege, cloud_account, src_ip
FROM events
WHERE source = 'aws.cloudtrail'
  AND outcome = 'success'
  AND activity IN ('AttachUserPolicy', 'PutUserPolicy', 'AddUserToGroup')
  AND target_user IS NOT NULL
  AND json_get_str(attrs, 'userIdentity', 'type') = 'IAMUser'
  AND json_get_str(attrs, 'userIdentity', 'userName') = target_user

-- id: aws_admin_policy_attached
-- title: Administrator policy attached to an IAM identity
-- severity: high
-- criteria: CC6.3
-- tags: aws, iam, privilege-escalation
-- description: AdministratorAccess (or another full-admin managed policy) was attached to a user, group or role.
-- remediation: Confirm the grant against an approved change; grant least-privilege policies and time-bound elevation instead.
SELECT time, event_id, activity, actor_user, privilege,
       coalesce(target_user, json_get_str(attrs, 'requestParameters', 'roleName'), json_get_str(attrs, 'requestParameters', 'groupName')) AS grantee,
       cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity IN ('AttachUserPolicy', 'AttachGroupPolicy', 'AttachRolePolicy')
  AND outcome = 'success'
  AND (privilege LIKE '%:policy/AdministratorAccess' OR privilege LIKE '%:policy/IAMFullAccess')

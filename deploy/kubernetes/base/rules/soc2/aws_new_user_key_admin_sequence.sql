-- id: aws_new_user_key_admin_sequence
-- title: New IAM user, then an access key, then an admin policy within an hour
-- severity: critical
-- criteria: CC6.2, CC6.3
-- tags: aws, iam, persistence, privilege-escalation
-- lateness: 30m
-- kind: sequence
-- key: new_user
-- window: 1h
-- steps: created, key, admin
-- description: One IAM user was created, given an access key and granted administrator rights within an hour:
-- description: the pattern of a backdoor admin account.
-- remediation: Disable the key and the user unless an approved change explains them; review what the key did.
SELECT time, event_id, actor_user, cloud_account, target_user AS new_user,
       CASE WHEN activity = 'CreateUser' THEN 'created'
            WHEN activity = 'CreateAccessKey' THEN 'key'
            ELSE 'admin' END AS step
FROM events
WHERE source = 'aws.cloudtrail'
  AND outcome = 'success'
  AND target_user IS NOT NULL
  AND (activity IN ('CreateUser', 'CreateAccessKey')
       OR (activity IN ('AttachUserPolicy', 'PutUserPolicy', 'AddUserToGroup')
           AND (privilege LIKE '%:policy/AdministratorAccess' OR privilege LIKE '%:policy/IAMFullAccess'
                OR json_get_str(attrs, 'requestParameters', 'groupName') ILIKE '%admin%'
                OR json_get_str(attrs, 'requestParameters', 'policyDocument') LIKE '%"Action":"*"%')))

-- id: aws_login_profile_changed
-- title: Console password created or changed for an IAM user
-- severity: medium
-- criteria: CC6.1, CC6.2
-- tags: aws, iam, credentials, persistence
-- description: A console login profile was created or its password changed. Done by someone other than the user,
-- description: it can give an attacker console access to that user.
-- remediation: Confirm with the user; reset the password and review the account's activity if nobody asked for it.
SELECT time, event_id, activity, actor_user, target_user, src_ip, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity IN ('CreateLoginProfile', 'UpdateLoginProfile')
  AND outcome = 'success'

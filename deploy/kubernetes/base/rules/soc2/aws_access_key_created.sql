-- id: aws_access_key_created
-- title: IAM access key created
-- severity: medium
-- criteria: CC6.1, CC6.2
-- tags: aws, iam, credentials
-- description: A long-lived access key was created. When the caller creates it for another user, it is a known
-- description: persistence technique (backdoor keys); `for_other_user` says which case it is.
-- remediation: Confirm the key with its owner; rotate or delete keys nobody asked for and review what they were used for.
SELECT time, event_id, actor_user,
       coalesce(target_user, json_get_str(attrs, 'responseElements', 'accessKey', 'userName')) AS target_user,
       (target_user IS NOT NULL AND actor_user NOT LIKE concat('%/', target_user)) AS for_other_user,
       src_ip, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity = 'CreateAccessKey'
  AND outcome = 'success'

-- id: aws_instance_secrets_read
-- title: EC2 instance password or user data read
-- severity: medium
-- criteria: CC6.1, C1.1
-- tags: aws, ec2, credential-access
-- description: A call read (or tried to read) the Windows administrator password of an instance (GetPasswordData)
-- description: or its user data (DescribeInstanceAttribute userData), where boot scripts often hold credentials.
-- description: Denied attempts count too: they show someone looking for credentials.
-- remediation: Confirm the caller needed it; move secrets out of user data into Secrets Manager; rotate what was exposed.
-- description: Calls of one kind by one principal from one address within 15 minutes are one alert (with their count).
-- group_by: actor_user, src_ip, activity
-- suppress: 15m
SELECT time, event_id, activity, outcome, actor_user, src_ip, json_get_json(attrs, 'requestParameters') AS request, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND (activity = 'GetPasswordData'
       OR (activity = 'DescribeInstanceAttribute' AND json_get_str(attrs, 'requestParameters', 'attribute') = 'userData'))

-- id: aws_instance_remote_access
-- title: Commands or shell access pushed into EC2 instances
-- severity: medium
-- criteria: CC6.8, CC7.2
-- tags: aws, ec2, ssm, execution, lateral-movement
-- description: A call that runs code or opens a shell on instances: SSM SendCommand or StartSession, an SSH key
-- description: pushed with EC2 Instance Connect or to the serial console, serial console access enabled, or the
-- description: user data (boot script) of an instance changed.
-- remediation: Match the access to a ticket or an automation role; otherwise isolate the instance and review its sessions.
SELECT time, event_id, activity, actor_user, src_ip, json_get_json(attrs, 'requestParameters') AS request, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND outcome = 'success'
  AND (activity IN ('SendCommand', 'StartSession', 'SendSSHPublicKey', 'SendSerialConsoleSSHPublicKey',
                    'EnableSerialConsoleAccess')
       OR (activity = 'ModifyInstanceAttribute' AND json_get_json(attrs, 'requestParameters', 'userData') IS NOT NULL))

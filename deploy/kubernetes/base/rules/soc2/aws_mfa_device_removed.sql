-- id: aws_mfa_device_removed
-- title: MFA device deactivated or deleted
-- severity: medium
-- criteria: CC6.1
-- tags: aws, iam, mfa
-- description: An MFA device was deactivated or deleted, weakening the sign-in of its user.
-- remediation: Confirm with the user; require re-enrolment before the account is used again.
SELECT time, event_id, activity, actor_user, target_user, src_ip, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity IN ('DeactivateMFADevice', 'DeleteVirtualMFADevice')
  AND outcome = 'success'

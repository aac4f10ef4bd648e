-- id: aws_iam_user_created
-- title: IAM user created
-- severity: low
-- criteria: CC6.2
-- tags: aws, iam, provisioning
-- description: A new long-lived IAM user was created. Every new identity must trace back to an approved access request.
-- remediation: Match the user to its access request; prefer federated identities (IAM Identity Center) over IAM users.
SELECT time, event_id, actor_user, target_user, src_ip, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity = 'CreateUser'
  AND outcome = 'success'

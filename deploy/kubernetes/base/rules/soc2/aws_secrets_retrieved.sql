-- id: aws_secrets_retrieved
-- title: Secrets or SecureString parameters retrieved
-- severity: low
-- criteria: C1.1, CC6.1
-- tags: aws, secrets, credential-access
-- description: Secrets Manager secrets or decrypted SSM SecureString parameters were read by a person or role.
-- description: Calls made by AWS services on a principal's behalf are excluded.
-- remediation: Confirm the reader needs the secret; rotate it if the access is unexplained.
-- description: Reads by one principal from one address within 15 minutes are one alert (with their count).
-- group_by: actor_user, src_ip
-- suppress: 15m
SELECT time, event_id, activity, actor_user, target_resource, src_ip, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND outcome = 'success'
  AND json_get_str(attrs, 'userIdentity', 'invokedBy') IS NULL
  AND (activity IN ('GetSecretValue', 'BatchGetSecretValue')
       OR (activity IN ('GetParameter', 'GetParameters') AND json_get_bool(attrs, 'requestParameters', 'withDecryption')))

-- id: aws_mass_secret_reads
-- title: Many secrets read by one principal in ten minutes
-- severity: high
-- criteria: C1.1, CC6.1, CC7.2
-- tags: aws, secrets, credential-access
-- lateness: 30m
-- kind: threshold
-- key: actor_user
-- window: 10m
-- threshold: 10
-- description: Ten or more reads of Secrets Manager secrets or decrypted SSM parameters by one principal
-- description: within ten minutes: secret harvesting rather than an application fetching its own secret.
-- remediation: Find out which secrets were read and why; rotate them if the reads are not explained.
SELECT time, event_id, actor_user, cloud_account, src_ip
FROM events
WHERE source = 'aws.cloudtrail'
  AND outcome = 'success'
  AND json_get_str(attrs, 'userIdentity', 'invokedBy') IS NULL
  AND (activity IN ('GetSecretValue', 'BatchGetSecretValue')
       OR (activity IN ('GetParameter', 'GetParameters') AND json_get_bool(attrs, 'requestParameters', 'withDecryption')))

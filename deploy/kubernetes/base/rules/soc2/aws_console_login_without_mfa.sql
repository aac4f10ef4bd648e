-- id: aws_console_login_without_mfa
-- title: AWS console sign-in without MFA
-- severity: medium
-- criteria: CC6.1, CC6.6
-- tags: aws, authentication, mfa
-- description: An IAM user signed in to the AWS console successfully without a second factor
-- description: (CloudTrail ConsoleLogin with additionalEventData.MFAUsed = No).
-- remediation: Enforce MFA for console users (deny without aws:MultiFactorAuthPresent) and ask the user to enrol a device.
SELECT time, event_id, actor_user, src_ip, user_agent, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity = 'ConsoleLogin'
  AND outcome = 'success'
  AND mfa = false
  -- Federated sign-ins (SAML, IAM Identity Center, assumed roles) do MFA at the identity provider.
  AND json_get_str(attrs, 'userIdentity', 'type') IN ('IAMUser', 'Root')
  AND json_get_str(attrs, 'additionalEventData', 'SamlProviderArn') IS NULL

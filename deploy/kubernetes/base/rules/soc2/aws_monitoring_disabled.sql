-- id: aws_monitoring_disabled
-- title: AWS security monitoring turned off
-- severity: high
-- criteria: CC7.2, CC4.1
-- tags: aws, defense-evasion, monitoring
-- description: A monitoring service was stopped or removed: Route 53 resolver query logging, GuardDuty, Security Hub,
-- description: AWS Config recording, Macie, IAM Access Analyzer; or the account tried to leave its organization (and
-- description: with it, the organization's trails and guardrails).
-- remediation: Turn the service back on and find out who turned it off; deny these actions by SCP outside the security team.
SELECT time, event_id, activity, outcome, actor_user, src_ip, json_get_str(attrs, 'eventSource') AS service, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND (activity IN ('DeleteResolverQueryLogConfig', 'DisassociateResolverQueryLogConfig', 'DeleteDetector',
                    'DisassociateFromMasterAccount', 'DisassociateFromAdministratorAccount', 'DisableSecurityHub',
                    'StopConfigurationRecorder', 'DeleteConfigurationRecorder', 'DeleteDeliveryChannel', 'DisableMacie',
                    'DeleteAnalyzer', 'LeaveOrganization')
       OR (activity = 'UpdateDetector' AND NOT json_get_bool(attrs, 'requestParameters', 'enable')))

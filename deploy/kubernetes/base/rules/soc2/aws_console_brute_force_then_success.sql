-- id: aws_console_brute_force_then_success
-- title: Console sign-in failures, then a success, from one address
-- severity: high
-- criteria: CC6.1, CC7.2
-- tags: aws, authentication, brute-force
-- lateness: 30m
-- kind: sequence
-- key: src_ip
-- window: 30m
-- steps: failed*5, succeeded
-- description: Five or more failed console sign-ins from one address followed by a successful one within 30 minutes.
-- remediation: Treat the signed-in account as compromised until its owner confirms the sign-in; require MFA.
SELECT time, event_id, src_ip, actor_user, cloud_account,
       CASE WHEN outcome = 'failure' THEN 'failed' ELSE 'succeeded' END AS step
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity = 'ConsoleLogin'
  AND outcome IN ('success', 'failure')
  AND src_ip IS NOT NULL

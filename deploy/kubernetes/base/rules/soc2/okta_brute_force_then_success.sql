-- id: okta_brute_force_then_success
-- title: Okta sign-in after repeated failures for the same user
-- severity: critical
-- criteria: CC6.1, CC7.2, CC7.3
-- tags: okta, identity, brute-force, initial-access
-- kind: sequence
-- key: actor_user
-- window: 1h
-- steps: failed*5, succeeded
-- description: Five or more failed Okta sign-ins for one user, then a successful one within the hour (from any
-- description: address: guessing is often spread over many).
-- remediation: Assume the account is taken: reset its password and factors, end its sessions, review its activity.
SELECT time, event_id, actor_user, src_ip, user_agent,
       CASE WHEN outcome = 'failure' THEN 'failed' ELSE 'succeeded' END AS step
FROM events
WHERE source = 'okta.system_log'
  AND activity = 'user.session.start'
  AND outcome IN ('success', 'failure')
  AND actor_user IS NOT NULL

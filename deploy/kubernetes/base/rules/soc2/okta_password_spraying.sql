-- id: okta_password_spraying
-- title: Okta sign-ins failed for many users from one address
-- severity: high
-- criteria: CC6.1, CC7.2
-- tags: okta, identity, password-spraying
-- kind: threshold
-- key: src_ip
-- window: 15m
-- threshold: 5
-- distinct: actor_user
-- description: Failed Okta sign-ins for five or more different users from one client address within 15 minutes:
-- description: one password tried against many accounts.
-- remediation: Block the address in an Okta network zone; check the targeted users for a later successful sign-in.
SELECT time, event_id, src_ip, actor_user, user_agent
FROM events
WHERE source = 'okta.system_log'
  AND activity IN ('user.session.start', 'user.authentication.auth_via_mfa', 'user.authentication.sso')
  AND outcome = 'failure'
  AND src_ip IS NOT NULL
  AND actor_user IS NOT NULL

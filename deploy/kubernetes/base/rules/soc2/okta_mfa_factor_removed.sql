-- id: okta_mfa_factor_removed
-- title: Okta MFA factor deactivated or reset
-- severity: high
-- criteria: CC6.1
-- tags: okta, mfa, identity
-- description: An MFA factor of an Okta user was deactivated or all factors were reset: the account can be
-- description: signed into with a password alone until a new factor is enrolled.
-- remediation: Confirm with the user and the help desk ticket; have the user enrol a factor again at once.
SELECT time, event_id, activity, actor_user, target_user, src_ip
FROM events
WHERE source = 'okta.system_log'
  AND activity IN ('user.mfa.factor.deactivate', 'system.mfa.factor.deactivate', 'user.mfa.factor.reset_all')
  AND outcome <> 'failure'

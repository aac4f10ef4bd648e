-- id: github_2fa_requirement_disabled
-- title: GitHub two-factor requirement disabled
-- severity: high
-- criteria: CC6.1
-- tags: github, mfa
-- description: The two-factor authentication requirement of a GitHub organization or enterprise was turned off.
-- remediation: Turn the requirement back on and check which members lack two-factor authentication.
SELECT time, event_id, activity, actor_user, cloud_account, src_ip
FROM events
WHERE source = 'github.audit'
  AND activity IN ('org.disable_two_factor_requirement', 'business.disable_two_factor_requirement')

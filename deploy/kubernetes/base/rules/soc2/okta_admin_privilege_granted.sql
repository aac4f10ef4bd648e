-- id: okta_admin_privilege_granted
-- title: Okta administrator privilege granted
-- severity: high
-- criteria: CC6.3, CC6.2
-- tags: okta, identity, privilege-escalation
-- description: An Okta user or group was given an administrator role.
-- remediation: Match the grant to an approved access request; remove it if there is none.
SELECT time, event_id, activity, actor_user, target_user, privilege, src_ip
FROM events
WHERE source = 'okta.system_log'
  AND activity IN ('user.account.privilege.grant', 'group.privilege.grant')
  AND outcome <> 'failure'

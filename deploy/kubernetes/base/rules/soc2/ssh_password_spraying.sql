-- id: ssh_password_spraying
-- title: SSH logins tried for many user names from one address
-- severity: medium
-- criteria: CC6.1, CC7.2
-- tags: linux, ssh, password-spraying
-- kind: threshold
-- key: src_ip
-- window: 15m
-- threshold: 5
-- distinct: actor_user
-- description: Failed SSH logins for five or more different user names from one address within 15 minutes.
-- remediation: Block the address; make sure no account accepts passwords over SSH.
SELECT time, event_id, src_ip, actor_user
FROM events
WHERE source = 'linux.auth'
  AND activity IN ('ssh_login', 'ssh_invalid_user')
  AND outcome = 'failure'
  AND src_ip IS NOT NULL
  AND actor_user IS NOT NULL

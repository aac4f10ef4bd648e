-- id: ssh_brute_force
-- title: SSH password guessing from one address
-- severity: medium
-- criteria: CC6.1, CC7.2
-- tags: linux, ssh, brute-force
-- kind: threshold
-- key: src_ip
-- window: 5m
-- threshold: 10
-- description: Ten or more failed SSH logins (or invalid users) from one address within five minutes.
-- remediation: Block the address; disable password authentication (keys only) and use fail2ban or similar.
SELECT time, event_id, src_ip, actor_user, json_get_str(attrs, 'host') AS host
FROM events
WHERE source = 'linux.auth'
  AND activity IN ('ssh_login', 'ssh_invalid_user')
  AND outcome = 'failure'
  AND src_ip IS NOT NULL

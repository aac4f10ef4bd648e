-- id: ssh_brute_force_then_success
-- title: SSH login after repeated failures from the same address
-- severity: critical
-- criteria: CC6.1, CC7.2, CC7.3
-- tags: linux, ssh, brute-force, initial-access
-- kind: sequence
-- key: src_ip
-- window: 1h
-- steps: failed*5, accepted
-- description: Five or more failed SSH logins from one address, then a successful login from it within the hour.
-- remediation: Assume the account is compromised: lock it, end its sessions, review what it ran.
SELECT time, event_id, src_ip, actor_user, json_get_str(attrs, 'host') AS host,
       CASE WHEN outcome = 'failure' THEN 'failed' ELSE 'accepted' END AS step
FROM events
WHERE source = 'linux.auth'
  AND activity IN ('ssh_login', 'ssh_invalid_user')
  AND outcome IN ('success', 'failure')
  AND src_ip IS NOT NULL

-- id: k8s_exec_into_pod
-- title: Shell access into a Kubernetes pod (exec or attach)
-- severity: medium
-- criteria: CC6.8, CC7.2
-- tags: kubernetes, execution
-- description: Someone ran a command in, or attached to, a running container. Production containers should not need it.
-- remediation: Confirm the session was approved (break-glass); restrict pods/exec and pods/attach in RBAC.
SELECT time, event_id, activity, actor_user, target_resource, http_path, src_ip
FROM events
WHERE source = 'k8s.audit'
  AND activity IN ('create pods/exec', 'create pods/attach', 'get pods/exec', 'get pods/attach')
  AND outcome <> 'failure'

-- id: k8s_secret_accessed
-- title: Kubernetes secret read by a person
-- severity: medium
-- criteria: C1.1, CC6.1
-- tags: kubernetes, secrets, credential-access
-- description: A user (not a node, controller or service account) read or listed secrets.
-- remediation: Confirm the need; grant secret access to workloads through service accounts, not to people.
SELECT time, event_id, activity, actor_user, target_resource, src_ip
FROM events
WHERE source = 'k8s.audit'
  AND activity IN ('get secrets', 'list secrets', 'watch secrets')
  AND actor_type IN ('User', 'Anonymous')
  AND outcome <> 'failure'

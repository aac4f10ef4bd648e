-- id: k8s_anonymous_access
-- title: Kubernetes API used anonymously
-- severity: high
-- criteria: CC6.1
-- tags: kubernetes, authentication
-- description: An unauthenticated request (system:anonymous) was allowed to do something beyond health checks.
-- remediation: Disable anonymous auth on the API server or remove the bindings that grant system:anonymous rights.
SELECT time, event_id, activity, target_resource, http_path, src_ip, user_agent
FROM events
WHERE source = 'k8s.audit'
  AND actor_user = 'system:anonymous'
  AND outcome <> 'failure'
  AND coalesce(http_path, '') NOT IN ('/healthz', '/livez', '/readyz', '/version')

-- id: k8s_wildcard_role
-- title: Kubernetes role granting every verb or every resource
-- severity: medium
-- criteria: CC6.3, CC6.1
-- tags: kubernetes, rbac, least-privilege
-- description: A Role or ClusterRole was created or changed with `*` among its verbs or resources: it grants far
-- description: more than a workload or person needs, and silently more as new resources appear.
-- remediation: Replace the wildcard with the verbs and resources actually needed; review who is bound to the role.
SELECT time, event_id, activity, actor_user, target_resource, src_ip
FROM events
WHERE source = 'k8s.audit'
  AND activity IN ('create clusterroles', 'update clusterroles', 'patch clusterroles',
                   'create roles', 'update roles', 'patch roles')
  AND outcome <> 'failure'
  AND regexp_like(json_get_json(attrs, 'requestObject', 'rules'), '"(resources|verbs)"\s*:\s*\[[^\]]*"\*"')

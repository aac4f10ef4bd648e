-- id: k8s_cluster_admin_binding
-- title: Kubernetes cluster-admin granted
-- severity: high
-- criteria: CC6.3
-- tags: kubernetes, rbac, privilege-escalation
-- description: A RoleBinding or ClusterRoleBinding to the cluster-admin role was created or changed.
-- remediation: Confirm the grant against an approved change; bind narrower roles and remove the binding if unexplained.
SELECT time, event_id, activity, actor_user, target_resource, target_user, privilege, src_ip
FROM events
WHERE source = 'k8s.audit'
  AND activity IN ('create clusterrolebindings', 'update clusterrolebindings', 'patch clusterrolebindings',
                   'create rolebindings', 'update rolebindings', 'patch rolebindings')
  AND privilege = 'cluster-admin'
  AND outcome <> 'failure'

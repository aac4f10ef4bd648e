-- id: k8s_privileged_pod
-- title: Privileged or host-access pod created
-- severity: high
-- criteria: CC6.8
-- tags: kubernetes, container-escape
-- description: A pod was created with a privileged container, the host network, or a hostPath mount of a sensitive
-- description: directory: each gives a path out of the container to the node.
-- remediation: Enforce the restricted Pod Security Standard; allow exceptions per namespace only.
SELECT time, event_id, actor_user, target_resource, src_ip,
       regexp_like(json_get_json(attrs, 'requestObject', 'spec'), '"privileged"\s*:\s*true') AS privileged,
       coalesce(json_get_bool(attrs, 'requestObject', 'spec', 'hostNetwork'), false) AS host_network,
       regexp_like(json_get_json(attrs, 'requestObject', 'spec'), '"hostPath"\s*:\s*\{\s*"path"\s*:\s*"/(etc|var/run|proc|root|)?"') AS sensitive_mount
FROM events
WHERE source = 'k8s.audit'
  AND activity = 'create pods'
  AND outcome <> 'failure'
  AND (regexp_like(json_get_json(attrs, 'requestObject', 'spec'), '"privileged"\s*:\s*true')
       OR json_get_bool(attrs, 'requestObject', 'spec', 'hostNetwork')
       OR regexp_like(json_get_json(attrs, 'requestObject', 'spec'), '"hostPath"\s*:\s*\{\s*"path"\s*:\s*"/(etc|var/run|proc|root|)?"'))

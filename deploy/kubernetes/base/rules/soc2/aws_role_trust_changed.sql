-- id: aws_role_trust_changed
-- title: Who may assume AWS roles was changed
-- severity: high
-- criteria: CC6.3, CC6.2
-- tags: aws, iam, persistence
-- description: A role's trust policy was changed, or a new way in was trusted: an IAM Roles Anywhere trust anchor,
-- description: an OIDC or SAML identity provider. A classic backdoor: an outside account or certificate can now
-- description: take the role.
-- remediation: Review the new trust against an approved change; remove principals, anchors or providers nobody asked for.
SELECT time, event_id, activity, actor_user, src_ip, json_get_json(attrs, 'requestParameters') AS request, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND outcome = 'success'
  AND activity IN ('UpdateAssumeRolePolicy', 'CreateTrustAnchor', 'UpdateTrustAnchor', 'CreateOpenIDConnectProvider',
                   'CreateSAMLProvider', 'UpdateSAMLProvider')

-- id: aws_security_group_open_to_world
-- title: Security group opened to the whole internet
-- severity: high
-- criteria: CC6.6
-- tags: aws, network, exposure
-- description: An ingress rule was added for any address: a /0 IPv4 or IPv6 range (0.0.0.0/0, ::/0, or any x.x.x.x/0).
-- remediation: Remove the rule or narrow it to known ranges; put administrative ports behind a bastion or SSM.
SELECT time, event_id, actor_user, target_resource, src_ip,
       json_get_json(attrs, 'requestParameters') AS request, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity IN ('AuthorizeSecurityGroupIngress', 'ModifySecurityGroupRules')
  AND outcome = 'success'
  AND regexp_like(json_get_json(attrs, 'requestParameters'), '"cidrIpv?6?"\s*:\s*"[0-9a-fA-F.:]*/0"')

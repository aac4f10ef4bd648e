-- id: aws_vpc_flow_logs_deleted
-- title: VPC flow logs deleted
-- severity: high
-- criteria: CC7.2
-- tags: aws, defense-evasion, logging, network
-- description: Flow logs were deleted, removing the network record of a VPC.
-- remediation: Recreate the flow logs and find out who deleted them; deny ec2:DeleteFlowLogs outside the network team.
SELECT time, event_id, outcome, actor_user, src_ip, json_get_json(attrs, 'requestParameters') AS request, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND activity = 'DeleteFlowLogs'

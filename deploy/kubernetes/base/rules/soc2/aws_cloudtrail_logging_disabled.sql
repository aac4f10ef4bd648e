-- id: aws_cloudtrail_logging_disabled
-- title: CloudTrail logging stopped, deleted or narrowed
-- severity: high
-- criteria: CC7.2, CC4.1
-- tags: aws, defense-evasion, logging
-- description: A trail was stopped or deleted, or its event selectors changed, so that activity may go unrecorded.
-- description: Attempts that failed are reported too: they show intent.
-- remediation: Restart logging at once, find who did it and why; protect trails with an SCP that denies these calls.
SELECT time, event_id, activity, outcome, actor_user, target_resource, src_ip, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND json_get_str(attrs, 'eventSource') = 'cloudtrail.amazonaws.com'
  AND activity IN ('StopLogging', 'DeleteTrail', 'PutEventSelectors', 'UpdateTrail')

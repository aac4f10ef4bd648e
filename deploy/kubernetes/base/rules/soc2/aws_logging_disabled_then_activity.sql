-- id: aws_logging_disabled_then_activity
-- title: CloudTrail logging weakened, then more calls by the same principal
-- severity: critical
-- criteria: CC7.2, CC7.3, CC4.1
-- tags: aws, cloudtrail, defense-evasion
-- lateness: 30m
-- kind: sequence
-- key: actor_user
-- window: 1h
-- steps: logging_off, activity
-- description: A principal stopped, deleted or narrowed a trail and went on making API calls within the hour:
-- description: what an intruder does before acting unseen.
-- remediation: Restore the trail at once; review every call of the principal from the same source since.
SELECT time, event_id, actor_user, cloud_account, src_ip, activity,
       CASE WHEN activity IN ('StopLogging', 'DeleteTrail', 'PutEventSelectors', 'UpdateTrail') THEN 'logging_off'
            ELSE 'activity' END AS step
FROM events
WHERE source = 'aws.cloudtrail'
  AND outcome = 'success'
  AND actor_user IS NOT NULL
  AND json_get_str(attrs, 'userIdentity', 'invokedBy') IS NULL

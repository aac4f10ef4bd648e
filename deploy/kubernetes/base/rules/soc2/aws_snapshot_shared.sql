-- id: aws_snapshot_shared
-- title: EBS snapshot, RDS snapshot or AMI shared with another account
-- severity: high
-- criteria: C1.1, CC6.7
-- tags: aws, exfiltration, data
-- description: A snapshot's or machine image's permissions were changed to add another account (or everyone),
-- description: a known exfiltration path: the other account can copy the data out.
-- remediation: Revoke the share at once unless it is an approved copy; review the account it was shared with.
SELECT time, event_id, activity, actor_user, target_resource, src_ip, json_get_json(attrs, 'requestParameters') AS request, cloud_account
FROM events
WHERE source = 'aws.cloudtrail'
  AND outcome = 'success'
  AND ((activity = 'ModifySnapshotAttribute' AND json_get_json(attrs, 'requestParameters', 'createVolumePermission', 'add') IS NOT NULL)
       OR (activity = 'ModifyImageAttribute' AND json_get_json(attrs, 'requestParameters', 'launchPermission', 'add') IS NOT NULL)
       OR (activity IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute')
           AND json_get_str(attrs, 'requestParameters', 'attributeName') = 'restore'
           AND json_get_json(attrs, 'requestParameters', 'valuesToAdd') IS NOT NULL))

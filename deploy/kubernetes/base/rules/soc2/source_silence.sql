-- id: source_silence
-- title: A log source went quiet
-- severity: medium
-- criteria: CC7.2, A1.2
-- tags: availability, monitoring
-- lateness: 30m
-- kind: silence
-- key: source
-- window: 1h
-- description: No events from a log source for an hour (event time, per file or Kafka partition; a partition
-- description: that receives nothing at all counts its wall-clock quiet): a broken shipper, a disabled trail,
-- description: or an attacker cutting the evidence. The alert names the input and partition that went quiet.
-- remediation: Check the source's shipper and configuration; account for the gap in the evidence.
SELECT time, event_id, source, ingest_source, ingest_partition
FROM events

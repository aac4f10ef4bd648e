-- id: source_silence
-- title: A log source went quiet
-- severity: medium
-- criteria: CC7.2, A1.2
-- tags: availability, monitoring
-- lateness: 30m
-- kind: silence
-- key: source
-- window: 1h
-- description: No events from a log source for an hour while other sources kept sending (event time):
-- description: a broken shipper, a disabled trail, or an attacker cutting the evidence.
-- remediation: Check the source's shipper and configuration; account for the gap in the evidence.
SELECT time, event_id, source
FROM events

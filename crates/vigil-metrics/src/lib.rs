//! What a running pipeline exposes about itself: counters, gauges and latency histograms, rendered in the
//! Prometheus text format, and its liveness and readiness ([`Health`]), served over HTTP (`vigil run
//! --metrics-addr 127.0.0.1:9464`, then `curl 127.0.0.1:9464/metrics`, `/healthz`, `/readyz`).
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `vigil_build_info` | gauge | `version` | always 1 |
//! | `vigil_records_read_total` | counter | `ingest_source`, `partition` | records read from the input (lines, Kafka messages), added when their batch is durable |
//! | `vigil_bytes_read_total` | counter | `ingest_source`, `partition` | their bytes |
//! | `vigil_events_archived_total` | counter | `ingest_source`, `partition` | records normalized into events and durable in the archive |
//! | `vigil_dead_letters_total` | counter | `ingest_source`, `partition`, `reason` | records sent to the dead letters (durable too), by reason code |
//! | `vigil_batches_total` | counter | `ingest_source`, `partition` | micro-batches archived |
//! | `vigil_events_future_dated_total` | counter | `ingest_source`, `partition` | events dated past the future-skew limit: archived, flagged, event time not moved |
//! | `vigil_completeness_breaks_total` | counter | `ingest_source`, `partition` | ranges the broker deleted before they were read, recorded as breaks in the chain |
//! | `vigil_offsets_lost_total` | counter | `ingest_source`, `partition` | offsets in those ranges |
//! | `vigil_alerts_total` | counter | `rule` | alerts raised, per rule |
//! | `vigil_rules_quarantined_total` | counter | `rule` | rules quarantined (over budget or failed at run time), each once per run |
//! | `vigil_events_late_total` | counter | `rule` | events that reached a stateful rule below its watermark (archived, not evaluated) |
//! | `vigil_errors_total` | counter | `stage` | errors by where they happened: `read`, `normalize`, `rules`, `emit`, `archive`, `offset_commit`, `sign` |
//! | `vigil_stage_seconds_total` | counter | `stage` | wall time in `normalize`, `rules`, `emit`, `archive` |
//! | `vigil_alerts_pending` | gauge | `destination` | alerts queued for a destination (webhook, Slack, PagerDuty) and not yet delivered: the backlog |
//! | `vigil_alert_deliveries_total` | counter | `destination`, `outcome` | delivery attempts: `delivered`, `failed` (retried later), `rejected` (refused as malformed, kept aside) |
//! | `vigil_kafka_consumer_lag` | gauge | `ingest_source`, `partition` | messages behind the partition's end (librdkafka statistics) |
//! | `vigil_batch_stage_seconds` | histogram | `stage` | per batch: time in each stage |
//! | `vigil_event_to_alert_seconds` | histogram | | from reading the oldest record of an alert's batch to the alert reaching the outputs |
//! | `vigil_event_to_archive_seconds` | histogram | | from reading a batch's oldest record to the batch being durable, once per event |
//!
//! One label name per dimension: `ingest_source` is the topic of a Kafka partition (the evidence's
//! `ingest_source` column), and every file input counts as `ingest_source="file"`, `partition="0"` (a
//! label value per file would add series without end; the evidence, the run summary and `/healthz` name
//! the file). Label sets known in advance are exported at 0 before anything happens (every rule, every
//! stage, every partition opened), so `rate()` and alerts on them work from the first scrape.
//!
//! Histograms have the buckets [`BUCKETS`] (1 ms to 5 min, then `+Inf`), `_sum` and `_count`, so they
//! add up across the members of a consumer group (`histogram_quantile(0.99, sum by (le) (rate(..._bucket[5m])))`).
//! The run summary's quantiles come from HDR histograms kept beside them (3 significant digits).
//! Updates happen once per batch, alert or input chunk, never per record, so one mutex is enough.

mod health;
mod http;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;

pub use health::{DEFAULT_STUCK_AFTER, Health, StoreProbe, StoreStatus};
pub use http::{Limits, serve, serve_with};
use vigil_schema::PartitionId;

/// Label values of a partition's counters: `(ingest_source, partition)`, file inputs under [`FILE_SERIES`].
type PartitionKey = (String, i32);

/// What one micro-batch of a partition added to the run, counted once its range is durable in the
/// archive. The run summary and the metrics both add these same numbers, so they cannot disagree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Records read (lines, messages; blank lines are not records).
    pub records_read: u64,
    /// Bytes of those records, each whole.
    pub bytes_read: u64,
    /// Archived as events.
    pub events: u64,
    /// Raw bytes archived in events.
    pub event_bytes: u64,
    /// Archived as dead letters, by reason code.
    pub dead_letters: BTreeMap<&'static str, u64>,
    /// Bytes kept in dead letters (rows' raw, blobs whole).
    pub dead_letter_bytes: u64,
    /// Offsets of the range that held no record (blank lines, holes).
    pub skipped: u64,
    /// Alerts archived with the range, by rule id.
    pub alerts: BTreeMap<String, u64>,
}

impl BatchCounts {
    /// Dead letters of every reason.
    pub fn dead_letter_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }

    /// Alerts of every rule.
    pub fn alert_total(&self) -> u64 {
        self.alerts.values().sum()
    }
}

/// The `ingest_source` label value of every file input (see the crate documentation).
pub const FILE_SERIES: &str = "file";

/// Counters of one source partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCounters {
    /// Records read (lines, messages), dead letters and skipped blanks included.
    pub records_read: u64,
    /// Bytes of those records.
    pub bytes_read: u64,
    /// Events durable in the archive.
    pub events_archived: u64,
    /// Dead letters durable in the archive.
    pub dead_letters: u64,
    /// Micro-batches archived.
    pub batches: u64,
    /// Events dated past the future-skew limit.
    pub future_dated: u64,
    /// Completeness breaks recorded (ranges the source no longer had).
    pub completeness_breaks: u64,
    /// Offsets in those ranges.
    pub offsets_lost: u64,
}

/// Counters of one alert destination (labelled by kind, scheme and host: never a secret).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestinationCounters {
    /// Alerts queued and not yet delivered.
    pub pending: u64,
    /// Alerts delivered (2xx).
    pub delivered: u64,
    /// Failed attempts (retried later).
    pub failed: u64,
    /// Alerts the destination refused as malformed.
    pub rejected: u64,
}

/// The outcomes of `vigil_alert_deliveries_total`.
pub const DELIVERY_OUTCOMES: [&str; 3] = ["delivered", "failed", "rejected"];

/// The stages of a micro-batch, in order.
pub const STAGES: [&str; 4] = ["normalize", "rules", "emit", "archive"];

/// Where errors are counted (`vigil_errors_total{stage}`): reading the input (a Kafka consumer error, a
/// file that fails), normalizing (a normalizer that panicked on a record), the rules (a rule that failed
/// or ran over its budget), emitting alerts and dead letters, archiving (each failed store attempt, also
/// those retried), committing Kafka offsets, signing digests.
pub const ERROR_STAGES: [&str; 7] = ["read", "normalize", "rules", "emit", "archive", "offset_commit", "sign"];

/// Upper bounds, in seconds, of the latency histograms' buckets (`+Inf` follows).
pub const BUCKETS: [f64; 17] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// A Prometheus histogram: counts per bucket (not cumulative here), count and sum.
#[derive(Debug, Clone, Default)]
struct Buckets {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Buckets {
    fn observe(&mut self, value: Duration, n: u64) {
        let seconds = value.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&le| seconds <= le) {
            self.counts[i] += n;
        }
        self.count += n;
        self.sum += seconds * n as f64;
    }
}

/// A latency: exported as a histogram, kept as an HDR histogram for the run summary's quantiles.
#[derive(Debug, Clone)]
struct Latency {
    buckets: Buckets,
    hdr: Histogram<u64>,
}

impl Latency {
    fn new() -> Self {
        // 1 µs to 1 hour, 3 significant digits; values above saturate rather than fail.
        let hdr = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid");
        Latency { buckets: Buckets::default(), hdr }
    }

    fn observe(&mut self, value: Duration, n: u64) {
        self.buckets.observe(value, n);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.hdr.record_n(micros, n);
    }
}

#[derive(Debug)]
struct Inner {
    partitions: BTreeMap<PartitionKey, PartitionCounters>,
    dead_letter_reasons: BTreeMap<(PartitionKey, String), u64>,
    alerts: BTreeMap<String, u64>,
    quarantined: BTreeMap<String, u64>,
    late: BTreeMap<String, u64>,
    errors: [u64; ERROR_STAGES.len()],
    stage_seconds: [f64; STAGES.len()],
    lag: BTreeMap<PartitionKey, i64>,
    destinations: BTreeMap<String, DestinationCounters>,
    batch_stage: [Buckets; STAGES.len()],
    event_to_alert: Latency,
    event_to_archive: Latency,
}

/// The metrics of one pipeline, with its [`Health`]; cheap to clone (one shared registry).
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
    health: Arc<Health>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The `ingest_source` label value of a partition: file inputs share one (see the crate documentation).
fn series(ingest_source: &str) -> &str {
    if ingest_source.starts_with("file-") { FILE_SERIES } else { ingest_source }
}

fn partition_key(id: &PartitionId) -> PartitionKey {
    (series(id.source()).to_string(), id.partition)
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        let inner = Inner {
            partitions: BTreeMap::new(),
            dead_letter_reasons: BTreeMap::new(),
            alerts: BTreeMap::new(),
            quarantined: BTreeMap::new(),
            late: BTreeMap::new(),
            errors: [0; ERROR_STAGES.len()],
            stage_seconds: [0.0; STAGES.len()],
            lag: BTreeMap::new(),
            destinations: BTreeMap::new(),
            batch_stage: Default::default(),
            event_to_alert: Latency::new(),
            event_to_archive: Latency::new(),
        };
        Metrics { inner: Arc::new(Mutex::new(inner)), health: Arc::new(Health::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain numbers behind: keep serving them.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Liveness and readiness of the pipeline these metrics belong to.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// The rules of the pack: their series start at 0 (`stateful`: they also count late events).
    pub fn register_rules<'a>(&self, rules: impl IntoIterator<Item = (&'a str, bool)>) {
        let mut inner = self.lock();
        for (rule, stateful) in rules {
            inner.alerts.entry(rule.to_string()).or_default();
            inner.quarantined.entry(rule.to_string()).or_default();
            if stateful {
                inner.late.entry(rule.to_string()).or_default();
            }
        }
    }

    /// A partition was opened: its series start at 0.
    pub fn partition_opened(&self, id: &PartitionId) {
        self.lock().partitions.entry(partition_key(id)).or_default();
    }

    /// A batch of a partition became durable: what it read and archived ([`BatchCounts`], the same numbers
    /// the run summary adds), and how long after its oldest record was read.
    pub fn archived(&self, id: &PartitionId, counts: &BatchCounts, since_read: Duration) {
        let mut inner = self.lock();
        let key = partition_key(id);
        let dead = counts.dead_letter_total();
        let c = inner.partitions.entry(key.clone()).or_default();
        c.records_read += counts.records_read;
        c.bytes_read += counts.bytes_read;
        c.events_archived += counts.events;
        c.dead_letters += dead;
        c.batches += 1;
        for (reason, n) in &counts.dead_letters {
            *inner.dead_letter_reasons.entry((key.clone(), (*reason).to_string())).or_default() += n;
        }
        for (rule, n) in &counts.alerts {
            *inner.alerts.entry(rule.clone()).or_default() += n;
        }
        inner.event_to_archive.observe(since_read, (counts.events + dead).max(1));
    }

    /// Time one batch spent in `stage` (one of [`STAGES`]).
    pub fn stage(&self, stage: &str, spent: Duration) {
        let Some(i) = STAGES.iter().position(|s| *s == stage) else { return };
        let mut inner = self.lock();
        inner.stage_seconds[i] += spent.as_secs_f64();
        inner.batch_stage[i].observe(spent, 1);
    }

    /// `alerts` alerts reached the outputs, `since_read` after the oldest record of their batch was read
    /// (the latency histogram; they are counted in `vigil_alerts_total` once archived, see
    /// [`Metrics::archived`]).
    pub fn alerts_sent(&self, alerts: u64, since_read: Duration) {
        if alerts > 0 {
            self.lock().event_to_alert.observe(since_read, alerts);
        }
    }

    /// A batch of a partition held `events` dated past the future-skew limit.
    pub fn future_dated(&self, id: &PartitionId, events: u64) {
        self.lock().partitions.entry(partition_key(id)).or_default().future_dated += events;
    }

    /// `rule` was quarantined: over its budget, or failed at run time.
    pub fn rule_quarantined(&self, rule: &str) {
        *self.lock().quarantined.entry(rule.to_string()).or_default() += 1;
    }

    /// `events` reached the stateful rule `rule` below its watermark: not evaluated.
    pub fn late(&self, rule: &str, events: u64) {
        *self.lock().late.entry(rule.to_string()).or_default() += events;
    }

    /// Offsets `offsets` of a partition were lost (deleted by the broker before they were read) and
    /// recorded as a completeness break.
    pub fn completeness_break(&self, id: &PartitionId, offsets: u64) {
        let mut inner = self.lock();
        let c = inner.partitions.entry(partition_key(id)).or_default();
        c.completeness_breaks += 1;
        c.offsets_lost += offsets;
    }

    /// `n` errors in `stage` (one of [`ERROR_STAGES`]).
    pub fn error(&self, stage: &str, n: u64) {
        if let Some(i) = ERROR_STAGES.iter().position(|s| *s == stage) {
            self.lock().errors[i] += n;
        }
    }

    /// The consumer lag of a Kafka partition (messages between its committed or read position and its end).
    pub fn kafka_lag(&self, id: &PartitionId, lag: i64) {
        self.lock().lag.insert((id.source().to_string(), id.partition), lag);
    }

    /// A Kafka partition left this member: its lag is someone else's now.
    pub fn forget_kafka_partition(&self, id: &PartitionId) {
        self.lock().lag.remove(&(id.source().to_string(), id.partition));
    }

    /// `pending` alerts are queued for `destination` (its series start at 0 when first seen).
    pub fn alerts_pending(&self, destination: &str, pending: u64) {
        self.lock().destinations.entry(destination.to_string()).or_default().pending = pending;
    }

    /// One delivery attempt to `destination` ended with `outcome` (one of [`DELIVERY_OUTCOMES`]).
    pub fn alert_delivery(&self, destination: &str, outcome: &str) {
        let mut inner = self.lock();
        let c = inner.destinations.entry(destination.to_string()).or_default();
        match outcome {
            "delivered" => c.delivered += 1,
            "failed" => c.failed += 1,
            "rejected" => c.rejected += 1,
            _ => {}
        }
    }

    /// Counters of every alert destination so far.
    pub fn destinations(&self) -> BTreeMap<String, DestinationCounters> {
        self.lock().destinations.clone()
    }

    /// Counters of every partition so far, by `ingest_source` label (every file input is
    /// [`FILE_SERIES`]) and partition.
    pub fn partitions(&self) -> BTreeMap<(String, i32), PartitionCounters> {
        self.lock().partitions.clone()
    }

    /// Quantiles (0.5, 0.9, 0.99, max) of the event-to-alert latency, `None` before the first alert.
    pub fn event_to_alert_quantiles(&self) -> Option<[Duration; 4]> {
        quantiles(&self.lock().event_to_alert.hdr)
    }

    /// Quantiles (0.5, 0.9, 0.99, max) of the event-to-archive latency, `None` before the first batch.
    pub fn event_to_archive_quantiles(&self) -> Option<[Duration; 4]> {
        quantiles(&self.lock().event_to_archive.hdr)
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        // Asked before the lock: the probe takes its own.
        let store_failures = self.health.store_status().failed_attempts;
        let inner = self.lock();
        let mut out = String::with_capacity(8192);
        header(&mut out, "vigil_build_info", "The running vigil's version; always 1.", "gauge");
        let _ = writeln!(out, "vigil_build_info{{version=\"{}\"}} 1", escape(env!("CARGO_PKG_VERSION")));
        type Field = fn(&PartitionCounters) -> u64;
        let per_partition: [(&str, &str, Field); 7] = [
            ("vigil_records_read_total", "Records read from the input.", |c| c.records_read),
            ("vigil_bytes_read_total", "Bytes of the records read.", |c| c.bytes_read),
            ("vigil_events_archived_total", "Events durable in the archive.", |c| c.events_archived),
            ("vigil_batches_total", "Micro-batches archived.", |c| c.batches),
            (
                "vigil_events_future_dated_total",
                "Events dated past the future-skew limit: archived and flagged, event time not moved.",
                |c| c.future_dated,
            ),
            (
                "vigil_completeness_breaks_total",
                "Ranges the source no longer had when read (deleted by the broker), recorded as completeness breaks.",
                |c| c.completeness_breaks,
            ),
            ("vigil_offsets_lost_total", "Offsets in those completeness breaks.", |c| c.offsets_lost),
        ];
        for (name, help, field) in per_partition {
            header(&mut out, name, help, "counter");
            for ((source, partition), c) in &inner.partitions {
                let _ = writeln!(
                    out,
                    "{name}{{ingest_source=\"{}\",partition=\"{partition}\"}} {}",
                    escape(source),
                    field(c)
                );
            }
        }
        header(
            &mut out,
            "vigil_dead_letters_total",
            "Records sent to the dead letters (durable), by reason code.",
            "counter",
        );
        for (((source, partition), reason), n) in &inner.dead_letter_reasons {
            let _ = writeln!(
                out,
                "vigil_dead_letters_total{{ingest_source=\"{}\",partition=\"{partition}\",reason=\"{}\"}} {n}",
                escape(source),
                escape(reason)
            );
        }
        let per_rule = [
            ("vigil_alerts_total", "Alerts raised, per rule.", &inner.alerts),
            ("vigil_rules_quarantined_total", "Rules quarantined for the rest of the run.", &inner.quarantined),
            (
                "vigil_events_late_total",
                "Events that reached a stateful rule below its watermark: archived, not evaluated.",
                &inner.late,
            ),
        ];
        for (name, help, counts) in per_rule {
            header(&mut out, name, help, "counter");
            for (rule, n) in counts {
                let _ = writeln!(out, "{name}{{rule=\"{}\"}} {n}", escape(rule));
            }
        }
        header(&mut out, "vigil_errors_total", "Errors by the stage they happened in.", "counter");
        for (stage, n) in ERROR_STAGES.iter().zip(inner.errors) {
            let n = if *stage == "archive" { n + store_failures } else { n };
            let _ = writeln!(out, "vigil_errors_total{{stage=\"{stage}\"}} {n}");
        }
        header(&mut out, "vigil_stage_seconds_total", "Wall time spent in each stage of the micro-batches.", "counter");
        for (stage, seconds) in STAGES.iter().zip(inner.stage_seconds) {
            let _ = writeln!(out, "vigil_stage_seconds_total{{stage=\"{stage}\"}} {seconds:.6}");
        }
        header(&mut out, "vigil_kafka_consumer_lag", "Messages behind the end of each assigned partition.", "gauge");
        for ((topic, partition), lag) in &inner.lag {
            let _ = writeln!(
                out,
                "vigil_kafka_consumer_lag{{ingest_source=\"{}\",partition=\"{partition}\"}} {lag}",
                escape(topic)
            );
        }
        header(&mut out, "vigil_alerts_pending", "Alerts queued for a destination and not yet delivered.", "gauge");
        for (destination, c) in &inner.destinations {
            let _ = writeln!(out, "vigil_alerts_pending{{destination=\"{}\"}} {}", escape(destination), c.pending);
        }
        header(
            &mut out,
            "vigil_alert_deliveries_total",
            "Alert delivery attempts by outcome: delivered, failed (retried later), rejected (kept aside).",
            "counter",
        );
        for (destination, c) in &inner.destinations {
            for (outcome, n) in DELIVERY_OUTCOMES.iter().zip([c.delivered, c.failed, c.rejected]) {
                let _ = writeln!(
                    out,
                    "vigil_alert_deliveries_total{{destination=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(destination)
                );
            }
        }
        header(&mut out, "vigil_batch_stage_seconds", "Per micro-batch: seconds in each stage.", "histogram");
        for (stage, h) in STAGES.iter().zip(&inner.batch_stage) {
            histogram(&mut out, "vigil_batch_stage_seconds", &format!("stage=\"{stage}\""), h);
        }
        header(
            &mut out,
            "vigil_event_to_alert_seconds",
            "From reading the oldest record of an alert's batch to the alert reaching the outputs.",
            "histogram",
        );
        histogram(&mut out, "vigil_event_to_alert_seconds", "", &inner.event_to_alert.buckets);
        header(
            &mut out,
            "vigil_event_to_archive_seconds",
            "From reading a batch's oldest record to the batch being durable, once per event.",
            "histogram",
        );
        histogram(&mut out, "vigil_event_to_archive_seconds", "", &inner.event_to_archive.buckets);
        out
    }
}

fn quantiles(h: &Histogram<u64>) -> Option<[Duration; 4]> {
    (!h.is_empty()).then(|| {
        [0.5, 0.9, 0.99, 1.0].map(|q| Duration::from_micros(if q == 1.0 { h.max() } else { h.value_at_quantile(q) }))
    })
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `name_bucket` lines (cumulative, `le` ascending, then `+Inf`), `name_sum` and `name_count`.
fn histogram(out: &mut String, name: &str, labels: &str, h: &Buckets) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (le, n) in BUCKETS.iter().zip(h.counts) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {:.6}\n{name}_count{braces} {}", h.sum, h.count);
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, line_start: &str) -> f64 {
        let line = text.lines().find(|l| l.starts_with(line_start)).unwrap_or_else(|| panic!("no {line_start}"));
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("number")
    }

    #[test]
    fn renders_counters_gauges_and_histograms_in_the_text_format() {
        let m = Metrics::new();
        m.register_rules([("aws_root", false), ("brute", true)]);
        let quoted = PartitionId::new("logs\"x", 0);
        m.partition_opened(&PartitionId::new("logs", 1));
        let counts = BatchCounts {
            records_read: 10,
            bytes_read: 1000,
            events: 8,
            dead_letters: [("invalid_json", 1), ("too_large", 1)].into(),
            alerts: [("aws_root".to_string(), 2)].into(),
            ..BatchCounts::default()
        };
        m.archived(&quoted, &counts, Duration::from_millis(250));
        m.stage("rules", Duration::from_millis(4));
        m.alerts_sent(1, Duration::from_millis(120));
        m.alerts_sent(1, Duration::from_millis(80));
        m.kafka_lag(&PartitionId::new("logs", 3), 42);
        m.future_dated(&quoted, 3);
        m.rule_quarantined("runaway");
        m.late("brute", 5);
        m.completeness_break(&PartitionId::new("logs", 1), 40);
        m.error("emit", 1);
        m.alerts_pending("webhook https://siem/…", 7);
        m.alert_delivery("webhook https://siem/…", "failed");
        m.alert_delivery("webhook https://siem/…", "failed");
        m.alert_delivery("webhook https://siem/…", "delivered");
        m.health().set_store_probe(Arc::new(|| StoreStatus { failed_attempts: 4, ..StoreStatus::default() }));
        let text = m.render();
        for line in [
            &format!(r#"vigil_build_info{{version="{}"}} 1"#, env!("CARGO_PKG_VERSION")),
            r#"vigil_records_read_total{ingest_source="logs\"x",partition="0"} 10"#,
            r#"vigil_records_read_total{ingest_source="logs",partition="1"} 0"#,
            r#"vigil_bytes_read_total{ingest_source="logs\"x",partition="0"} 1000"#,
            r#"vigil_events_archived_total{ingest_source="logs\"x",partition="0"} 8"#,
            r#"vigil_dead_letters_total{ingest_source="logs\"x",partition="0",reason="invalid_json"} 1"#,
            r#"vigil_dead_letters_total{ingest_source="logs\"x",partition="0",reason="too_large"} 1"#,
            r#"vigil_alerts_total{rule="aws_root"} 2"#,
            r#"vigil_alerts_total{rule="brute"} 0"#,
            r#"vigil_events_future_dated_total{ingest_source="logs\"x",partition="0"} 3"#,
            r#"vigil_rules_quarantined_total{rule="runaway"} 1"#,
            r#"vigil_rules_quarantined_total{rule="brute"} 0"#,
            r#"vigil_events_late_total{rule="brute"} 5"#,
            r#"vigil_completeness_breaks_total{ingest_source="logs",partition="1"} 1"#,
            r#"vigil_offsets_lost_total{ingest_source="logs",partition="1"} 40"#,
            r#"vigil_errors_total{stage="emit"} 1"#,
            r#"vigil_errors_total{stage="archive"} 4"#,
            r#"vigil_errors_total{stage="read"} 0"#,
            r#"vigil_kafka_consumer_lag{ingest_source="logs",partition="3"} 42"#,
            r#"vigil_alerts_pending{destination="webhook https://siem/…"} 7"#,
            r#"vigil_alert_deliveries_total{destination="webhook https://siem/…",outcome="failed"} 2"#,
            r#"vigil_alert_deliveries_total{destination="webhook https://siem/…",outcome="delivered"} 1"#,
            r#"vigil_alert_deliveries_total{destination="webhook https://siem/…",outcome="rejected"} 0"#,
            r#"vigil_stage_seconds_total{stage="rules"} 0.004000"#,
            "# TYPE vigil_event_to_alert_seconds histogram",
            r#"vigil_event_to_alert_seconds_bucket{le="0.05"} 0"#,
            r#"vigil_event_to_alert_seconds_bucket{le="0.1"} 1"#,
            r#"vigil_event_to_alert_seconds_bucket{le="0.25"} 2"#,
            r#"vigil_event_to_alert_seconds_bucket{le="+Inf"} 2"#,
            r#"vigil_event_to_alert_seconds_sum 0.200000"#,
            r#"vigil_event_to_alert_seconds_count 2"#,
            r#"vigil_event_to_archive_seconds_bucket{le="0.25"} 10"#,
            r#"vigil_event_to_archive_seconds_count 10"#,
            r#"vigil_batch_stage_seconds_bucket{stage="rules",le="0.005"} 1"#,
            r#"vigil_batch_stage_seconds_bucket{stage="rules",le="0.0025"} 0"#,
            r#"vigil_batch_stage_seconds_count{stage="normalize"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        assert!(!text.contains("quantile"), "histograms, not summaries");
        assert!((sample(&text, r#"vigil_batch_stage_seconds_sum{stage="rules"}"#) - 0.004).abs() < 1e-9);
        let p50 = m.event_to_alert_quantiles().expect("alerts recorded")[0];
        assert!(p50 >= Duration::from_millis(79) && p50 <= Duration::from_millis(81), "{p50:?}");
        m.forget_kafka_partition(&PartitionId::new("logs", 3));
        assert!(!m.render().contains("vigil_kafka_consumer_lag{"));
    }

    #[test]
    fn buckets_are_cumulative_and_end_with_every_observation() {
        let m = Metrics::new();
        for ms in [0, 1, 3, 700, 1_000, 400_000] {
            m.stage("archive", Duration::from_millis(ms));
        }
        let text = m.render();
        let mut last = 0.0;
        for le in BUCKETS.iter().map(ToString::to_string).chain(["+Inf".to_string()]) {
            let n = sample(&text, &format!("vigil_batch_stage_seconds_bucket{{stage=\"archive\",le=\"{le}\"}} "));
            assert!(n >= last, "cumulative at le={le}");
            last = n;
        }
        assert_eq!(last, 6.0, "+Inf holds every observation, also one past the last bucket");
        assert_eq!(sample(&text, r#"vigil_batch_stage_seconds_bucket{stage="archive",le="0.001"} "#), 2.0);
        assert_eq!(sample(&text, r#"vigil_batch_stage_seconds_bucket{stage="archive",le="1"} "#), 5.0);
        assert_eq!(sample(&text, r#"vigil_batch_stage_seconds_bucket{stage="archive",le="300"} "#), 5.0);
    }

    #[test]
    fn every_file_input_counts_as_one_series() {
        let m = Metrics::new();
        for fingerprint in ["file-aa", "file-bb", "file-cc"] {
            let id = PartitionId::new(fingerprint, 0);
            m.partition_opened(&id);
            let counts = BatchCounts { records_read: 5, bytes_read: 50, events: 5, ..BatchCounts::default() };
            m.archived(&id, &counts, Duration::from_millis(1));
        }
        let partitions = m.partitions();
        assert_eq!(partitions.len(), 1, "{partitions:?}");
        assert_eq!(partitions[&("file".to_string(), 0)].records_read, 15);
        let text = m.render();
        assert!(text.contains(r#"vigil_records_read_total{ingest_source="file",partition="0"} 15"#), "{text}");
        assert!(!text.contains("file-aa"));
    }
}

//! What a running pipeline exposes about itself: counters, gauges and latency histograms, rendered in the
//! Prometheus text format and served over HTTP (`vigil run --metrics-addr 127.0.0.1:9464`, then
//! `curl 127.0.0.1:9464/metrics`).
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `vigil_records_read_total` | counter | `ingest_source`, `partition` | records read from the input (lines, Kafka messages) |
//! | `vigil_bytes_read_total` | counter | `ingest_source`, `partition` | their bytes |
//! | `vigil_events_archived_total` | counter | `ingest_source`, `partition` | records normalized into events and durable in the archive |
//! | `vigil_dead_letters_total` | counter | `ingest_source`, `partition` | records sent to the dead letters (durable too) |
//! | `vigil_batches_total` | counter | `ingest_source`, `partition` | micro-batches archived |
//! | `vigil_events_future_dated_total` | counter | `ingest_source`, `partition` | events dated past the future-skew limit: archived, flagged, event time not moved |
//! | `vigil_alerts_total` | counter | `rule` | alerts raised, per rule |
//! | `vigil_rules_quarantined_total` | counter | `rule` | rules quarantined (over budget or failed at run time), each once per run |
//! | `vigil_stage_seconds_total` | counter | `stage` | wall time in `normalize`, `rules`, `emit`, `archive` |
//! | `vigil_kafka_consumer_lag` | gauge | `topic`, `partition` | messages behind the partition's end (librdkafka statistics) |
//! | `vigil_batch_stage_seconds` | summary | `stage` | per batch: time in each stage (p50, p90, p99, max) |
//! | `vigil_event_to_alert_seconds` | summary | | from reading the oldest record of an alert's batch to the alert reaching the outputs |
//! | `vigil_event_to_archive_seconds` | summary | | from reading a batch's oldest record to the batch being durable, once per event |
//!
//! Summaries come from HDR histograms (3 significant digits, microsecond resolution, over the whole run):
//! quantiles `0.5`, `0.9`, `0.99` and `1` (the maximum), with `_sum` and `_count`. Updates happen once per
//! batch or alert, never per record, so one mutex is enough.

mod http;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;

pub use http::{Limits, serve, serve_with};

/// Labels of a partition's counters.
type PartitionKey = (String, i32);

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
}

/// The stages of a micro-batch, in order.
pub const STAGES: [&str; 4] = ["normalize", "rules", "emit", "archive"];

#[derive(Debug)]
struct Inner {
    partitions: BTreeMap<PartitionKey, PartitionCounters>,
    alerts: BTreeMap<String, u64>,
    quarantined: BTreeMap<String, u64>,
    stage_seconds: [f64; 4],
    lag: BTreeMap<PartitionKey, i64>,
    batch_stage: [Histogram<u64>; 4],
    event_to_alert: Histogram<u64>,
    event_to_archive: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 hour, 3 significant digits; values above saturate rather than fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// The metrics of one pipeline; cheap to clone (one shared registry).
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        let inner = Inner {
            partitions: BTreeMap::new(),
            alerts: BTreeMap::new(),
            quarantined: BTreeMap::new(),
            stage_seconds: [0.0; 4],
            lag: BTreeMap::new(),
            batch_stage: [histogram(), histogram(), histogram(), histogram()],
            event_to_alert: histogram(),
            event_to_archive: histogram(),
        };
        Metrics { inner: Arc::new(Mutex::new(inner)) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain numbers behind: keep serving them.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records read into a partition's open batch.
    pub fn read(&self, ingest_source: &str, partition: i32, records: u64, bytes: u64) {
        let mut inner = self.lock();
        let c = inner.partitions.entry((ingest_source.to_string(), partition)).or_default();
        c.records_read += records;
        c.bytes_read += bytes;
    }

    /// A batch of a partition became durable: its events and dead letters, and how long after its oldest
    /// record was read.
    pub fn archived(&self, ingest_source: &str, partition: i32, events: u64, dead_letters: u64, since_read: Duration) {
        let mut inner = self.lock();
        let c = inner.partitions.entry((ingest_source.to_string(), partition)).or_default();
        c.events_archived += events;
        c.dead_letters += dead_letters;
        c.batches += 1;
        let rows = (events + dead_letters).max(1);
        let _ = inner.event_to_archive.record_n(micros(since_read), rows);
    }

    /// Time one batch spent in `stage` (one of [`STAGES`]).
    pub fn stage(&self, stage: &str, spent: Duration) {
        let Some(i) = STAGES.iter().position(|s| *s == stage) else { return };
        let mut inner = self.lock();
        inner.stage_seconds[i] += spent.as_secs_f64();
        let _ = inner.batch_stage[i].record(micros(spent));
    }

    /// An alert of `rule` reached the outputs, `since_read` after the oldest record of its batch was read.
    pub fn alert(&self, rule: &str, since_read: Duration) {
        let mut inner = self.lock();
        *inner.alerts.entry(rule.to_string()).or_default() += 1;
        let _ = inner.event_to_alert.record(micros(since_read));
    }

    /// A batch of a partition held `events` dated past the future-skew limit.
    pub fn future_dated(&self, ingest_source: &str, partition: i32, events: u64) {
        self.lock().partitions.entry((ingest_source.to_string(), partition)).or_default().future_dated += events;
    }

    /// `rule` was quarantined: over its budget, or failed at run time.
    pub fn rule_quarantined(&self, rule: &str) {
        *self.lock().quarantined.entry(rule.to_string()).or_default() += 1;
    }

    /// The consumer lag of a Kafka partition (messages between its committed or read position and its end).
    pub fn kafka_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lock().lag.insert((topic.to_string(), partition), lag);
    }

    /// A Kafka partition left this member: its lag is someone else's now.
    pub fn forget_kafka_partition(&self, topic: &str, partition: i32) {
        self.lock().lag.remove(&(topic.to_string(), partition));
    }

    /// Counters of every partition so far.
    pub fn partitions(&self) -> BTreeMap<(String, i32), PartitionCounters> {
        self.lock().partitions.clone()
    }

    /// Quantiles (0.5, 0.9, 0.99, max) of the event-to-alert latency, `None` before the first alert.
    pub fn event_to_alert_quantiles(&self) -> Option<[Duration; 4]> {
        quantiles(&self.lock().event_to_alert)
    }

    /// Quantiles (0.5, 0.9, 0.99, max) of the event-to-archive latency, `None` before the first batch.
    pub fn event_to_archive_quantiles(&self) -> Option<[Duration; 4]> {
        quantiles(&self.lock().event_to_archive)
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::with_capacity(4096);
        type Field = fn(&PartitionCounters) -> u64;
        let per_partition: [(&str, &str, Field); 6] = [
            ("vigil_records_read_total", "Records read from the input.", |c| c.records_read),
            ("vigil_bytes_read_total", "Bytes of the records read.", |c| c.bytes_read),
            ("vigil_events_archived_total", "Events durable in the archive.", |c| c.events_archived),
            ("vigil_dead_letters_total", "Records sent to the dead letters (durable).", |c| c.dead_letters),
            ("vigil_batches_total", "Micro-batches archived.", |c| c.batches),
            (
                "vigil_events_future_dated_total",
                "Events dated past the future-skew limit: archived and flagged, event time not moved.",
                |c| c.future_dated,
            ),
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
        header(&mut out, "vigil_alerts_total", "Alerts raised, per rule.", "counter");
        for (rule, n) in &inner.alerts {
            let _ = writeln!(out, "vigil_alerts_total{{rule=\"{}\"}} {n}", escape(rule));
        }
        header(&mut out, "vigil_rules_quarantined_total", "Rules quarantined for the rest of the run.", "counter");
        for (rule, n) in &inner.quarantined {
            let _ = writeln!(out, "vigil_rules_quarantined_total{{rule=\"{}\"}} {n}", escape(rule));
        }
        header(&mut out, "vigil_stage_seconds_total", "Wall time spent in each stage of the micro-batches.", "counter");
        for (stage, seconds) in STAGES.iter().zip(inner.stage_seconds) {
            let _ = writeln!(out, "vigil_stage_seconds_total{{stage=\"{stage}\"}} {seconds:.6}");
        }
        header(&mut out, "vigil_kafka_consumer_lag", "Messages behind the end of each assigned partition.", "gauge");
        for ((topic, partition), lag) in &inner.lag {
            let _ = writeln!(
                out,
                "vigil_kafka_consumer_lag{{topic=\"{}\",partition=\"{partition}\"}} {lag}",
                escape(topic)
            );
        }
        header(&mut out, "vigil_batch_stage_seconds", "Per micro-batch: seconds in each stage.", "summary");
        for (stage, h) in STAGES.iter().zip(&inner.batch_stage) {
            summary(&mut out, "vigil_batch_stage_seconds", &format!("stage=\"{stage}\""), h);
        }
        header(
            &mut out,
            "vigil_event_to_alert_seconds",
            "From reading the oldest record of an alert's batch to the alert reaching the outputs.",
            "summary",
        );
        summary(&mut out, "vigil_event_to_alert_seconds", "", &inner.event_to_alert);
        header(
            &mut out,
            "vigil_event_to_archive_seconds",
            "From reading a batch's oldest record to the batch being durable, once per event.",
            "summary",
        );
        summary(&mut out, "vigil_event_to_archive_seconds", "", &inner.event_to_archive);
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

fn summary(out: &mut String, name: &str, labels: &str, h: &Histogram<u64>) {
    let sep = if labels.is_empty() { "" } else { "," };
    // An empty histogram reports zeros.
    let values = quantiles(h).unwrap_or([Duration::ZERO; 4]);
    for (q, value) in ["0.5", "0.9", "0.99", "1"].into_iter().zip(values) {
        let _ = writeln!(out, "{name}{{{labels}{sep}quantile=\"{q}\"}} {}", value.as_micros() as f64 / 1e6);
    }
    let sum = h.mean() * h.len() as f64 / 1e6;
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {sum:.6}\n{name}_count{braces} {}", h.len());
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_summaries_in_the_text_format() {
        let m = Metrics::new();
        m.read("file-ab\"c", 0, 10, 1000);
        m.archived("file-ab\"c", 0, 9, 1, Duration::from_millis(250));
        m.stage("rules", Duration::from_millis(4));
        m.alert("aws_root", Duration::from_millis(120));
        m.alert("aws_root", Duration::from_millis(80));
        m.kafka_lag("logs", 3, 42);
        m.future_dated("file-ab\"c", 0, 3);
        m.rule_quarantined("runaway");
        let text = m.render();
        for line in [
            r#"vigil_records_read_total{ingest_source="file-ab\"c",partition="0"} 10"#,
            r#"vigil_bytes_read_total{ingest_source="file-ab\"c",partition="0"} 1000"#,
            r#"vigil_events_archived_total{ingest_source="file-ab\"c",partition="0"} 9"#,
            r#"vigil_dead_letters_total{ingest_source="file-ab\"c",partition="0"} 1"#,
            r#"vigil_alerts_total{rule="aws_root"} 2"#,
            r#"vigil_events_future_dated_total{ingest_source="file-ab\"c",partition="0"} 3"#,
            r#"vigil_rules_quarantined_total{rule="runaway"} 1"#,
            r#"vigil_kafka_consumer_lag{topic="logs",partition="3"} 42"#,
            r#"vigil_stage_seconds_total{stage="rules"} 0.004000"#,
            r#"vigil_event_to_alert_seconds_count 2"#,
            r#"vigil_event_to_archive_seconds_count 10"#,
            "# TYPE vigil_event_to_alert_seconds summary",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        let max = text.lines().find(|l| l.starts_with(r#"vigil_event_to_alert_seconds{quantile="1"}"#)).expect("max");
        let value: f64 = max.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("number");
        assert!((value - 0.12).abs() < 0.001, "{max}");
        let p50 = m.event_to_alert_quantiles().expect("alerts recorded")[0];
        assert!(p50 >= Duration::from_millis(79) && p50 <= Duration::from_millis(81), "{p50:?}");
        m.forget_kafka_partition("logs", 3);
        assert!(!m.render().contains("vigil_kafka_consumer_lag{"));
    }
}

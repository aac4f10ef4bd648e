//! What a run did, per input and in total, and whether every record, and every byte of every record, is
//! accounted for: records read = archived as events + dead-lettered, and the bytes of the records read =
//! the raw bytes archived in events + the bytes kept in dead letters (rows, and blobs for oversized
//! records, counted from the manifest entries written). A record cut anywhere shows as a byte mismatch.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// One source partition's counts: an input file, or a Kafka topic partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InputSummary {
    /// Path (`-` for stdin).
    pub input: String,
    /// Format name.
    pub format: String,
    /// `file-<fingerprint>`, or the Kafka topic.
    pub ingest_source: String,
    /// Kafka partition, 0 for files.
    pub partition: i32,
    /// Records read in this run (blank lines are not records).
    pub records_read: u64,
    /// Bytes of the records read in this run (each record whole, without line terminators).
    pub bytes_read: u64,
    /// Raw bytes archived in events (their `raw` column).
    pub event_bytes: u64,
    /// Bytes kept in dead letters: the `raw` of their rows, and for an oversized record its whole blob
    /// instead of its row's prefix.
    pub dead_letter_bytes: u64,
    /// Archived as events.
    pub events: u64,
    /// Archived as dead letters.
    pub dead_letters: u64,
    /// Blank lines skipped.
    pub skipped_blank: u64,
    /// Records already in the archive from an earlier run, not processed again.
    pub already_archived: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Micro-batches committed.
    pub batches: u64,
    /// Kafka offsets deleted by the broker before they were read (recorded as completeness breaks).
    pub lost: u64,
    /// Events dated past the future-skew limit: archived and flagged, but they did not move event time.
    pub future_dated: u64,
    /// Stopped by a shutdown before the end of the input (the rest is read on the next run).
    pub interrupted: bool,
    /// Alerts archived, per rule id (summed into [`RunSummary::alerts_by_rule`]).
    #[serde(skip)]
    pub alerts_by_rule: BTreeMap<String, u64>,
}

impl InputSummary {
    /// Adds a batch that became durable (the same counts the metrics add).
    pub fn add(&mut self, counts: &vigil_metrics::BatchCounts) {
        self.records_read += counts.records_read;
        self.bytes_read += counts.bytes_read;
        self.events += counts.events;
        self.event_bytes += counts.event_bytes;
        self.dead_letters += counts.dead_letter_total();
        self.dead_letter_bytes += counts.dead_letter_bytes;
        self.skipped_blank += counts.skipped;
        self.alerts += counts.alert_total();
        self.batches += 1;
        for (rule, n) in &counts.alerts {
            *self.alerts_by_rule.entry(rule.clone()).or_default() += n;
        }
    }

    /// Whether every record read ended up in exactly one of events and dead letters, whole.
    pub fn reconciles(&self) -> bool {
        self.records_reconcile() && self.bytes_reconcile()
    }

    /// Records read = events + dead letters.
    pub fn records_reconcile(&self) -> bool {
        self.records_read == self.events + self.dead_letters
    }

    /// Bytes read = raw bytes in events + bytes kept in dead letters.
    pub fn bytes_reconcile(&self) -> bool {
        self.bytes_read == self.event_bytes + self.dead_letter_bytes
    }
}

/// A whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Per input file.
    pub inputs: Vec<InputSummary>,
    /// Alerts per rule id (rules with none are listed with 0).
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Stateful rules: signals released, late (not evaluated), keys evicted, forced releases.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rule_state: BTreeMap<String, vigil_rules::stateful::StateCounters>,
    /// Rule ids active in the run.
    pub rules: Vec<String>,
    /// Rules quarantined during the run (over budget or failed at run time), with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<QuarantinedRule>,
    /// Evidence location.
    pub evidence: String,
    /// The signed digest written at the end of the run (its seq and key id); `None`: not signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<SignedDigest>,
    /// A shutdown (SIGTERM) stopped the run; everything read was made durable.
    pub interrupted: bool,
    /// Kafka with `until_caught_up`: every partition reached its end offset seen at assignment.
    pub caught_up: bool,
    /// Wall time.
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// Wall time per stage, summed over micro-batches.
    pub stages: StageTimes,
    /// How long events took to reach an alert and the archive (see `vigil_metrics`).
    pub latency: Latency,
}

/// The digest that signs what a run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SignedDigest {
    /// Its sequence number in the archive's digest chain.
    pub seq: u64,
    /// The key id it is signed with.
    pub key_id: String,
}

/// A rule that stopped being evaluated during the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QuarantinedRule {
    /// The rule's id.
    pub rule: String,
    /// Why (the limit it passed, or its run-time error).
    pub reason: String,
}

/// Quantiles of the run's latencies, from the metrics' HDR histograms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// From reading the oldest record of an alert's batch to the alert reaching the outputs; `None`
    /// without alerts.
    pub event_to_alert: Option<Quantiles>,
    /// From reading a batch's oldest record to the batch being durable, counted once per event.
    pub event_to_archive: Option<Quantiles>,
}

/// p50, p90, p99 and maximum, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    /// Median.
    #[serde(serialize_with = "seconds")]
    pub p50: Duration,
    /// 90th percentile.
    #[serde(serialize_with = "seconds")]
    pub p90: Duration,
    /// 99th percentile.
    #[serde(serialize_with = "seconds")]
    pub p99: Duration,
    /// Maximum.
    #[serde(serialize_with = "seconds")]
    pub max: Duration,
}

impl Quantiles {
    /// From `[p50, p90, p99, max]`.
    pub fn from_array([p50, p90, p99, max]: [Duration; 4]) -> Self {
        Quantiles { p50, p90, p99, max }
    }
}

impl fmt::Display for Quantiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }
}

/// Wall time per pipeline stage, summed over every micro-batch (a batch goes through them one after the
/// other; each stage may use every worker thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimes {
    /// Normalizing records into Arrow batches (JSON or text parsing included).
    #[serde(serialize_with = "seconds")]
    pub normalize: Duration,
    /// Running the rules and the stateful rules' state machines.
    #[serde(serialize_with = "seconds")]
    pub rules: Duration,
    /// Sending alerts and dead letters to their outputs.
    #[serde(serialize_with = "seconds")]
    pub emit: Duration,
    /// Encoding Parquet, writing the evidence files and the manifest entry, storing rule state.
    #[serde(serialize_with = "seconds")]
    pub archive: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl RunSummary {
    /// Totals over every input.
    pub fn total(&self) -> InputSummary {
        let mut t = InputSummary { input: "total".into(), ..InputSummary::default() };
        for i in &self.inputs {
            t.records_read += i.records_read;
            t.bytes_read += i.bytes_read;
            t.event_bytes += i.event_bytes;
            t.dead_letter_bytes += i.dead_letter_bytes;
            t.events += i.events;
            t.dead_letters += i.dead_letters;
            t.skipped_blank += i.skipped_blank;
            t.already_archived += i.already_archived;
            t.alerts += i.alerts;
            t.batches += i.batches;
            t.lost += i.lost;
            t.future_dated += i.future_dated;
        }
        t
    }

    /// Whether every input reconciles.
    pub fn reconciles(&self) -> bool {
        self.inputs.iter().all(InputSummary::reconciles)
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        writeln!(
            f,
            "{:<60} {:>15} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "input", "format", "read", "archived", "dead", "earlier", "alerts"
        )?;
        for i in self.inputs.iter().chain(std::iter::once(&total)) {
            let chars = i.input.chars().count();
            let name = if chars > 60 {
                format!("...{}", i.input.chars().skip(chars - 57).collect::<String>())
            } else {
                i.input.clone()
            };
            writeln!(
                f,
                "{name:<60} {:>15} {:>9} {:>9} {:>9} {:>9} {:>9}",
                i.format, i.records_read, i.events, i.dead_letters, i.already_archived, i.alerts
            )?;
        }
        writeln!(f)?;
        let check = if self.inputs.iter().all(InputSummary::records_reconcile) { "ok" } else { "MISMATCH" };
        writeln!(
            f,
            "records read {} = archived {} + dead-lettered {} ({check}); {} already archived by an earlier run, {} blank lines",
            total.records_read, total.events, total.dead_letters, total.already_archived, total.skipped_blank
        )?;
        let check = if self.inputs.iter().all(InputSummary::bytes_reconcile) { "ok" } else { "MISMATCH" };
        writeln!(
            f,
            "record bytes read {} = raw bytes archived in events {} + kept in dead letters {} ({check})",
            total.bytes_read, total.event_bytes, total.dead_letter_bytes
        )?;
        for i in self.inputs.iter().filter(|i| !i.reconciles()) {
            writeln!(
                f,
                "MISMATCH in {} ({}): records {} read, {} + {} archived; bytes {} read, {} + {} archived",
                i.input,
                i.ingest_source,
                i.records_read,
                i.events,
                i.dead_letters,
                i.bytes_read,
                i.event_bytes,
                i.dead_letter_bytes
            )?;
        }
        if let Some(q) = self.latency.event_to_archive {
            writeln!(f, "latency read -> archived: {q}")?;
        }
        if let Some(q) = self.latency.event_to_alert {
            writeln!(f, "latency read -> alert: {q}")?;
        }
        if total.lost > 0 {
            writeln!(
                f,
                "COMPLETENESS BREAK: {} Kafka offsets were deleted by the broker before they were read (recorded in the manifest chain)",
                total.lost
            )?;
        }
        if total.future_dated > 0 {
            writeln!(
                f,
                "{} event(s) dated in the future beyond the allowed skew: archived and flagged (alert \
                 `event_time_in_future`), event time not moved to them",
                total.future_dated
            )?;
        }
        for q in &self.quarantined {
            writeln!(f, "RULE QUARANTINED: {} stopped being evaluated for the rest of the run: {}", q.rule, q.reason)?;
        }
        if self.interrupted {
            writeln!(f, "stopped by a shutdown: everything read was archived; the next run continues from there")?;
        }
        writeln!(f, "alerts per rule:")?;
        for rule in &self.rules {
            writeln!(f, "  {:>6}  {rule}", self.alerts_by_rule.get(rule).copied().unwrap_or(0))?;
        }
        // vigil's own alerts (`rule_failed`, `event_time_in_future`): no rule file behind them
        for (rule, n) in self.alerts_by_rule.iter().filter(|(r, _)| !self.rules.contains(r)) {
            writeln!(f, "  {n:>6}  {rule} (vigil)")?;
        }
        for (rule, c) in self.rule_state.iter().filter(|(_, c)| c.late + c.evicted + c.forced > 0) {
            writeln!(
                f,
                "  {rule}: {} late event(s) beyond its allowed lateness (archived, not evaluated), {} key(s) evicted, \
                 {} released early",
                c.late, c.evicted, c.forced
            )?;
        }
        writeln!(f, "evidence: {}", self.evidence)?;
        match &self.digest {
            Some(d) => writeln!(f, "evidence signed: digest {} (key {})", d.seq, d.key_id)?,
            None => writeln!(
                f,
                "evidence NOT signed: no signing key ([evidence] signing_key_file; `vigil keys generate`), so \
                 `vigil verify --public-key` cannot prove it"
            )?,
        }
        write!(
            f,
            "{} records in {:.2}s ({:.0} records/s)",
            total.records_read,
            self.elapsed.as_secs_f64(),
            total.records_read as f64 / self.elapsed.as_secs_f64().max(1e-9)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(records: (u64, u64, u64), bytes: (u64, u64, u64)) -> InputSummary {
        InputSummary {
            input: "a.log".into(),
            records_read: records.0,
            events: records.1,
            dead_letters: records.2,
            bytes_read: bytes.0,
            event_bytes: bytes.1,
            dead_letter_bytes: bytes.2,
            ..InputSummary::default()
        }
    }

    #[test]
    fn a_record_cut_short_is_a_mismatch_even_when_the_records_add_up() {
        let whole = RunSummary { inputs: vec![input((3, 2, 1), (300, 100, 200))], ..RunSummary::default() };
        assert!(whole.reconciles());
        let text = whole.to_string();
        assert!(
            text.contains("record bytes read 300 = raw bytes archived in events 100 + kept in dead letters 200 (ok)")
        );
        assert!(!text.contains("MISMATCH"), "{text}");

        // The dead letter kept only part of its bytes: the records add up, the bytes do not.
        let cut = RunSummary { inputs: vec![input((3, 2, 1), (300, 100, 150))], ..RunSummary::default() };
        assert!(!cut.reconciles());
        let text = cut.to_string();
        assert!(text.contains("dead-lettered 1 (ok)"), "{text}");
        assert!(text.contains("kept in dead letters 150 (MISMATCH)"), "{text}");
        assert!(text.contains("MISMATCH in a.log"), "{text}");
        let json = serde_json::to_value(&cut).unwrap();
        assert_eq!(json["inputs"][0]["bytes_read"], 300);
        assert_eq!(json["inputs"][0]["dead_letter_bytes"], 150);
    }
}

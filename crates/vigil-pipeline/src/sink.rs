//! Outputs for alerts and dead letters: NDJSON (a file, appended, flushed and synced per batch, or
//! stdout) and/or a Kafka topic (acknowledged by the broker before the batch is checkpointed). Alerts
//! may also go to webhooks, Slack and PagerDuty: they are queued durably (`vigil_destinations`) before
//! the batch is checkpointed and delivered in the background, so a destination that is down delays
//! nothing. Alerts are written as vigil's JSON or as OCSF Detection Findings ([`ocsf`]).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

pub mod ocsf;

use base64::Engine;
use vigil_kafka::{KafkaSink, OutRecord};
use vigil_normalize::{DeadLetter, Normalizer};
use vigil_rules::Alert;
use vigil_schema::PartitionId;

use crate::config::{AlertFormat, OutputConfig, PipelineConfig};
use crate::{Error, Result};

/// Where one kind of record (alerts or dead letters) goes; every target is written before the batch's
/// checkpoint.
#[derive(Debug, Default)]
pub struct Output {
    ndjson: Option<NdjsonSink>,
    kafka: Option<KafkaSink>,
    format: AlertFormat,
    destinations: Option<vigil_destinations::Destinations>,
    drain: std::time::Duration,
}

impl Output {
    /// Opens the alert outputs of `config`: [`Output::open`], and the destinations with their spool
    /// (secrets read now: a missing one stops the start with what to set), delivering what an earlier run left.
    pub async fn open_alerts(config: &PipelineConfig, metrics: &vigil_metrics::Metrics) -> Result<Self> {
        let mut output = Self::open(&config.alerts).await?;
        if !config.alerts.destinations.is_empty() {
            let root = config.alerts.spool_root(&config.evidence.url).ok_or_else(|| Error::Config {
                origin: "[alerts]".into(),
                reason: "destinations need spool_dir (the archive is not a local directory)".into(),
            })?;
            let env = |name: &str| std::env::var(name).ok();
            output.destinations =
                Some(vigil_destinations::Destinations::open(&config.alerts.destinations, &root, metrics, &env)?);
        }
        Ok(output)
    }

    /// At the end of a run: gives the destinations `drain_secs` (none in a `hurry`: a shutdown signal) to
    /// deliver what is queued; returns what is left (queued durably, delivered by the next run).
    pub async fn finish(&mut self, hurry: bool) -> u64 {
        let limit = if hurry { std::time::Duration::ZERO } else { self.drain };
        match self.destinations.take() {
            Some(destinations) => destinations.finish(limit).await,
            None => 0,
        }
    }

    /// Alerts queued for destinations and not yet delivered.
    pub fn pending(&self) -> u64 {
        self.destinations.as_ref().map_or(0, |d| d.pending())
    }

    /// Opens the targets of `config` (connecting to Kafka, which fails fast with what to fix).
    pub async fn open(config: &OutputConfig) -> Result<Self> {
        let ndjson = config.path.as_deref().map(NdjsonSink::open).transpose()?;
        let kafka = match &config.kafka {
            Some(endpoint) => {
                let endpoint = endpoint.clone();
                Some(
                    tokio::task::spawn_blocking(move || KafkaSink::connect(&endpoint))
                        .await
                        .map_err(|e| Error::Internal(format!("connect task failed: {e}")))??,
                )
            }
            None => None,
        };
        Ok(Output {
            ndjson,
            kafka,
            format: config.format,
            destinations: None,
            drain: std::time::Duration::from_secs(config.drain_secs),
        })
    }

    /// Writes alerts to every target (destinations: queued durably).
    pub async fn alerts(&mut self, alerts: &[Alert]) -> Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let format = self.format;
        let lines: Vec<String> = alerts.iter().map(|a| formatted_line(a, format)).collect();
        if let Some(sink) = &mut self.ndjson {
            sink.write_lines(lines.iter().cloned())?;
        }
        if let Some(destinations) = &self.destinations {
            let outgoing: Vec<vigil_destinations::Outgoing> =
                alerts.iter().zip(&lines).map(|(a, line)| outgoing(a, line)).collect();
            destinations.enqueue(&outgoing)?;
        }
        if let Some(kafka) = &mut self.kafka {
            let records: Vec<OutRecord> = alerts
                .iter()
                .zip(lines)
                .map(|(a, line)| OutRecord {
                    key: a.alert_id.clone(),
                    value: line.into_bytes(),
                    headers: vec![
                        ("vigil.rule_id", a.rule_id.clone()),
                        ("vigil.severity", a.severity.to_string()),
                        ("vigil.criteria", a.criteria.join(",")),
                    ],
                })
                .collect();
            kafka.send_all(&records).await?;
        }
        Ok(())
    }

    /// Writes dead letters to every target.
    pub async fn dead_letters(&mut self, dead: &[DeadLetter], origin: &DeadLetterOrigin<'_>) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        if let Some(sink) = &mut self.ndjson {
            sink.write_lines(dead.iter().map(|d| dead_letter_line(d, origin)))?;
        }
        if let Some(kafka) = &mut self.kafka {
            let records: Vec<OutRecord> = dead.iter().map(|d| dead_letter_record(d, origin)).collect();
            kafka.send_all(&records).await?;
        }
        Ok(())
    }
}

/// Where the dead letters of one batch came from.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterOrigin<'a> {
    /// The normalizer that refused them.
    pub normalizer: &'a dyn Normalizer,
    /// Where they were read: Kafka topic and partition, or `file-<fingerprint>` and 0.
    pub partition: &'a PartitionId,
    /// The input as shown to people.
    pub input: &'a str,
    /// When the batch was read (RFC 3339).
    pub ingest_time: &'a str,
}

/// A dead letter as a Kafka record: the original bytes as value (replayable once fixed), provenance
/// and reason as headers, keyed by its source position.
pub fn dead_letter_record(dead: &DeadLetter, origin: &DeadLetterOrigin<'_>) -> OutRecord {
    OutRecord {
        key: format!("{}-{}-{}", origin.partition.source(), origin.partition.partition, dead.offset),
        value: dead.raw.clone(),
        headers: vec![
            ("vigil.reason_code", dead.code.as_str().to_string()),
            ("vigil.reason", dead.reason.clone()),
            ("vigil.source_topic", origin.partition.source().to_string()),
            ("vigil.source_partition", origin.partition.partition.to_string()),
            ("vigil.source_offset", dead.offset.to_string()),
            ("vigil.format", origin.normalizer.format().to_string()),
            ("vigil.ingest_time", origin.ingest_time.to_string()),
        ],
    }
}

/// An NDJSON output.
#[derive(Debug)]
pub struct NdjsonSink {
    name: String,
    target: Target,
}

#[derive(Debug)]
enum Target {
    Stdout,
    File(BufWriter<File>),
}

impl NdjsonSink {
    /// Opens `path` for appending (creating its directory), or stdout for `-`.
    pub fn open(path: &str) -> Result<Self> {
        let err = |source: std::io::Error| Error::OutputIo { output: path.to_string(), source };
        if path == "-" {
            return Ok(NdjsonSink { name: "-".into(), target: Target::Stdout });
        }
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        Ok(NdjsonSink { name: path.to_string(), target: Target::File(BufWriter::with_capacity(1 << 20, file)) })
    }

    /// Writes lines and makes them durable (flush, and fsync for files).
    pub fn write_lines(&mut self, lines: impl Iterator<Item = String>) -> Result<()> {
        let err = |source: std::io::Error| Error::OutputIo { output: self.name.clone(), source };
        match &mut self.target {
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                for line in lines {
                    match writeln!(out, "{line}") {
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                        other => other.map_err(err)?,
                    }
                }
                match out.flush() {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    other => other.map_err(err),
                }
            }
            Target::File(file) => {
                for line in lines {
                    file.write_all(line.as_bytes()).map_err(err)?;
                    file.write_all(b"\n").map_err(err)?;
                }
                file.flush().map_err(err)?;
                file.get_ref().sync_data().map_err(err)
            }
        }
    }
}

/// The NDJSON line of an alert.
pub fn alert_line(alert: &Alert) -> String {
    serde_json::to_string(alert).unwrap_or_default()
}

/// The line of an alert in `format`.
pub fn formatted_line(alert: &Alert, format: AlertFormat) -> String {
    match format {
        AlertFormat::Vigil => alert_line(alert),
        AlertFormat::Ocsf => ocsf::detection_finding(alert).to_string(),
    }
}

/// An alert for the destinations: what Slack and PagerDuty messages show, and `line` as the webhook body.
fn outgoing(alert: &Alert, line: &str) -> vigil_destinations::Outgoing {
    vigil_destinations::Outgoing {
        alert_id: alert.alert_id.clone(),
        rule_id: alert.rule_id.clone(),
        title: alert.rule_title.clone(),
        severity: alert.severity.to_string(),
        time: alert.time.clone(),
        criteria: alert.criteria.clone(),
        // A grouped alert counts every event of its window; it names at most the first 100.
        events: alert
            .fields
            .get("event_count")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(alert.event_ids.len() as u64),
        fields: alert.fields.clone(),
        source_rule: alert.source_rule.as_ref().and_then(|s| serde_json::to_value(s).ok()),
        webhook_body: line.to_string(),
    }
}

/// The NDJSON line of a dead letter: provenance, reason and the original bytes (`raw` as text when it
/// is UTF-8, else `raw_base64`).
pub fn dead_letter_line(dead: &DeadLetter, origin: &DeadLetterOrigin<'_>) -> String {
    let mut object = serde_json::Map::new();
    object.insert("ingest_time".into(), origin.ingest_time.into());
    object.insert("format".into(), origin.normalizer.format().into());
    object.insert("source".into(), origin.normalizer.source().into());
    object.insert("input".into(), origin.input.into());
    object.insert("ingest_source".into(), origin.partition.source().into());
    object.insert("ingest_partition".into(), origin.partition.partition.into());
    object.insert("ingest_offset".into(), dead.offset.into());
    object.insert("reason_code".into(), dead.code.as_str().into());
    object.insert("reason".into(), dead.reason.clone().into());
    match std::str::from_utf8(&dead.raw) {
        Ok(text) => object.insert("raw".into(), text.into()),
        Err(_) => {
            object.insert("raw_base64".into(), base64::engine::general_purpose::STANDARD.encode(&dead.raw).into())
        }
    };
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_normalize::{Format, FormatOptions, ReasonCode};

    #[test]
    fn dead_letters_keep_text_raw_or_base64() {
        let normalizer = Format::ApacheCombined.build(&FormatOptions::default()).unwrap();
        let text =
            DeadLetter { offset: 7, code: ReasonCode::UnrecognizedLine, reason: "r".into(), raw: b"plain".to_vec() };
        let origin = DeadLetterOrigin {
            normalizer: normalizer.as_ref(),
            partition: &PartitionId::new("file-x", 0),
            input: "in.log",
            ingest_time: "t",
        };
        let line: serde_json::Value = serde_json::from_str(&dead_letter_line(&text, &origin)).unwrap();
        assert_eq!(line["raw"], "plain");
        assert_eq!(line["ingest_offset"], 7);
        assert_eq!(line["reason_code"], "unrecognized_line");
        let binary = DeadLetter { raw: vec![0xff, 0xfe, b'x'], ..text };
        let line: serde_json::Value = serde_json::from_str(&dead_letter_line(&binary, &origin)).unwrap();
        assert!(line.get("raw").is_none());
        assert_eq!(line["raw_base64"], "//54");
        let record =
            dead_letter_record(&binary, &DeadLetterOrigin { partition: &PartitionId::new("logs", 2), ..origin });
        assert_eq!(record.key, "logs-2-7");
        assert_eq!(record.value, vec![0xff, 0xfe, b'x']);
        assert!(record.headers.contains(&("vigil.source_partition", "2".to_string())));
        assert!(record.headers.contains(&("vigil.reason_code", "unrecognized_line".to_string())));
    }
}

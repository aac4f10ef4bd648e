//! `[alerts]` and `[dead_letters]`: NDJSON files, Kafka topics and alert destinations.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_kafka::KafkaEndpoint;

use crate::{Error, Result};

/// An output of alerts or dead letters: an NDJSON file (or stdout) and/or a Kafka topic; for alerts also
/// webhooks, Slack and PagerDuty (`destinations`, see `vigil_destinations`), in vigil's JSON or OCSF.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// File path, or `-` for stdout; none means not written (still archived).
    pub path: Option<String>,
    /// A Kafka topic (`topic` names it).
    pub kafka: Option<KafkaEndpoint>,
    /// Alerts: `vigil` (default: vigil's alert JSON) or `ocsf` (OCSF Detection Finding, class 2004),
    /// for the file, the topic and webhooks alike. Also `--alerts-format`.
    #[serde(default)]
    pub format: AlertFormat,
    /// Alerts: webhooks, Slack, PagerDuty (`[[alerts.destinations]]`, or `--alerts URL`), delivered from a
    /// durable local queue at least once.
    #[serde(default)]
    pub destinations: Vec<vigil_destinations::DestinationConfig>,
    /// Alerts: where the queue of undelivered alerts lives (default `{evidence}/state/alert-spool` for a
    /// local archive; required with an `s3://` archive: a local disk that outlives the process).
    #[serde(default)]
    pub spool_dir: Option<String>,
    /// Alerts: at the end of a run, seconds to go on delivering what is queued (default 10); what is
    /// left stays queued for the next run.
    #[serde(default = "default_drain_secs")]
    pub drain_secs: u64,
}

fn default_drain_secs() -> u64 {
    10
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            path: None,
            kafka: None,
            format: AlertFormat::default(),
            destinations: Vec::new(),
            spool_dir: None,
            drain_secs: default_drain_secs(),
        }
    }
}

/// How alerts are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    /// vigil's alert JSON (`vigil_rules::Alert`).
    #[default]
    Vigil,
    /// OCSF Detection Finding (see [`crate::sink::ocsf`]).
    Ocsf,
}

impl std::str::FromStr for AlertFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "vigil" | "json" => Ok(AlertFormat::Vigil),
            "ocsf" => Ok(AlertFormat::Ocsf),
            other => Err(Error::Config {
                origin: "--alerts-format".into(),
                reason: format!("`{}` is no alert format: write vigil or ocsf", vigil_schema::redact::text(other)),
            }),
        }
    }
}

impl OutputConfig {
    /// The directory of the alert spool: `spool_dir`, else `{evidence}/state/alert-spool` when the
    /// archive is a local directory.
    pub fn spool_root(&self, evidence_url: &str) -> Option<PathBuf> {
        if let Some(dir) = &self.spool_dir {
            return Some(PathBuf::from(dir));
        }
        let local = evidence_url.strip_prefix("file://").or((!evidence_url.contains("://")).then_some(evidence_url));
        local.map(|root| Path::new(root).join("state").join("alert-spool"))
    }

    /// Sets the output a flag names: `kafka://HOST:PORT/TOPIC`, a destination (`https://...`, `slack+https://...`,
    /// `slack://`, `pagerduty://`), or a path (`-` for stdout).
    pub fn set_from_flag(&mut self, flag: &str, name: &str) -> Result<()> {
        if vigil_destinations::DestinationConfig::is_destination(flag) {
            if name != "alerts" {
                return Err(Error::Config {
                    origin: format!("--{name}"),
                    reason: "webhooks, Slack and PagerDuty take alerts only: give a file, - or kafka://".into(),
                });
            }
            self.destinations.push(vigil_destinations::DestinationConfig::from_url(flag));
        } else if KafkaEndpoint::is_url(flag) {
            let endpoint = KafkaEndpoint::from_url(flag)
                .map_err(|source| Error::KafkaUrl { origin: format!("--{name}"), source })?;
            self.kafka = Some(endpoint.into_output());
        } else {
            self.path = Some(flag.to_string());
        }
        Ok(())
    }
}

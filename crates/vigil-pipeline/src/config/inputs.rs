//! `[[inputs]]`: one input, a file, a directory, stdin or Kafka, and its format.

use serde::Deserialize;
use vigil_kafka::KafkaEndpoint;
use vigil_normalize::{Format, FormatOptions};

use crate::{Error, Result};

/// One input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Format name.
    pub format: String,
    /// File, directory, `.gz` file, `-` for stdin, or a `kafka://` URL.
    #[serde(default)]
    pub path: String,
    /// A Kafka input (instead of `path`).
    pub kafka: Option<KafkaEndpoint>,
    /// JSON formats: value of the `source` column.
    pub source: Option<String>,
    /// JSON formats: value of the `class` column.
    pub class: Option<String>,
    /// JSON formats: canonical column -> dotted field path.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
    /// `linux_auth`: the year of syslog times without one (default: each file's modification date).
    pub year: Option<i32>,
    /// Line of the config file where this input's `path` is written (0 when it came from a flag).
    #[serde(skip)]
    pub line: usize,
}

impl InputConfig {
    /// Parses `FORMAT:PATH` as given to `--input`.
    pub fn from_flag(flag: &str) -> Result<Self> {
        let (format, path) = flag.split_once(':').ok_or_else(|| Error::Config {
            origin: "--input".into(),
            reason: format!(
                "`{}` is not FORMAT:PATH (for example cloudtrail:logs/ or apache_combined:-)",
                vigil_schema::redact::text(flag)
            ),
        })?;
        Ok(InputConfig {
            format: format.to_string(),
            path: path.to_string(),
            kafka: None,
            source: None,
            class: None,
            fields: Default::default(),
            year: None,
            line: 0,
        })
    }

    /// The parsed format.
    pub fn format(&self) -> Result<Format> {
        self.format.parse().map_err(|source| Error::Format { origin: format!("input `{}`", self.display()), source })
    }

    /// The Kafka endpoint of a Kafka input (a `kafka` table or a `kafka://` path); `None` for files.
    pub fn kafka_endpoint(&self) -> Option<Result<KafkaEndpoint>> {
        if let Some(k) = &self.kafka {
            return Some(Ok(k.clone()));
        }
        KafkaEndpoint::is_url(&self.path).then(|| {
            KafkaEndpoint::from_url(&self.path).map_err(|source| Error::KafkaUrl { origin: "--input".into(), source })
        })
    }

    /// Whether this input reads Kafka.
    pub fn is_kafka(&self) -> bool {
        self.kafka.is_some() || KafkaEndpoint::is_url(&self.path)
    }

    /// The input as shown to people (never a secret: see `vigil_schema::redact`).
    pub fn display(&self) -> String {
        match self.kafka_endpoint() {
            Some(Ok(k)) => k.describe(),
            _ => vigil_schema::redact::url(&self.path).into_owned(),
        }
    }

    /// Options of the formats.
    pub fn options(&self) -> FormatOptions {
        FormatOptions {
            source: self.source.clone(),
            class: self.class.clone(),
            fields: self.fields.clone(),
            year: self.year,
            file_date: None,
        }
    }
}

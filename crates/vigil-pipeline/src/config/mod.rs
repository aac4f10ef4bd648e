//! Pipeline configuration: a TOML file (`vigil run --config pipelines/demo.toml`) or the same from flags.
//!
//! ```toml
//! [pipeline]
//! batch_rows = 32768        # a micro-batch closes at this many records ...
//! batch_ms = 1000           # ... or this long after its first record, whichever comes first
//! threads = 0               # parse / rule / encode threads; 0 = every core
//! max_buffered_bytes = 33554432   # records held in open batches (all Kafka partitions together): memory bound
//! max_record_bytes = 4194304      # a longer record is dead-lettered `too_large`, kept whole as a blob
//! max_document_bytes = 134217728  # a larger `{"Records":[...]}` document is one such dead letter
//! zstd_level = 1            # Parquet evidence compression
//! stuck_after_secs = 300    # /healthz fails when a partition's records wait this long without progress
//! shutdown_timeout_secs = 60   # SIGTERM: past this, exit non-zero naming what is not durable (--shutdown-timeout)
//!
//! [[inputs]]
//! format = "cloudtrail"     # cloudtrail, k8s_audit, web_access_json, apache_combined, json
//! path = "../fixtures/cloudtrail"   # file, directory (all files, sorted), .gz, or - for stdin
//!
//! [[inputs]]                # a Kafka input: the same keys as the kafka:// URL of --input
//! format = "k8s_audit"
//! kafka = { brokers = ["127.0.0.1:9092"], topics = ["k8s-audit"], group = "vigil" }
//! # or: path = "kafka://127.0.0.1:9092/k8s-audit?group=vigil"; see vigil_kafka::config for every key
//!
//! [[inputs]]
//! format = "json"
//! path = "app.ndjson"
//! source = "myapp.audit"    # JSON formats only: source, class, [inputs.fields] mapping
//! fields = { time = "ts", actor_user = "user.name" }
//!
//! [rules]
//! dirs = ["rules/soc2"]
//! memory_limit_mb = 256     # per rule per batch: over it, the rule is quarantined for the run
//! time_limit_secs = 30      # per rule per batch: the same
//! max_future_skew_secs = 900   # events dated further ahead do not move the rules' event time
//!
//! [evidence]
//! url = "../out/evidence"   # local directory, file:// or s3://BUCKET/PREFIX URL
//! signing_key_file = "/etc/vigil/signing.key"   # or VIGIL_SIGNING_KEY_FILE / VIGIL_SIGNING_KEY; see `vigil keys`
//! digest_interval = "1h"    # a signed digest at least this often, and at shutdown
//! retention_days = 400      # Object Lock default retention; `vigil evidence expire` disposes of what is older
//! min_retention_days = 365  # expire refuses less (unless --allow-short-retention)
//!
//! [alerts]
//! path = "../out/alerts.ndjson"     # or "-" for stdout
//! kafka = { brokers = ["127.0.0.1:9092"], topic = "vigil-alerts" }   # and/or a Kafka topic
//!
//! [dead_letters]
//! path = "../out/dead_letters.ndjson"
//! ```
//!
//! All Kafka inputs of one pipeline are read by one consumer (one group member), so they must name the
//! same brokers, group and properties; each input gives the format of its topics. File inputs are read
//! first, then the Kafka inputs until stopped (SIGTERM) or, with `until_caught_up`, until the end
//! offsets seen at start are consumed.
//!
//! Relative paths in a config file are relative to the file's directory, so a pipeline runs the same
//! from any working directory. Relative paths given as flags are relative to the working directory.
//!
//! # Environment variables in a config file
//!
//! `${NAME}` is replaced by the environment variable `NAME`, and `${NAME:-default}` by it or, when it is
//! unset or empty (as in the shell), by `default` (the text up to the first `}`, as written). `$${` writes
//! a literal `${`. This happens before the TOML is parsed, so a reference can stand anywhere in a value:
//!
//! ```toml
//! [inputs.kafka]
//! brokers = "${KAFKA_BROKERS}"                       # "b-1:9096,b-2:9096": a list, or one string of HOST:PORTs
//! group = "${VIGIL_GROUP:-vigil}"
//! [evidence]
//! url = "s3://${EVIDENCE_BUCKET}/vigil?region=${AWS_REGION:-us-east-1}"
//! [pipeline]
//! threads = ${VIGIL_WORKERS:-2}                      # outside a string: the value as it is
//! ```
//!
//! - Inside a `"..."` string a value is escaped (a `"`, `\` or line break in it stays part of the string);
//!   outside strings it is written as it is; a `'...'` string cannot hold a value with a `'` or a control
//!   character (an error says so: use `"..."`). A default is written as it is, in every place.
//! - Comments are left alone: `# ${NOT_SET}` is no error.
//! - An unset variable without a default is an error naming the variable, the file and the line (every
//!   unset variable, when there are several). NAME is letters, digits and `_`, not starting with a digit;
//!   anything else between `${` and `}` is an error, and so is a `${` without its `}` on the same line.
//! - No error shows a variable's value: a TOML error about a line that got one names the line and gives
//!   TOML's message with each value replaced by its `${NAME}`. The config that results is checked like any
//!   other, so a problem with a value (a broker that is not HOST:PORT) shows that value: keep secrets in
//!   `env:`/`file:` secret references (`[inputs.kafka.secrets]`), never in `${}`.

mod evidence;
mod inputs;
mod interpolate;
mod outputs;
mod problems;
mod rules;
mod settings;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use evidence::{DEFAULT_RETENTION_DAYS, EvidenceConfig, parse_duration};
pub use inputs::InputConfig;
use interpolate::interpolate;
pub use outputs::{AlertFormat, OutputConfig};
pub use rules::{DEFAULT_IDLE_CHECK_SECS, DEFAULT_STATE_CHECKPOINT_SECS, RulesConfig};
pub use settings::Settings;

use crate::{Error, Result};

/// A whole pipeline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Batching and threads.
    #[serde(default)]
    pub pipeline: Settings,
    /// Inputs, read one after the other.
    #[serde(default)]
    pub inputs: Vec<InputConfig>,
    /// Rules.
    #[serde(default)]
    pub rules: RulesConfig,
    /// Evidence archive.
    pub evidence: EvidenceConfig,
    /// Alert output.
    #[serde(default)]
    pub alerts: OutputConfig,
    /// Dead-letter output.
    #[serde(default)]
    pub dead_letters: OutputConfig,
}

fn rebase(base: &Path, value: &str) -> String {
    if value == "-" || value.contains("://") || Path::new(value).is_absolute() {
        value.to_string()
    } else {
        base.join(value).to_string_lossy().into_owned()
    }
}

impl PipelineConfig {
    /// Reads a config file, with its `${VAR}` references replaced from the environment (module docs);
    /// relative paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, |name| std::env::var_os(name))
    }

    /// [`PipelineConfig::load`] with the variables from `lookup`.
    fn load_with(path: &Path, lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Self> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config { origin: origin.clone(), reason: format!("cannot read the file: {e}") })?;
        let expanded = interpolate(&text, &origin, lookup)?;
        let mut config: PipelineConfig =
            toml::from_str(&expanded.text).map_err(|e| expanded.toml_error(&origin, &e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        // Each input's `path = "..."` line, in order, so that problems can name it.
        let mut in_inputs = false;
        let mut input_path_lines = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let t = l.trim();
            if t.starts_with('[') {
                in_inputs = t == "[[inputs]]" || t.starts_with("[inputs.");
                if t == "[inputs.kafka]" {
                    input_path_lines.push(i + 1);
                }
            } else if in_inputs && (t.starts_with("path") || t.starts_with("kafka")) && t.contains('=') {
                input_path_lines.push(i + 1);
            }
        }
        for (input, line) in config.inputs.iter_mut().zip(input_path_lines.into_iter().chain(std::iter::repeat(0))) {
            if !input.path.is_empty() {
                input.path = rebase(&base, &input.path);
            }
            input.line = line;
        }
        for dir in &mut config.rules.dirs {
            *dir = PathBuf::from(rebase(&base, &dir.to_string_lossy()));
        }
        config.evidence.url = rebase(&base, &config.evidence.url);
        if let Some(key) = &mut config.evidence.signing_key_file {
            *key = PathBuf::from(rebase(&base, &key.to_string_lossy()));
        }
        for p in
            [&mut config.alerts.path, &mut config.dead_letters.path, &mut config.alerts.spool_dir].into_iter().flatten()
        {
            *p = rebase(&base, p);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests;

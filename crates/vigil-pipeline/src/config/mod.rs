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

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_kafka::KafkaEndpoint;
use vigil_normalize::{Format, FormatOptions};

use crate::{Error, Result};

/// Micro-batch and parallelism settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// A micro-batch closes at this many records.
    pub batch_rows: usize,
    /// A micro-batch closes this many milliseconds after its first record.
    pub batch_ms: u64,
    /// Worker threads for parsing, rules and encoding; 0 means every core.
    pub threads: usize,
    /// Records larger than this are dead-lettered `too_large` (bytes); their whole bytes are streamed to
    /// a temporary file and archived as a blob, never held in memory.
    pub max_record_bytes: usize,
    /// A JSON document (envelope file) is held in memory up to this size (bytes); a larger one is
    /// dead-lettered whole (one blob) and the run goes on with the next file.
    pub max_document_bytes: usize,
    /// zstd level of the Parquet evidence (default 1: on CloudTrail, level 3 made files 1.2 % smaller and
    /// took 34 % longer to encode).
    pub zstd_level: i32,
    /// Kafka: stop once every assigned partition reached the end offset seen when it was assigned.
    pub until_caught_up: bool,
    /// Records held in open micro-batches are bounded by this many bytes: a batch closes before it would
    /// pass it. Kafka: the bound is on the sum over all partitions, and the largest batch closes first.
    pub max_buffered_bytes: usize,
    /// `/healthz` answers 503 when records of a partition (an open batch past its deadline, or an archive
    /// write not settled) have waited this many seconds without progress, or the loop has not come round
    /// for as long.
    pub stuck_after_secs: u64,
    /// After SIGTERM, the drain (finish the open batches, make them durable, commit their offsets) may
    /// take this many seconds; past it vigil exits non-zero naming what is not durable (those offsets are
    /// not committed: they are read again on the next start). Also `--shutdown-timeout SECS`.
    pub shutdown_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_rows: 32_768,
            batch_ms: 1_000,
            threads: 0,
            max_record_bytes: 4 << 20,
            max_document_bytes: 128 << 20,
            zstd_level: 1,
            until_caught_up: false,
            // One batch is normalized while the previous one is written: with 7.8 KB records (full
            // 32 MiB batches) RSS peaked at 594 MiB; at 64 MiB it was 880 MiB (issue 7 measurements).
            max_buffered_bytes: 32 << 20,
            stuck_after_secs: 300,
            shutdown_timeout_secs: 60,
        }
    }
}

impl Settings {
    /// Threads to use: the setting, or every core.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 { self.threads } else { std::thread::available_parallelism().map_or(1, |n| n.get()) }
    }
}

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

/// Rule directories.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Directories of `.sql` rule files.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Stateful rules: seconds between two stored snapshots of their state (`{evidence}/state/`); 0 stores
    /// after every micro-batch. A restart replays what the archive holds after the snapshot, so a longer
    /// interval costs replay time, never correctness.
    #[serde(default = "default_state_checkpoint_secs")]
    pub state_checkpoint_secs: u64,
    /// Silence rules on Kafka: seconds between two looks at partitions that receive nothing. A partition
    /// quiet for longer counts its wall-clock quiet as event time, so a topic or partition that stops
    /// altogether still raises its silence alerts (within this many seconds of their deadline).
    #[serde(default = "default_idle_check_secs")]
    pub idle_check_secs: u64,
    /// Memory one rule may use on one micro-batch (its operators and its result), in MiB. A rule that
    /// needs more is quarantined for the rest of the run with a `rule_failed` alert.
    #[serde(default = "default_memory_limit_mb")]
    pub memory_limit_mb: u64,
    /// Seconds one rule may take on one micro-batch; longer, it is quarantined like the above.
    #[serde(default = "default_time_limit_secs")]
    pub time_limit_secs: u64,
    /// Events dated more than this many seconds ahead of the wall clock are archived and flagged
    /// (`event_time_in_future`) but do not move the stateful rules' event time.
    #[serde(default = "default_max_future_skew_secs")]
    pub max_future_skew_secs: u64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            dirs: Vec::new(),
            state_checkpoint_secs: DEFAULT_STATE_CHECKPOINT_SECS,
            idle_check_secs: DEFAULT_IDLE_CHECK_SECS,
            memory_limit_mb: default_memory_limit_mb(),
            time_limit_secs: default_time_limit_secs(),
            max_future_skew_secs: default_max_future_skew_secs(),
        }
    }
}

impl RulesConfig {
    /// How the rule engine runs these rules: their budget and the future-skew limit.
    pub fn engine_options(&self) -> vigil_rules::EngineOptions {
        vigil_rules::EngineOptions {
            budget: vigil_rules::RuleBudget {
                memory_bytes: usize::try_from(self.memory_limit_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
                time: std::time::Duration::from_secs(self.time_limit_secs),
            },
            max_future_skew: std::time::Duration::from_secs(self.max_future_skew_secs),
            ..vigil_rules::EngineOptions::default()
        }
    }
}

fn default_memory_limit_mb() -> u64 {
    (vigil_rules::RuleBudget::default().memory_bytes >> 20) as u64
}

fn default_time_limit_secs() -> u64 {
    vigil_rules::RuleBudget::default().time.as_secs()
}

fn default_max_future_skew_secs() -> u64 {
    vigil_rules::DEFAULT_MAX_FUTURE_SKEW.as_secs()
}

/// Default seconds between two looks at idle Kafka partitions.
pub const DEFAULT_IDLE_CHECK_SECS: u64 = 10;

fn default_idle_check_secs() -> u64 {
    DEFAULT_IDLE_CHECK_SECS
}

/// Default seconds between rule state snapshots.
pub const DEFAULT_STATE_CHECKPOINT_SECS: u64 = 60;

fn default_state_checkpoint_secs() -> u64 {
    DEFAULT_STATE_CHECKPOINT_SECS
}

/// Where evidence goes and how long it is kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Local directory, `file://` URL or `s3://BUCKET/PREFIX` (see `vigil_evidence::store`).
    pub url: String,
    /// Days every evidence object is kept (default 400: more than a 12-month audit period plus the
    /// audit itself). On an S3 bucket with Object Lock, vigil sets the bucket's default retention to this,
    /// so nothing can delete or overwrite evidence sooner; `vigil evidence expire` disposes of what is older.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Object Lock mode: `COMPLIANCE` (nobody, not even the account root, can shorten it) or `GOVERNANCE`
    /// (users with s3:BypassGovernanceRetention can).
    #[serde(default = "default_lock_mode")]
    pub object_lock_mode: String,
    /// The private key digests are signed with (PKCS#8 PEM, `vigil keys generate`); else
    /// `VIGIL_SIGNING_KEY_FILE` or `VIGIL_SIGNING_KEY`. Without one, the evidence is not signed and
    /// `vigil verify --public-key` cannot prove it.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// A signed digest at least this often while running, and one at shutdown: `"1h"`, `"15m"`, `"90s"`
    /// or seconds (default 1 h).
    #[serde(default = "default_digest_interval", deserialize_with = "duration")]
    pub digest_interval: std::time::Duration,
    /// `vigil evidence expire` refuses a retention shorter than this (default 365: a SOC 2 Type II period
    /// plus margin) unless `--allow-short-retention`.
    #[serde(default = "default_min_retention_days")]
    pub min_retention_days: u32,
}

fn default_digest_interval() -> std::time::Duration {
    vigil_evidence::digest::DEFAULT_DIGEST_INTERVAL
}

fn default_min_retention_days() -> u32 {
    vigil_evidence::expire::DEFAULT_MIN_RETENTION_DAYS
}

/// Reads a duration written as seconds or as `90s`, `15m`, `1h`, `1d`.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<std::time::Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Seconds(u64),
        Text(String),
    }
    match Written::deserialize(d)? {
        Written::Seconds(s) => Ok(std::time::Duration::from_secs(s)),
        Written::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// Parses `90s`, `15m`, `1h`, `1d` or plain seconds.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` is no duration: write 90s, 15m, 1h or 1d")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is no duration: write 90s, 15m, 1h or 1d"))
}

/// Default evidence retention in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;

fn default_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

fn default_lock_mode() -> String {
    "COMPLIANCE".to_string()
}

impl EvidenceConfig {
    /// What signs this evidence: the key from `signing_key_file`, else `VIGIL_SIGNING_KEY_FILE` or
    /// `VIGIL_SIGNING_KEY`; `None` when none is set.
    pub fn signer(&self) -> Result<Option<std::sync::Arc<vigil_evidence::digest::Signer>>> {
        let key = vigil_evidence::keys::PrivateKey::from_file_or_env(self.signing_key_file.as_deref())?;
        Ok(key.map(|k| std::sync::Arc::new(vigil_evidence::digest::Signer::new(k, self.digest_interval))))
    }

    /// Evidence at `url` with the default retention.
    pub fn at(url: impl Into<String>) -> EvidenceConfig {
        EvidenceConfig {
            url: url.into(),
            retention_days: DEFAULT_RETENTION_DAYS,
            object_lock_mode: default_lock_mode(),
            signing_key_file: None,
            digest_interval: default_digest_interval(),
            min_retention_days: default_min_retention_days(),
        }
    }
}

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

    /// Every problem that can be found without running: settings, formats and mappings, input paths.
    /// Rules are checked by the rule engine.
    pub fn problems(&self, origin: &str) -> Vec<Error> {
        let mut out = Vec::new();
        let mut problem = |reason: String| out.push(Error::Config { origin: origin.to_string(), reason });
        if self.pipeline.batch_rows == 0 {
            problem("pipeline.batch_rows must be at least 1".into());
        }
        if self.pipeline.batch_ms == 0 {
            problem("pipeline.batch_ms must be at least 1".into());
        }
        if !(1..=22).contains(&self.pipeline.zstd_level) {
            problem(format!("pipeline.zstd_level {} is not between 1 and 22", self.pipeline.zstd_level));
        }
        if self.evidence.retention_days < self.evidence.min_retention_days {
            problem(format!(
                "evidence.retention_days {} is below evidence.min_retention_days {} (default 365, a SOC 2 Type II \
                 period plus margin): keep evidence at least that long, or lower the minimum knowingly",
                self.evidence.retention_days, self.evidence.min_retention_days
            ));
        }
        if self.evidence.retention_days == 0 {
            problem("evidence.retention_days must be at least 1 (default 400)".into());
        }
        if self.evidence.digest_interval.as_secs() == 0 {
            problem("evidence.digest_interval must be at least 1s (default 1h)".into());
        }
        if self.rules.memory_limit_mb == 0 {
            problem("rules.memory_limit_mb must be at least 1 (default 256)".into());
        }
        if self.rules.time_limit_secs == 0 {
            problem("rules.time_limit_secs must be at least 1 (default 30)".into());
        }
        if !["COMPLIANCE", "GOVERNANCE"].contains(&self.evidence.object_lock_mode.as_str()) {
            problem(format!(
                "evidence.object_lock_mode `{}` is not COMPLIANCE or GOVERNANCE",
                self.evidence.object_lock_mode
            ));
        }
        if self.inputs.is_empty() {
            problem("no inputs: add an [[inputs]] table or --input FORMAT:PATH".into());
        }
        let mut kafka_settings: Option<KafkaEndpoint> = None;
        for (name, output) in [("alerts", &self.alerts), ("dead_letters", &self.dead_letters)] {
            if let Some(k) = &output.kafka {
                for p in k.output_problems() {
                    problem(format!("{name}.kafka ({}): {p}", k.describe()));
                }
            }
        }
        let dl = &self.dead_letters;
        if !dl.destinations.is_empty() || dl.format != AlertFormat::Vigil || dl.spool_dir.is_some() {
            problem("dead_letters take path and kafka only (destinations, format and spool_dir are for alerts)".into());
        }
        if !self.alerts.destinations.is_empty() && self.alerts.spool_root(&self.evidence.url).is_none() {
            problem(
                "alerts.destinations need a local queue: set [alerts] spool_dir to a directory that outlives the \
                 process (the archive is not a local directory)"
                    .into(),
            );
        }
        // Each destination's URL and secret (read now: a missing secret is named, never shown).
        let env = |name: &str| std::env::var(name).ok();
        for destination in &self.alerts.destinations {
            if let Err(e) = destination.resolve(&env) {
                problem(e.to_string());
            }
        }
        let stdin_inputs = self.inputs.iter().filter(|i| i.path == "-").count();
        if stdin_inputs > 1 {
            problem("stdin (`-`) can be read by one input only".into());
        }
        for input in &self.inputs {
            let at = |line: usize| if line > 0 { format!(":{line}") } else { String::new() };
            let mut problem = |reason: String| {
                out.push(Error::Config { origin: format!("{origin}{}", at(input.line)), reason });
            };
            match input.format() {
                Ok(format) => {
                    if let Err(e) = format.build(&input.options()) {
                        problem(format!("input `{}`: {e}", input.display()));
                    }
                    if let Some(p) = input.source.as_deref().and_then(vigil_schema::source_name_problem) {
                        problem(format!("input `{}`: {p}", input.display()));
                    }
                    let json_format = matches!(format, Format::Json | Format::WebAccessJson);
                    if !json_format && (input.source.is_some() || input.class.is_some() || !input.fields.is_empty()) {
                        problem(format!(
                            "input `{}`: source, class and fields apply only to the json and web_access_json formats",
                            input.display()
                        ));
                    }
                }
                Err(e) => problem(e.to_string()),
            }
            match input.kafka_endpoint() {
                Some(Ok(endpoint)) => {
                    if input.kafka.is_some() && !input.path.is_empty() {
                        problem(format!("input {}: give path or kafka, not both", endpoint.describe()));
                    }
                    for p in endpoint.input_problems() {
                        problem(format!("input {}: {p}", endpoint.describe()));
                    }
                    // What the one consumer is made of: everything but the topics and secrets.
                    let settings =
                        KafkaEndpoint { topics: Vec::new(), secrets: Default::default(), ..endpoint.clone() };
                    match &kafka_settings {
                        None => kafka_settings = Some(settings),
                        Some(first) if *first != settings => problem(format!(
                            "input {}: every Kafka input of a pipeline is read by one consumer, so brokers, group and \
                             properties must match the first Kafka input's; run another vigil for another group",
                            endpoint.describe()
                        )),
                        Some(_) => {}
                    }
                }
                Some(Err(e)) => problem(e.to_string()),
                None if input.path.is_empty() => problem("input without path or kafka".into()),
                None => {
                    if input.path != "-" && !Path::new(&input.path).exists() {
                        problem(format!("input `{}` ({}) does not exist", input.display(), input.format));
                    }
                }
            }
        }
        if self.rules.dirs.is_empty() {
            out.push(Error::Config {
                origin: origin.to_string(),
                reason: "no rule directories: add [rules] dirs = [...] or --rules DIR (alerts need rules)".into(),
            });
        }
        out
    }
}

/// What [`interpolate`] made of a config file's text.
struct Interpolated {
    /// The text with every reference replaced.
    text: String,
    /// Each value taken from the environment: (line of its reference, variable name, value).
    values: Vec<(usize, String, String)>,
    /// Byte offset in `text` where each line of the file after the first starts.
    line_starts: Vec<usize>,
}

/// Where a `${...}` reference stands, which decides how a value is written there.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Context {
    /// Outside strings: as it is.
    Bare,
    /// `"..."` and `"""..."""`: escaped.
    Basic,
    MultiBasic,
    /// `'...'` and `'''...'''`: as it is; a value these cannot hold is an error.
    Literal,
    MultiLiteral,
}

/// Replaces `${NAME}` and `${NAME:-default}` in a config file's text by environment values (`lookup`), and
/// `$${` by `${` (see the module docs). Comments are left as written. Errors name `origin` and the line,
/// and never a variable's value.
fn interpolate(text: &str, origin: &str, lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Interpolated> {
    let bytes = text.as_bytes();
    let error = |line: usize, reason: String| Error::Config { origin: format!("{origin}:{line}"), reason };
    let mut out = Interpolated { text: String::with_capacity(text.len()), values: Vec::new(), line_starts: Vec::new() };
    let mut unset: Vec<(usize, String)> = Vec::new();
    let (mut context, mut line, mut i, mut copied) = (Context::Bare, 1, 0, 0);
    while i < bytes.len() {
        let rest = &bytes[i..];
        let quotes =
            if matches!(rest[0], b'"' | b'\'') { rest.iter().take_while(|&&c| c == rest[0]).count() } else { 0 };
        match (context, bytes[i]) {
            (_, b'\n') => {
                line += 1;
                out.line_starts.push(out.text.len() + (i + 1 - copied));
                if matches!(context, Context::Basic | Context::Literal) {
                    context = Context::Bare; // an unclosed string: TOML says so
                }
                i += 1;
            }
            (Context::Bare, b'#') => i += rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len()),
            (Context::Bare, b'"') if quotes >= 3 => (context, i) = (Context::MultiBasic, i + 3),
            (Context::Bare, b'"') => (context, i) = (Context::Basic, i + 1),
            (Context::Bare, b'\'') if quotes >= 3 => (context, i) = (Context::MultiLiteral, i + 3),
            (Context::Bare, b'\'') => (context, i) = (Context::Literal, i + 1),
            // An escape: the next character is the string's (a line break after it is counted above).
            (Context::Basic | Context::MultiBasic, b'\\') => i += if rest.get(1) == Some(&b'\n') { 1 } else { 2 },
            (Context::Basic, b'"') | (Context::Literal, b'\'') => (context, i) = (Context::Bare, i + 1),
            // `""""` closes with one quote of content before it (TOML allows up to two).
            (Context::MultiBasic, b'"') | (Context::MultiLiteral, b'\'') if quotes >= 3 => {
                (context, i) = (Context::Bare, i + quotes.min(5));
            }
            (_, b'$') if rest.starts_with(b"$${") => {
                out.text.push_str(&text[copied..i]);
                out.text.push_str("${");
                i += 3;
                copied = i;
            }
            (_, b'$') if rest.starts_with(b"${") => {
                let Some(end) = rest.iter().position(|&c| c == b'}' || c == b'\n').filter(|&e| rest[e] == b'}') else {
                    return Err(error(
                        line,
                        "`${` without its closing `}` on the same line (write `$${` for a literal `${`)".into(),
                    ));
                };
                let inner = &text[i + 2..i + end];
                let (name, default) = match inner.split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (inner, None),
                };
                let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(error(
                        line,
                        format!(
                            "`${{{}}}` is not a variable reference: write ${{NAME}} or ${{NAME:-default}} (NAME of \
                             letters, digits and _), or `$${{` for a literal `${{`",
                            vigil_schema::redact::text(inner)
                        ),
                    ));
                }
                out.text.push_str(&text[copied..i]);
                i += end + 1;
                copied = i;
                let value = lookup(name)
                    .map(|v| {
                        v.into_string()
                            .map_err(|_| error(line, format!("the environment variable `{name}` is not valid UTF-8")))
                    })
                    .transpose()?;
                match (value, default) {
                    // As in the shell, an empty variable takes the default too.
                    (None, Some(default)) => out.text.push_str(default),
                    (Some(value), Some(default)) if value.is_empty() => out.text.push_str(default),
                    (None, None) => unset.push((line, name.to_string())),
                    (Some(value), _) => {
                        write_value(&mut out.text, &value, context).map_err(|why| {
                            error(line, format!("the value of `{name}` {why}: write the reference in a \"...\" string"))
                        })?;
                        out.values.push((line, name.to_string(), value));
                    }
                }
            }
            _ => i += 1,
        }
    }
    out.text.push_str(&text[copied..]);
    match unset.as_slice() {
        [] => Ok(out),
        [(line, name)] => Err(error(
            *line,
            format!("the environment variable `{name}` is not set: set it, or give a default: ${{{name}:-value}}"),
        )),
        several => Err(Error::Config {
            origin: origin.to_string(),
            reason: format!(
                "environment variables not set: {}; set them, or give defaults: ${{NAME:-value}}",
                several.iter().map(|(line, name)| format!("`{name}` (line {line})")).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// Writes an environment value where its reference stood: escaped inside `"..."` strings, as it is
/// elsewhere. `Err` says why a `'...'` string cannot hold it.
fn write_value(out: &mut String, value: &str, context: Context) -> std::result::Result<(), &'static str> {
    use std::fmt::Write;
    match context {
        Context::Bare => out.push_str(value),
        Context::Basic | Context::MultiBasic => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{:04X}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
        }
        Context::Literal if value.contains(|c: char| c == '\'' || (c.is_control() && c != '\t')) => {
            return Err("holds a ' or a control character, which a '...' string cannot");
        }
        Context::MultiLiteral
            if value.contains("'''") || value.contains(|c: char| c.is_control() && !matches!(c, '\t' | '\n')) =>
        {
            return Err("holds ''' or a control character, which a '''...''' string cannot");
        }
        Context::Literal | Context::MultiLiteral => out.push_str(value),
    }
    Ok(())
}

impl Interpolated {
    /// The file's line at byte `offset` of the interpolated text.
    fn line_at(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset) + 1
    }

    /// A TOML error about the interpolated text, as told about the file: TOML's own message with the line
    /// quoted when no value was put into that line, else its line and message without the line, and every
    /// environment value in the message replaced by its `${NAME}`.
    fn toml_error(&self, origin: &str, error: &toml::de::Error) -> Error {
        let line = error.span().map(|span| self.line_at(span.start));
        let quoted = !self.values.iter().any(|(l, _, value)| Some(*l) == line || value.contains('\n'));
        let (origin, reason) = if quoted {
            (origin.to_string(), error.to_string().trim_end().to_string())
        } else {
            let mut values: Vec<&(usize, String, String)> = self.values.iter().filter(|v| !v.2.is_empty()).collect();
            values.sort_by_key(|v| std::cmp::Reverse(v.2.len()));
            let mut message = error.message().trim_end().to_string();
            for (_, name, value) in values {
                message = message.replace(value.as_str(), &format!("${{{name}}}"));
            }
            (line.map_or_else(|| origin.to_string(), |l| format!("{origin}:{l}")), message)
        };
        // A TOML error quotes the line it is about: secrets in it are masked.
        Error::Config { origin, reason: vigil_schema::redact::text(&reason).into_owned() }
    }
}

#[cfg(test)]
mod tests;

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
        self.format.parse().map_err(|e: vigil_normalize::Error| Error::Config {
            origin: format!("input `{}`", self.display()),
            reason: e.to_string(),
        })
    }

    /// The Kafka endpoint of a Kafka input (a `kafka` table or a `kafka://` path); `None` for files.
    pub fn kafka_endpoint(&self) -> Option<Result<KafkaEndpoint>> {
        if let Some(k) = &self.kafka {
            return Some(Ok(k.clone()));
        }
        KafkaEndpoint::is_url(&self.path).then(|| {
            KafkaEndpoint::from_url(&self.path)
                .map_err(|e| Error::Config { origin: "--input".into(), reason: e.to_string() })
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

/// An output of alerts or dead letters: an NDJSON file (or stdout) and/or a Kafka topic.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// File path, or `-` for stdout; none means not written (still archived).
    pub path: Option<String>,
    /// A Kafka topic (`topic` names it).
    pub kafka: Option<KafkaEndpoint>,
}

impl OutputConfig {
    /// Sets the output a flag names: `kafka://HOST:PORT/TOPIC`, or a path (`-` for stdout).
    pub fn set_from_flag(&mut self, flag: &str, name: &str) -> Result<()> {
        if KafkaEndpoint::is_url(flag) {
            let endpoint = KafkaEndpoint::from_url(flag)
                .map_err(|e| Error::Config { origin: format!("--{name}"), reason: e.to_string() })?;
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
    /// Reads a config file; relative paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            origin: path.display().to_string(),
            reason: format!("cannot read the file: {e}"),
        })?;
        let mut config: PipelineConfig = toml::from_str(&text).map_err(|e| Error::Config {
            origin: path.display().to_string(),
            // A TOML error quotes the line it is about: secrets in it are masked.
            reason: vigil_schema::redact::text(e.to_string().trim_end()).into_owned(),
        })?;
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
        for p in [&mut config.alerts.path, &mut config.dead_letters.path].into_iter().flatten() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[[inputs]]\nformat = \"cloudtrail\"\npath = \"logs\"\n[rules]\ndirs = [\"rules\"]\n[evidence]\nurl = \"ev\"\n[alerts]\npath = \"-\"\n").unwrap();
        let config = PipelineConfig::load(&path).unwrap();
        assert_eq!(config.inputs[0].path, dir.path().join("logs").to_string_lossy());
        assert_eq!(config.alerts.path.as_deref(), Some("-"));
        assert_eq!(config.pipeline, Settings::default());
        let problems: Vec<String> = config.problems("p.toml").iter().map(ToString::to_string).collect();
        assert!(problems.iter().any(|p| p.contains("p.toml:3: input") && p.contains("does not exist")), "{problems:?}");
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[pipeline]\nbatch_rowz = 5\n[evidence]\nurl = \"e\"\n").unwrap();
        let err = PipelineConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("batch_rowz"), "{err}");
        let flag = InputConfig::from_flag("cloudtrail").unwrap_err().to_string();
        assert!(flag.contains("FORMAT:PATH"));
    }
}

//! The flags `run` and `validate` share, and the pipeline config they resolve to.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use vigil_pipeline::config::{EvidenceConfig, InputConfig, OutputConfig, PipelineConfig, RulesConfig, Settings};

/// Every flag of `run` and `validate` can also be set by the environment variable its help names (a flag
/// given wins). Repeatable flags take one value per line from their variable (paths and `kafka://` URLs
/// can hold commas and colons, never line breaks); a flag without a value (`--until-caught-up`) takes
/// true/false, yes/no, on/off or 1/0.
#[derive(Args, Debug, Default)]
pub(crate) struct PipelineArgs {
    /// Pipeline config file (TOML, `${VAR}` references replaced); flags below override its values.
    #[arg(long, short = 'c', env = "VIGIL_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// FORMAT:PATH; PATH is a file, a directory (all files, sorted), a .gz file, - for stdin, or
    /// kafka://HOST:PORT/TOPIC?group=NAME (more keys: start, isolation_level, client_id, security_protocol,
    /// sasl_mechanism, sasl_username, sasl_password_env, sasl_password_file, ssl_ca_location, or any
    /// librdkafka property). Formats: cloudtrail, k8s_audit, web_access_json, apache_combined, linux_auth, okta, github_audit, json. Repeatable
    /// (in VIGIL_INPUT: one per line).
    #[arg(long = "input", short = 'i', value_name = "FORMAT:PATH", env = "VIGIL_INPUT", hide_env_values = true)]
    pub(crate) inputs: Vec<String>,
    /// Directory of .sql rules. Repeatable (in VIGIL_RULES: one per line).
    #[arg(long = "rules", short = 'r', value_name = "DIR", env = "VIGIL_RULES")]
    pub(crate) rules: Vec<PathBuf>,
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL.
    #[arg(long, value_name = "DIR|URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    pub(crate) evidence: Option<String>,
    /// The private key digests are signed with (default: the config's signing_key_file,
    /// VIGIL_SIGNING_KEY_FILE, else the PEM in VIGIL_SIGNING_KEY). Unlike the other variables,
    /// VIGIL_SIGNING_KEY_FILE does not override the config's signing_key_file.
    #[arg(long, value_name = "FILE", env = "VIGIL_SIGNING_KEY_FILE")]
    pub(crate) signing_key: Option<PathBuf>,
    /// Alerts: an NDJSON file (appended), - for stdout, kafka://HOST:PORT/TOPIC (keyed by alert id), or a
    /// destination delivered from a durable queue: https://... (a webhook signed with VIGIL_WEBHOOK_SECRET),
    /// slack+https://... or slack:// (VIGIL_SLACK_WEBHOOK_URL), pagerduty:// (VIGIL_PAGERDUTY_ROUTING_KEY).
    /// Repeatable (in VIGIL_ALERTS: one per line).
    #[arg(long, value_name = "PATH|-|URL", env = "VIGIL_ALERTS", hide_env_values = true)]
    pub(crate) alerts: Vec<String>,
    /// How alerts are written: vigil (vigil's alert JSON, the default) or ocsf (OCSF Detection Finding).
    #[arg(long, value_name = "FORMAT", env = "VIGIL_ALERTS_FORMAT")]
    pub(crate) alerts_format: Option<String>,
    /// Dead letters: an NDJSON file (appended), - for stdout, or kafka://HOST:PORT/TOPIC (original bytes,
    /// reason and source position as headers). Give it twice for a file and a topic (in VIGIL_DLQ: one per
    /// line).
    #[arg(long, value_name = "PATH|-|URL", env = "VIGIL_DLQ", hide_env_values = true)]
    pub(crate) dlq: Vec<String>,
    /// Kafka: stop once the end offsets seen at start are consumed (backfills, tests).
    #[arg(long, env = "VIGIL_UNTIL_CAUGHT_UP", value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) until_caught_up: bool,
    /// Close a micro-batch at this many records.
    #[arg(long, value_name = "N", env = "VIGIL_BATCH_ROWS")]
    pub(crate) batch_rows: Option<usize>,
    /// Close a micro-batch this many milliseconds after its first record.
    #[arg(long, value_name = "N", env = "VIGIL_BATCH_MS")]
    pub(crate) batch_ms: Option<u64>,
    /// Worker threads for parsing, rules and encoding (default: every core).
    #[arg(long, value_name = "N", env = "VIGIL_THREADS")]
    pub(crate) threads: Option<usize>,
    /// Also write the run summary as JSON to this file.
    #[arg(long, value_name = "PATH", env = "VIGIL_SUMMARY_JSON")]
    pub(crate) summary_json: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics while running (e.g. 127.0.0.1:9464; port 0 picks
    /// a free one, logged at start).
    #[arg(long, value_name = "ADDR", env = "VIGIL_METRICS_ADDR")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    /// No progress line on the terminal when replaying files.
    #[arg(long, env = "VIGIL_NO_PROGRESS", value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) no_progress: bool,
    /// After SIGTERM, finish the open batches and make them durable within SECS seconds, else exit 2
    /// naming what is not durable (its offsets stay uncommitted: read again on the next start); 0 waits
    /// without limit (default: the config's shutdown_timeout_secs, 60).
    #[arg(long, value_name = "SECS", env = "VIGIL_SHUTDOWN_TIMEOUT")]
    pub(crate) shutdown_timeout: Option<u64>,
}

/// Values of a repeatable flag: each given value, and a value from its variable split into lines.
pub(crate) fn one_per_line(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| v.lines()).filter(|v| !v.trim().is_empty()).map(str::to_string).collect()
}

/// [`one_per_line`] for paths (a path that is not UTF-8 is kept as it is).
pub(crate) fn paths_per_line(values: &[PathBuf]) -> Vec<PathBuf> {
    values
        .iter()
        .flat_map(|p| match p.to_str() {
            Some(text) => text.lines().filter(|v| !v.trim().is_empty()).map(PathBuf::from).collect(),
            None => vec![p.clone()],
        })
        .collect()
}

impl PipelineArgs {
    pub(crate) fn origin(&self) -> String {
        self.config.as_ref().map_or_else(|| "flags".to_string(), |c| c.display().to_string())
    }

    pub(crate) fn resolve(&self) -> Result<PipelineConfig> {
        let mut config = match &self.config {
            Some(path) => PipelineConfig::load(path)?,
            None => {
                let Some(evidence) = &self.evidence else {
                    bail!("give --config FILE, or --evidence DIR with --input FORMAT:PATH and --rules DIR");
                };
                PipelineConfig {
                    pipeline: Settings::default(),
                    inputs: Vec::new(),
                    rules: RulesConfig::default(),
                    evidence: EvidenceConfig::at(evidence.clone()),
                    alerts: OutputConfig::default(),
                    dead_letters: OutputConfig::default(),
                }
            }
        };
        let inputs = one_per_line(&self.inputs);
        if !inputs.is_empty() {
            config.inputs = inputs.iter().map(|i| InputConfig::from_flag(i)).collect::<Result<_, _>>()?;
        }
        let rules = paths_per_line(&self.rules);
        if !rules.is_empty() {
            config.rules.dirs = rules;
        }
        if let Some(e) = &self.evidence {
            config.evidence.url = e.clone();
        }
        if let Some(key) = &self.signing_key {
            config.evidence.signing_key_file = Some(key.clone());
        }
        for a in one_per_line(&self.alerts) {
            config.alerts.set_from_flag(&a, "alerts")?;
        }
        if let Some(format) = &self.alerts_format {
            config.alerts.format = format.parse()?;
        }
        for d in one_per_line(&self.dlq) {
            config.dead_letters.set_from_flag(&d, "dlq")?;
        }
        if self.until_caught_up {
            config.pipeline.until_caught_up = true;
        }
        if let Some(n) = self.batch_rows {
            config.pipeline.batch_rows = n;
        }
        if let Some(n) = self.batch_ms {
            config.pipeline.batch_ms = n;
        }
        if let Some(n) = self.threads {
            config.pipeline.threads = n;
        }
        Ok(config)
    }
}

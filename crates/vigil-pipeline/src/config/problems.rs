//! What `validate` and `run` find wrong in a config before anything runs (rules are checked by the rule
//! engine).

use std::path::Path;

use vigil_kafka::KafkaEndpoint;
use vigil_normalize::Format;

use super::{AlertFormat, InputConfig, PipelineConfig};
use crate::Error;

impl PipelineConfig {
    /// Every problem that can be found without running: settings, formats and mappings, input paths.
    /// Rules are checked by the rule engine.
    pub fn problems(&self, origin: &str) -> Vec<Error> {
        let mut reasons = self.setting_problems();
        reasons.extend(self.output_problems());
        if self.inputs.iter().filter(|i| i.path == "-").count() > 1 {
            reasons.push("stdin (`-`) can be read by one input only".into());
        }
        let mut out: Vec<Error> =
            reasons.into_iter().map(|reason| Error::Config { origin: origin.to_string(), reason }).collect();
        // The first Kafka input's consumer settings, which every other Kafka input must match.
        let mut kafka_settings: Option<KafkaEndpoint> = None;
        for input in &self.inputs {
            let at = if input.line > 0 { format!(":{}", input.line) } else { String::new() };
            out.extend(
                input_problems(input, &mut kafka_settings)
                    .into_iter()
                    .map(|reason| Error::Config { origin: format!("{origin}{at}"), reason }),
            );
        }
        if self.rules.dirs.is_empty() {
            out.push(Error::Config {
                origin: origin.to_string(),
                reason: "no rule directories: add [rules] dirs = [...] or --rules DIR (alerts need rules)".into(),
            });
        }
        out
    }

    /// Settings out of range, and no inputs at all.
    fn setting_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut problem = |reason: String| out.push(reason);
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
        out
    }

    /// Kafka outputs, what dead letters cannot take, alert destinations and their queue and secrets.
    fn output_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut problem = |reason: String| out.push(reason);
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
        out
    }
}

/// One input's problems: its format and mapping, its path or Kafka endpoint (and whether that matches
/// the first Kafka input's consumer, `kafka_settings`, set here by the first).
fn input_problems(input: &InputConfig, kafka_settings: &mut Option<KafkaEndpoint>) -> Vec<String> {
    let mut out = Vec::new();
    let mut problem = |reason: String| out.push(reason);
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
            let settings = KafkaEndpoint { topics: Vec::new(), secrets: Default::default(), ..endpoint.clone() };
            match kafka_settings {
                None => *kafka_settings = Some(settings),
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
    out
}

//! `vigil validate`: check a pipeline's config, rules, key and (unless --no-environment) its
//! evidence store and brokers without running; exit 1 naming each problem.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use vigil_pipeline::check::Reach;
use vigil_schema::redact;

use super::pipeline_args::PipelineArgs;
use super::runtime;
use crate::logs;

#[derive(Args, Debug)]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,
    /// Print a JSON report on stdout: ok, problems (origin, reason), inputs, rules, evidence, signing key
    /// id, warnings. The exit code is the same.
    #[arg(long)]
    pub(crate) json: bool,
    /// Check the config, rules and key only: do not reach the evidence store or the Kafka brokers (for a
    /// build machine that cannot reach them; as Vector's `validate --no-environment`). Without it,
    /// validate makes the same check `vigil run` makes at its start.
    #[arg(long, env = "VIGIL_NO_ENVIRONMENT")]
    pub(crate) no_environment: bool,
}

/// A problem `validate` found: where (file and line, or the config) and what; `text` as printed.
pub(crate) struct Problem {
    pub(crate) origin: String,
    pub(crate) reason: String,
    pub(crate) text: String,
}

impl Problem {
    fn of_pipeline(e: &vigil_pipeline::Error, origin: &str) -> Problem {
        match e {
            vigil_pipeline::Error::Config { origin, reason } => {
                Problem { origin: origin.clone(), reason: reason.clone(), text: e.to_string() }
            }
            vigil_pipeline::Error::Format { origin, source } => {
                Problem { origin: origin.clone(), reason: source.to_string(), text: e.to_string() }
            }
            vigil_pipeline::Error::KafkaUrl { origin, source } => {
                Problem { origin: origin.clone(), reason: source.to_string(), text: e.to_string() }
            }
            other => Problem::other(origin, other.to_string()),
        }
    }

    fn of_rule(e: &vigil_rules::Error, origin: &str) -> Problem {
        match e {
            vigil_rules::Error::Rule { path, line, reason } => {
                Problem { origin: format!("{}:{line}", path.display()), reason: reason.clone(), text: e.to_string() }
            }
            other => Problem::other(origin, other.to_string()),
        }
    }

    /// A problem whose message names what it is about; `text` prefixed with the config's origin.
    fn other(origin: &str, reason: String) -> Problem {
        Problem { origin: origin.to_string(), text: format!("{origin}: {reason}"), reason }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "origin": redact::text(&self.origin), "reason": redact::text(&self.reason) })
    }
}

pub(crate) fn validate(args: ValidateArgs) -> Result<ExitCode> {
    let ValidateArgs { pipeline: args, json, no_environment } = args;
    let origin = args.origin();
    let config = match args.resolve() {
        Ok(config) => config,
        Err(e) => {
            if json {
                // The report still comes, and the error below (exit 2) as without --json.
                let problem = match e.downcast_ref::<vigil_pipeline::Error>() {
                    Some(p) => Problem::of_pipeline(p, &origin),
                    None => Problem::other(&origin, format!("{e:#}")),
                };
                let report = serde_json::json!({
                    "ok": false, "origin": redact::text(&origin), "problems": [problem.json()], "inputs": [],
                    "rules": 0, "evidence": null, "signing_key": null, "warnings": [],
                });
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            return Err(e);
        }
    };
    // The same check `vigil run` makes before it reads anything (vigil_pipeline::check).
    let reach = if no_environment { Reach::ConfigOnly } else { Reach::Environment };
    let checked = runtime(1)?.block_on(vigil_pipeline::check::check(&config, &origin, reach));
    let mut problems: Vec<Problem> = checked.problems.iter().map(|e| Problem::of_pipeline(e, &origin)).collect();
    problems.extend(checked.rule_problems.iter().map(|e| Problem::of_rule(e, &origin)));
    let rule_count = checked.engine.as_ref().map_or(0, |engine| engine.rules().count());
    let key_id = checked.signer.as_ref().map(|signer| signer.key_id().to_string());
    if let Some(id) = &key_id
        && !json
    {
        logs::say(tracing::Level::INFO, &format!("{origin}: digests signed with key {id}"));
    }
    let mut warnings = checked.warnings;
    if json {
        // Loading the rules logged these; the report lists them too.
        warnings.extend(checked.skipped_rules.iter().map(|r| format!("Sigma rule not loaded: {r}")));
    }
    let evidence = redact::url(&config.evidence.url);
    let code = if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) };
    if json {
        let inputs: Vec<serde_json::Value> = config
            .inputs
            .iter()
            .map(|i| serde_json::json!({ "format": i.format, "input": i.display(), "kafka": i.is_kafka() }))
            .collect();
        let report = serde_json::json!({
            "ok": problems.is_empty(),
            "origin": redact::text(&origin),
            "problems": problems.iter().map(Problem::json).collect::<Vec<_>>(),
            "inputs": inputs,
            "rules": rule_count,
            "evidence": evidence,
            "signing_key": key_id,
            "warnings": warnings.iter().map(|w| redact::text(w)).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(code);
    }
    for w in &warnings {
        logs::say(tracing::Level::WARN, &format!("warning: {w}"));
    }
    if problems.is_empty() {
        println!("{origin}: ok ({} inputs, {rule_count} rules, evidence {evidence})", config.inputs.len());
    } else {
        for p in &problems {
            println!("{}", redact::text(&p.text));
        }
        println!("{} problem(s)", problems.len());
    }
    Ok(code)
}

//! `vigil`: the command line. Glue only: every job lives in a library crate.
//!
//! Exit codes: 0 success, 1 a finding (failed rule tests, config problems found by `validate`, counts
//! that do not reconcile, a `verify` that found problems), 2 an error that stopped the command (the user's
//! to fix, or a service that failed: see `vigil_schema::failure`), 70 a bug in vigil.

use std::process::ExitCode;

mod commands;
mod logs;
mod progress;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use commands::expire::EvidenceCommand;
use commands::keys::KeysCommand;
use commands::pipeline_args::PipelineArgs;
use commands::rules::RulesCommand;
use commands::validate::ValidateArgs;
use commands::{auditor, bench, sigma};
use vigil_schema::{ErrorClass, redact};

#[derive(Parser, Debug)]
#[command(name = "vigil", version, about = "Access logs in, SQL detections and SOC 2 evidence out.")]
struct Cli {
    /// stderr as text, or one JSON object per line (timestamp, level, target, message, fields). VIGIL_LOG
    /// filters the logs (default warn; info, debug).
    #[arg(long, global = true, value_enum, default_value_t, env = "VIGIL_LOG_FORMAT", value_name = "FORMAT")]
    log_format: logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a pipeline: read inputs, normalize, run rules, write alerts, dead letters and evidence.
    Run(PipelineArgs),
    /// Check a pipeline's config and every rule without running; names each problem with file and line.
    Validate(ValidateArgs),
    /// Work with rule packs.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Prove an evidence archive complete and untampered: every file intact (hash, size, rows), none
    /// missing or extra, manifest chains unbroken, offsets contiguous. Exit 0 only when all hold.
    Verify(commands::verify::VerifyArgs),
    /// Query an evidence archive with read-only SQL over the tables events, alerts, dead_letters, rules
    /// (the text of every rule pack that ran) and triage (partition columns: events source/date/hour,
    /// alerts date, dead_letters format).
    Query(commands::query::QueryArgs),
    /// Draw a reproducible evidence sample (ranked by SHA-256 of seed and record id) into a package folder.
    Sample(commands::sample::SampleArgs),
    /// Alert triage: record decisions (`triage`), list the queue (`list`).
    #[command(subcommand)]
    Alerts(auditor::AlertsCommand),
    /// Write the auditor's workpaper: one HTML page per SOC 2 control (rules and their archived text,
    /// population, alerts and triage, a sample with proofs, verify) and an index, printable to PDF.
    Report(auditor::ReportArgs),
    /// Sigma rules: `convert` prints the vigil rule each becomes, or why it is refused.
    #[command(subcommand)]
    Sigma(sigma::SigmaCommand),
    /// Manage an evidence archive's lifecycle.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Signing keys: the private key writers sign digests with, the public key auditors verify with.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Benchmark: run the real pipeline over one file with a rule directory, into a scratch evidence
    /// archive, and print one JSON line (events/s, MB/s, seconds per stage, matches per rule) in the
    /// format of the DuckDB comparison kit (../shared/bench).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    logs::init(cli.log_format);
    // VIGIL_SIGNING_KEY_FILE is read by the evidence library itself, after the config's signing_key_file:
    // as --signing-key's variable it must not override that key.
    let key_from_env = |path: &[&str]| {
        path.iter()
            .try_fold(&matches, |m, name| m.subcommand_matches(name))
            .is_some_and(|m| m.value_source("signing_key") == Some(clap::parser::ValueSource::EnvVariable))
    };
    match &mut cli.command {
        Command::Run(args) if key_from_env(&["run"]) => args.signing_key = None,
        Command::Validate(args) if key_from_env(&["validate"]) => args.pipeline.signing_key = None,
        Command::Evidence(EvidenceCommand::Expire(args)) if key_from_env(&["evidence", "expire"]) => {
            args.signing_key = None;
        }
        _ => {}
    }
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Bench(args) => bench::bench(args),
        Command::Validate(args) => commands::validate::validate(args),
        Command::Rules(command) => commands::rules::rules(command),
        Command::Verify(args) => commands::verify::verify(args),
        Command::Query(args) => commands::query::query(args),
        Command::Sample(args) => commands::sample::sample(args),
        Command::Evidence(EvidenceCommand::Expire(args)) => commands::expire::expire(args),
        Command::Keys(command) => commands::keys::keys(command),
        Command::Sigma(command) => sigma::sigma(command),
        Command::Alerts(command) => auditor::alerts(command),
        Command::Report(args) => auditor::report(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let class = class_of(&err);
            // Every message is built to hold no secret; this is the net under them (logs::say redacts too).
            let message = redact::text(&format!("{err:#}")).into_owned();
            match logs::format() {
                logs::LogFormat::Text => {
                    eprintln!("error: {message}");
                    if class != ErrorClass::User {
                        // A user error names its fix itself; the others get told what kind of failure it was.
                        eprintln!("({})", class.advice());
                    }
                }
                logs::LogFormat::Json => {
                    let mut fields = serde_json::Map::new();
                    fields.insert("class".into(), format!("{class:?}").to_lowercase().into());
                    fields.insert("exit_code".into(), class.exit_code().into());
                    if class != ErrorClass::User {
                        fields.insert("advice".into(), class.advice().into());
                    }
                    logs::say_with(tracing::Level::ERROR, &message, fields);
                }
            }
            ExitCode::from(class.exit_code())
        }
    }
}

/// The class of the first vigil error in `err`'s chain; the CLI's own refusals (arguments) are the
/// user's.
fn class_of(err: &anyhow::Error) -> ErrorClass {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<vigil_pipeline::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<vigil_evidence::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<vigil_audit::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<vigil_report::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<vigil_rules::Error>() {
            return e.class();
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            // A path that is not there or not ours is the user's; a full disk or a closed pipe is not.
            return match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => ErrorClass::User,
                _ => ErrorClass::External,
            };
        }
    }
    ErrorClass::User
}

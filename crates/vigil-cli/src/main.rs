//! `vigil`: the command line. Glue only: every job lives in a library crate.
//!
//! Exit codes: 0 success, 1 a finding (failed rule tests, config problems found by `validate`, counts
//! that do not reconcile), 2 an error that stopped the command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use vigil_pipeline::config::{EvidenceConfig, InputConfig, OutputConfig, PipelineConfig, RulesConfig, Settings};
use vigil_pipeline::{Pipeline, ShutdownHandle, rule_tests};

#[derive(Parser, Debug)]
#[command(name = "vigil", version, about = "Access logs in, SQL detections and SOC 2 evidence out.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a pipeline: read inputs, normalize, run rules, write alerts, dead letters and evidence.
    Run(PipelineArgs),
    /// Check a pipeline's config and every rule without running; names each problem with file and line.
    Validate(PipelineArgs),
    /// Work with rule packs.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Run every rule's data-driven tests (DIR/tests/*.test) and report pass/fail per case.
    Test {
        /// Rule directories (default: every directory under pipelines/rules).
        dirs: Vec<PathBuf>,
        /// Rewrite the `expect` blocks of failing cases from the actual alerts.
        #[arg(long)]
        update: bool,
    },
    /// List rules: id, severity, criteria, title.
    List {
        /// Rule directories (default: every directory under pipelines/rules).
        dirs: Vec<PathBuf>,
    },
}

#[derive(Args, Debug, Default)]
struct PipelineArgs {
    /// Pipeline config file (TOML); flags below override its values.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// FORMAT:PATH; PATH is a file, a directory (all files, sorted), a .gz file, - for stdin, or
    /// kafka://HOST:PORT/TOPIC?group=NAME (more keys: start, isolation_level, client_id, security_protocol,
    /// sasl_mechanism, sasl_username, sasl_password_env, sasl_password_file, ssl_ca_location, or any
    /// librdkafka property). Formats: cloudtrail, k8s_audit, web_access_json, apache_combined, json. Repeatable.
    #[arg(long = "input", short = 'i', value_name = "FORMAT:PATH")]
    inputs: Vec<String>,
    /// Directory of .sql rules. Repeatable.
    #[arg(long = "rules", short = 'r', value_name = "DIR")]
    rules: Vec<PathBuf>,
    /// Evidence archive: a local directory or file:// URL.
    #[arg(long, value_name = "DIR")]
    evidence: Option<String>,
    /// Alerts: an NDJSON file (appended), - for stdout, or kafka://HOST:PORT/TOPIC (keyed by alert id).
    /// Give it twice for a file and a topic.
    #[arg(long, value_name = "PATH|-|URL")]
    alerts: Vec<String>,
    /// Dead letters: an NDJSON file (appended), - for stdout, or kafka://HOST:PORT/TOPIC (original bytes,
    /// reason and source position as headers). Give it twice for a file and a topic.
    #[arg(long, value_name = "PATH|-|URL")]
    dlq: Vec<String>,
    /// Kafka: stop once the end offsets seen at start are consumed (backfills, tests).
    #[arg(long)]
    until_caught_up: bool,
    /// Close a micro-batch at this many records.
    #[arg(long, value_name = "N")]
    batch_rows: Option<usize>,
    /// Close a micro-batch this many milliseconds after its first record.
    #[arg(long, value_name = "N")]
    batch_ms: Option<u64>,
    /// Worker threads for parsing, rules and encoding (default: every core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Also write the run summary as JSON to this file.
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,
}

impl PipelineArgs {
    fn origin(&self) -> String {
        self.config.as_ref().map_or_else(|| "flags".to_string(), |c| c.display().to_string())
    }

    fn resolve(&self) -> Result<PipelineConfig> {
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
                    evidence: EvidenceConfig { url: evidence.clone() },
                    alerts: OutputConfig::default(),
                    dead_letters: OutputConfig::default(),
                }
            }
        };
        if !self.inputs.is_empty() {
            config.inputs = self.inputs.iter().map(|i| InputConfig::from_flag(i)).collect::<Result<_, _>>()?;
        }
        if !self.rules.is_empty() {
            config.rules.dirs = self.rules.clone();
        }
        if let Some(e) = &self.evidence {
            config.evidence.url = e.clone();
        }
        for a in &self.alerts {
            config.alerts.set_from_flag(a, "alerts")?;
        }
        for d in &self.dlq {
            config.dead_letters.set_from_flag(d, "dlq")?;
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

fn default_rule_dirs(dirs: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    if !dirs.is_empty() {
        return Ok(dirs);
    }
    let root = PathBuf::from("pipelines/rules");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("no rule directories given and {} cannot be read", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    Ok(found)
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    // Parsing and encoding run on rayon; DataFusion and I/O on tokio: both sized to the same thread count.
    let _ =
        rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("vigil-work-{i}")).build_global();
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build()?)
}

fn run(args: PipelineArgs) -> Result<ExitCode> {
    let config = args.resolve()?;
    let origin = args.origin();
    let alerts_to_stdout =
        config.alerts.path.as_deref() == Some("-") || config.dead_letters.path.as_deref() == Some("-");
    let rt = runtime(config.pipeline.effective_threads())?;
    let summary = rt.block_on(async {
        let pipeline = Pipeline::new(config, &origin).await?;
        drain_on_signals(pipeline.shutdown_handle());
        pipeline.run().await
    })?;
    if alerts_to_stdout {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    if let Some(path) = &args.summary_json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !summary.reconciles() {
        eprintln!("error: records read do not equal archived + dead-lettered; this is a bug, please report it");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or Ctrl-C: finish the open batches, make them durable, commit, exit 0. A second one exits at once
/// (nothing is lost: what was not archived is read again on the next start).
fn drain_on_signals(handle: ShutdownHandle) {
    tokio::spawn(async move {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return;
        };
        let mut count = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            count += 1;
            if count == 1 {
                eprintln!("vigil: stopping: finishing and archiving the open batches (signal again to exit at once)");
                handle.shutdown();
            } else {
                eprintln!("vigil: exiting now; unarchived records are read again on the next start");
                std::process::exit(130);
            }
        }
    });
}

fn validate(args: PipelineArgs) -> Result<ExitCode> {
    let config = args.resolve()?;
    let origin = args.origin();
    let mut problems: Vec<String> = config.problems(&origin).iter().map(ToString::to_string).collect();
    let rt = runtime(1)?;
    let rule_count = match vigil_rules::load_rules(&config.rules.dirs) {
        Err(errors) => {
            problems.extend(errors.iter().map(ToString::to_string));
            0
        }
        Ok(pack) => match rt.block_on(vigil_rules::RuleEngine::new(&pack, 1)) {
            Ok(engine) => engine.rules().count(),
            Err(errors) => {
                problems.extend(errors.iter().map(ToString::to_string));
                0
            }
        },
    };
    if config.evidence.url.contains("://") && !config.evidence.url.starts_with("file://") {
        problems.push(format!(
            "{origin}: evidence `{}`: only local directories and file:// URLs are supported",
            config.evidence.url
        ));
    }
    if problems.is_empty() {
        println!("{origin}: ok ({} inputs, {rule_count} rules, evidence {})", config.inputs.len(), config.evidence.url);
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("{p}");
        }
        println!("{} problem(s)", problems.len());
        Ok(ExitCode::from(1))
    }
}

fn rules(command: RulesCommand) -> Result<ExitCode> {
    match command {
        RulesCommand::Test { dirs, update } => {
            let dirs = default_rule_dirs(dirs)?;
            let rt = runtime(1)?;
            let report = rt.block_on(rule_tests::run_rule_tests(&dirs, update))?;
            println!("{report}");
            Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        RulesCommand::List { dirs } => {
            let dirs = default_rule_dirs(dirs)?;
            let pack = vigil_rules::load_rules(&dirs).map_err(vigil_pipeline::Error::Rules)?;
            println!("{:<48} {:<10} {:<9} {:<18} title", "id", "kind", "severity", "criteria");
            for r in &pack.rules {
                println!(
                    "{:<48} {:<10} {:<9} {:<18} {}",
                    r.id,
                    "stateless",
                    r.severity.as_str(),
                    r.criteria.join(","),
                    r.title
                );
            }
            println!("{} rules, pack hash {}", pack.rules.len(), pack.hash);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Validate(args) => validate(args),
        Command::Rules(command) => rules(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

//! `vigil`: the command line. Glue only: every job lives in a library crate.
//!
//! Exit codes: 0 success, 1 a finding (failed rule tests, config problems found by `validate`, counts
//! that do not reconcile, a `verify` that found problems), 2 an error that stopped the command (the user's
//! to fix, or a service that failed: see `vigil_schema::failure`), 70 a bug in vigil.

use std::path::PathBuf;
use std::process::ExitCode;

mod auditor;
mod bench;
mod logs;
mod progress;
mod sigma;

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use vigil_pipeline::check::Reach;
use vigil_pipeline::config::{EvidenceConfig, InputConfig, OutputConfig, PipelineConfig, RulesConfig, Settings};
use vigil_pipeline::{Pipeline, ShutdownHandle, rule_tests};
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
    Verify(VerifyArgs),
    /// Query an evidence archive with read-only SQL over the tables events, alerts, dead_letters, rules
    /// (the text of every rule pack that ran) and triage (partition columns: events source/date/hour,
    /// alerts date, dead_letters format).
    Query(QueryArgs),
    /// Draw a reproducible evidence sample (ranked by SHA-256 of seed and record id) into a package folder.
    Sample(SampleArgs),
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

#[derive(Subcommand, Debug)]
enum EvidenceCommand {
    /// Delete data files past retention (their manifest entry was written more than retention_days ago),
    /// recording each disposal in its manifest chain first. Manifest entries are kept.
    Expire(ExpireArgs),
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a new Ed25519 signing key: writes the private key (PKCS#8 PEM, readable by you only) to
    /// --out and prints the public key (SubjectPublicKeyInfo PEM) for auditors on stdout.
    Generate {
        /// Where to write the private key; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the public key (PEM) of a private key: what auditors pass to `vigil verify --public-key`.
    Public {
        /// The private key file (default: VIGIL_SIGNING_KEY_FILE, else the PEM in VIGIL_SIGNING_KEY).
        #[arg(long, value_name = "FILE", env = "VIGIL_SIGNING_KEY_FILE")]
        key: Option<PathBuf>,
    },
}

fn keys(command: KeysCommand) -> Result<ExitCode> {
    use vigil_evidence::keys::PrivateKey;
    match command {
        KeysCommand::Generate { out } => {
            let key = PrivateKey::generate()?;
            let pem = key.to_pem()?;
            write_private(&out, pem.as_bytes())?;
            print!("{}", key.public().to_pem()?);
            logs::say(
                tracing::Level::INFO,
                &format!(
                    "wrote the private key {} to {} (keep it where only vigil reads it: a Kubernetes Secret, a file \
                     of mode 0600); the public key above is what auditors keep",
                    key.id(),
                    out.display()
                ),
            );
        }
        KeysCommand::Public { key } => {
            let Some(key) = PrivateKey::from_file_or_env(key.as_deref())? else {
                bail!("give --key FILE, or set VIGIL_SIGNING_KEY_FILE or VIGIL_SIGNING_KEY");
            };
            print!("{}", key.public().to_pem()?);
            logs::say(tracing::Level::INFO, &format!("key id {}", key.id()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` readable and writable by its owner only, refusing to replace an existing file.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        format!("cannot create {} (an existing key is never overwritten; choose another path)", path.display())
    })?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[derive(Args, Debug)]
struct ExpireArgs {
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL (default: the config's).
    #[arg(long, value_name = "URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    evidence: Option<String>,
    /// Pipeline config whose [evidence] url and retention_days apply.
    #[arg(long, short = 'c', env = "VIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Retention in days (default: the config's retention_days, else 400).
    #[arg(long, value_name = "DAYS")]
    retention_days: Option<u32>,
    /// Dispose of evidence younger than the minimum retention (the config's min_retention_days, default
    /// 365). Recorded in the disposal entry; `vigil verify` names every such disposal.
    #[arg(long)]
    allow_short_retention: bool,
    /// The signing key (default: the config's signing_key_file, VIGIL_SIGNING_KEY_FILE or
    /// VIGIL_SIGNING_KEY); a signed archive needs it to sign the disposals.
    #[arg(long, value_name = "FILE", env = "VIGIL_SIGNING_KEY_FILE")]
    signing_key: Option<PathBuf>,
    /// List what is past retention; write and delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn expire(args: ExpireArgs) -> Result<ExitCode> {
    use vigil_evidence::expire::{ExpireOptions, expire};
    let config = args.config.as_deref().map(PipelineConfig::load).transpose()?;
    let evidence = match (&args.evidence, &config) {
        (Some(url), _) => url.clone(),
        (None, Some(c)) => c.evidence.url.clone(),
        (None, None) => bail!("give --evidence URL or --config FILE"),
    };
    let retention_days = args
        .retention_days
        .or(config.as_ref().map(|c| c.evidence.retention_days))
        .unwrap_or(vigil_pipeline::config::DEFAULT_RETENTION_DAYS);
    let mut evidence_config = config.map(|c| c.evidence).unwrap_or_else(|| EvidenceConfig::at(evidence.clone()));
    if args.signing_key.is_some() {
        evidence_config.signing_key_file = args.signing_key.clone();
    }
    let options = ExpireOptions {
        retention_days,
        min_retention_days: evidence_config.min_retention_days,
        allow_short_retention: args.allow_short_retention,
        now_us: vigil_evidence::now_us(),
        dry_run: args.dry_run,
    };
    if retention_days < options.min_retention_days {
        logs::say(
            tracing::Level::WARN,
            &format!(
                "warning: a retention of {retention_days} days is below the minimum of {} days: evidence an auditor \
                 may still ask for is deleted{}",
                options.min_retention_days,
                if args.allow_short_retention { " (--allow-short-retention given: recorded)" } else { "" }
            ),
        );
    }
    let signer = evidence_config.signer()?;
    let rt = runtime(every_core())?;
    let report = rt.block_on(async {
        let mut archive = vigil_evidence::Archive::open_existing(&evidence).await?;
        if let Some(signer) = signer {
            archive = archive.with_signer(signer);
        }
        expire(&archive, &options).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let verb = if report.dry_run { "would delete" } else { "deleted" };
        for f in &report.files {
            let note = if f.already_recorded { " (disposal recorded earlier)" } else { "" };
            println!("{verb} {} ({} bytes, {}, written {}){note}", f.path, f.size, f.entry, f.written_at);
        }
        for f in &report.failed {
            println!("FAILED {}: {}", f.path, f.reason);
        }
        println!(
            "{}: retention {} days (written before {}): {} file(s), {} bytes past retention in {} chain(s); {}",
            report.location,
            report.retention_days,
            report.cutoff,
            report.files.len(),
            report.bytes,
            report.chains,
            match (report.dry_run, report.disposals.is_empty()) {
                (true, _) => "dry run, nothing changed".to_string(),
                (false, true) => format!("{} deleted", report.deleted),
                (false, false) =>
                    format!("{} deleted, disposal entries {}", report.deleted, report.disposals.join(", ")),
            }
        );
    }
    if let Some(seq) = report.digest {
        println!("disposals signed in digest {seq}");
    }
    if !report.ok() {
        logs::say(
            tracing::Level::ERROR,
            &format!(
                "error: {} file(s) could not be deleted; their disposal is recorded, run expire again",
                report.failed.len()
            ),
        );
    }
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[derive(Args, Debug)]
struct QueryArgs {
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL.
    #[arg(long, value_name = "URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    evidence: String,
    /// Output format: table, csv, json (one object per line) or parquet.
    #[arg(long, default_value = "table")]
    format: String,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The query, e.g. "SELECT source, count(*) FROM events WHERE date >= '2024-08-01' GROUP BY source".
    sql: String,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("population").required(true).args(["rule", "criterion", "where_sql"])))]
struct SampleArgs {
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL.
    #[arg(long, value_name = "URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    evidence: String,
    /// Population: alerts of this rule id.
    #[arg(long, value_name = "ID")]
    rule: Option<String>,
    /// Population: alerts of rules serving this criterion (e.g. CC6.1).
    #[arg(long, value_name = "CC")]
    criterion: Option<String>,
    /// Population: events matching this SQL predicate.
    #[arg(long = "where", value_name = "SQL")]
    where_sql: Option<String>,
    /// Period start, inclusive (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME")]
    from: String,
    /// Period end, exclusive (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME")]
    to: String,
    /// Records to draw.
    #[arg(long, value_name = "N")]
    size: usize,
    /// The seed (any text); the same seed over the same population draws the same records.
    #[arg(long, value_name = "SEED")]
    seed: String,
    /// Folder for the evidence package.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn rfc3339(text: &str) -> Result<String> {
    let us = parse_time_arg(text)?;
    let t = chrono::DateTime::from_timestamp_micros(us).context("time out of range")?;
    Ok(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

fn query(args: QueryArgs) -> Result<ExitCode> {
    use std::io::Write;
    let format: vigil_audit::query::OutputFormat = args.format.parse()?;
    let rt = runtime(every_core())?;
    let (batches, left_out) = rt.block_on(async {
        let archive = vigil_evidence::Archive::open_existing(&args.evidence).await?;
        let session = vigil_audit::query::archive_session(&archive).await?;
        let batches = vigil_audit::query::query(&session.ctx, &args.sql).await?;
        Ok::<_, vigil_audit::Error>((batches, session.left_out))
    })?;
    if !left_out.is_empty() {
        logs::say(
            tracing::Level::INFO,
            &format!(
                "note: {} data file(s) that no manifest entry lists (such as {}) were left out: only chained \
                 evidence is queried; `vigil verify` names them",
                left_out.len(),
                left_out[0]
            ),
        );
    }
    let mut buf = Vec::new();
    vigil_audit::query::write_output(&batches, format, &mut buf)?;
    match &args.out {
        Some(path) => std::fs::write(path, &buf).with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            // Flushed here: an error at exit (a full disk, a closed pipe) would be lost, and the exit code 0.
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&buf).and_then(|()| stdout.flush()).context("cannot write the results to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sample(args: SampleArgs) -> Result<ExitCode> {
    use vigil_audit::sample::{Population, SampleRequest};
    let population = match (args.rule, args.criterion, args.where_sql) {
        (Some(r), _, _) => Population::Rule(r),
        (_, Some(c), _) => Population::Criterion(c),
        (_, _, Some(w)) => Population::Where(w),
        _ => bail!("give --rule, --criterion or --where"),
    };
    let request = SampleRequest {
        population,
        from: rfc3339(&args.from)?,
        to: rfc3339(&args.to)?,
        size: args.size,
        seed: args.seed,
    };
    let rt = runtime(every_core())?;
    let record = rt.block_on(async {
        let archive = vigil_evidence::Archive::open_existing(&args.evidence).await?;
        let ctx = vigil_audit::query::archive_context(&archive).await?;
        vigil_audit::sample::draw(&archive, &ctx, &request, &args.out).await
    })?;
    println!(
        "{}: population {} record(s) (ids SHA-256 {}), drew {} with seed {:?} into {}",
        record.definition,
        record.count,
        record.population_sha256,
        record.drawn.len(),
        record.seed,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL.
    #[arg(long, value_name = "URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    evidence: String,
    /// Only hash files with events at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Only hash files with events before this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Print the report as JSON (findings, warnings, chain heads, counts).
    #[arg(long)]
    json: bool,
    /// A JSON report of an earlier verify: its chain heads and newest digest must still be there,
    /// unchanged (catches a tail cut off together with its digests).
    #[arg(long, value_name = "FILE")]
    since: Option<PathBuf>,
    /// Public key file(s) (PEM, `vigil keys public`; a file may hold several keys, for rotations): every
    /// digest must be signed by one of them and every entry covered by a signed digest. Without it only
    /// internal consistency is checked. Repeatable.
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
}

/// Parses RFC 3339 or `YYYY-MM-DD` (midnight UTC) into microseconds since the epoch.
fn parse_time_arg(text: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros()).unwrap_or_default());
    }
    bail!("`{text}` is not a time: write 2024-08-01 or 2024-08-01T12:00:00Z")
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    use vigil_evidence::verify::{VerifyOptions, VerifyReport};
    let mut options = VerifyOptions {
        from_us: args.from.as_deref().map(parse_time_arg).transpose()?,
        to_us: args.to.as_deref().map(parse_time_arg).transpose()?,
        ..VerifyOptions::default()
    };
    if let Some(path) = &args.since {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let earlier: VerifyReport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a `vigil verify --json` report", path.display()))?;
        options.expected_heads = earlier.heads;
        options.expected_digest = earlier.newest_digest;
    }
    for path in &args.public_keys {
        options.public_keys.extend(vigil_evidence::keys::PublicKey::all_from_file(path)?);
    }
    let rt = runtime(every_core())?;
    let report = rt.block_on(async {
        let archive = vigil_evidence::Archive::open_existing(&args.evidence).await?;
        vigil_evidence::verify::verify(&archive, &options).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.findings {
            println!("FAIL {:<20} {}: {}", f.kind, f.object, f.detail);
        }
        for w in &report.warnings {
            println!("warn {:<20} {}: {}", w.kind, w.object, w.detail);
        }
        match &report.newest_digest {
            Some(d) => println!(
                "digests: {} signed, the newest {} ({}, key {}, SHA-256 {}): keep this line, or the --json report, to \
                 pass back with --since",
                report.digests, d.seq, d.written_at, d.key_id, d.sha256
            ),
            None => println!("digests: none"),
        }
        if args.public_keys.is_empty() {
            println!(
                "NOT AUTHENTICATED: no --public-key given, so only internal consistency was checked; anyone with \
                 write access could have rewritten this archive consistently. Pass the writers' public key."
            );
        } else if report.authenticated {
            println!("authenticated: every digest is signed by a key given");
        }
        let gb = report.bytes_checked as f64 / 1e9;
        println!(
            "{}: {} chains, {} entries, {} files ({:.3} GB, {} rows) checked in {:.2}s ({:.0} files/s, {:.2} GB/s); {}",
            report.location,
            report.chains,
            report.entries,
            report.files_checked,
            gb,
            report.rows_checked,
            report.seconds,
            report.files_checked as f64 / report.seconds.max(1e-9),
            gb / report.seconds.max(1e-9),
            if report.ok() { "VERIFIED".to_string() } else { format!("{} PROBLEM(S)", report.findings.len()) }
        );
    }
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
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

/// Every flag of `run` and `validate` can also be set by the environment variable its help names (a flag
/// given wins). Repeatable flags take one value per line from their variable (paths and `kafka://` URLs
/// can hold commas and colons, never line breaks); a flag without a value (`--until-caught-up`) takes
/// true/false, yes/no, on/off or 1/0.
#[derive(Args, Debug, Default)]
struct PipelineArgs {
    /// Pipeline config file (TOML, `${VAR}` references replaced); flags below override its values.
    #[arg(long, short = 'c', env = "VIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// FORMAT:PATH; PATH is a file, a directory (all files, sorted), a .gz file, - for stdin, or
    /// kafka://HOST:PORT/TOPIC?group=NAME (more keys: start, isolation_level, client_id, security_protocol,
    /// sasl_mechanism, sasl_username, sasl_password_env, sasl_password_file, ssl_ca_location, or any
    /// librdkafka property). Formats: cloudtrail, k8s_audit, web_access_json, apache_combined, linux_auth, okta, github_audit, json. Repeatable
    /// (in VIGIL_INPUT: one per line).
    #[arg(long = "input", short = 'i', value_name = "FORMAT:PATH", env = "VIGIL_INPUT", hide_env_values = true)]
    inputs: Vec<String>,
    /// Directory of .sql rules. Repeatable (in VIGIL_RULES: one per line).
    #[arg(long = "rules", short = 'r', value_name = "DIR", env = "VIGIL_RULES")]
    rules: Vec<PathBuf>,
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL.
    #[arg(long, value_name = "DIR|URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    evidence: Option<String>,
    /// The private key digests are signed with (default: the config's signing_key_file,
    /// VIGIL_SIGNING_KEY_FILE, else the PEM in VIGIL_SIGNING_KEY). Unlike the other variables,
    /// VIGIL_SIGNING_KEY_FILE does not override the config's signing_key_file.
    #[arg(long, value_name = "FILE", env = "VIGIL_SIGNING_KEY_FILE")]
    signing_key: Option<PathBuf>,
    /// Alerts: an NDJSON file (appended), - for stdout, kafka://HOST:PORT/TOPIC (keyed by alert id), or a
    /// destination delivered from a durable queue: https://... (a webhook signed with VIGIL_WEBHOOK_SECRET),
    /// slack+https://... or slack:// (VIGIL_SLACK_WEBHOOK_URL), pagerduty:// (VIGIL_PAGERDUTY_ROUTING_KEY).
    /// Repeatable (in VIGIL_ALERTS: one per line).
    #[arg(long, value_name = "PATH|-|URL", env = "VIGIL_ALERTS", hide_env_values = true)]
    alerts: Vec<String>,
    /// How alerts are written: vigil (vigil's alert JSON, the default) or ocsf (OCSF Detection Finding).
    #[arg(long, value_name = "FORMAT", env = "VIGIL_ALERTS_FORMAT")]
    alerts_format: Option<String>,
    /// Dead letters: an NDJSON file (appended), - for stdout, or kafka://HOST:PORT/TOPIC (original bytes,
    /// reason and source position as headers). Give it twice for a file and a topic (in VIGIL_DLQ: one per
    /// line).
    #[arg(long, value_name = "PATH|-|URL", env = "VIGIL_DLQ", hide_env_values = true)]
    dlq: Vec<String>,
    /// Kafka: stop once the end offsets seen at start are consumed (backfills, tests).
    #[arg(long, env = "VIGIL_UNTIL_CAUGHT_UP", value_parser = clap::builder::BoolishValueParser::new())]
    until_caught_up: bool,
    /// Close a micro-batch at this many records.
    #[arg(long, value_name = "N", env = "VIGIL_BATCH_ROWS")]
    batch_rows: Option<usize>,
    /// Close a micro-batch this many milliseconds after its first record.
    #[arg(long, value_name = "N", env = "VIGIL_BATCH_MS")]
    batch_ms: Option<u64>,
    /// Worker threads for parsing, rules and encoding (default: every core).
    #[arg(long, value_name = "N", env = "VIGIL_THREADS")]
    threads: Option<usize>,
    /// Also write the run summary as JSON to this file.
    #[arg(long, value_name = "PATH", env = "VIGIL_SUMMARY_JSON")]
    summary_json: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics while running (e.g. 127.0.0.1:9464; port 0 picks
    /// a free one, logged at start).
    #[arg(long, value_name = "ADDR", env = "VIGIL_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// No progress line on the terminal when replaying files.
    #[arg(long, env = "VIGIL_NO_PROGRESS", value_parser = clap::builder::BoolishValueParser::new())]
    no_progress: bool,
    /// After SIGTERM, finish the open batches and make them durable within SECS seconds, else exit 2
    /// naming what is not durable (its offsets stay uncommitted: read again on the next start); 0 waits
    /// without limit (default: the config's shutdown_timeout_secs, 60).
    #[arg(long, value_name = "SECS", env = "VIGIL_SHUTDOWN_TIMEOUT")]
    shutdown_timeout: Option<u64>,
}

#[derive(Args, Debug)]
struct ValidateArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Print a JSON report on stdout: ok, problems (origin, reason), inputs, rules, evidence, signing key
    /// id, warnings. The exit code is the same.
    #[arg(long)]
    json: bool,
    /// Check the config, rules and key only: do not reach the evidence store or the Kafka brokers (for a
    /// build machine that cannot reach them; as Vector's `validate --no-environment`). Without it,
    /// validate makes the same check `vigil run` makes at its start.
    #[arg(long, env = "VIGIL_NO_ENVIRONMENT")]
    no_environment: bool,
}

/// Values of a repeatable flag: each given value, and a value from its variable split into lines.
fn one_per_line(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| v.lines()).filter(|v| !v.trim().is_empty()).map(str::to_string).collect()
}

/// [`one_per_line`] for paths (a path that is not UTF-8 is kept as it is).
fn paths_per_line(values: &[PathBuf]) -> Vec<PathBuf> {
    values
        .iter()
        .flat_map(|p| match p.to_str() {
            Some(text) => text.lines().filter(|v| !v.trim().is_empty()).map(PathBuf::from).collect(),
            None => vec![p.clone()],
        })
        .collect()
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

/// Threads for the archive commands (verify, query, sample): every core.
fn every_core() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

pub(crate) fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
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
    // The progress line is for a terminal; JSON logs are for a collector.
    let show_progress = !args.no_progress && !alerts_to_stdout && logs::format() == logs::LogFormat::Text;
    let shutdown_limit =
        std::time::Duration::from_secs(args.shutdown_timeout.unwrap_or(config.pipeline.shutdown_timeout_secs));
    let summary = rt.block_on(async {
        // Served before the rules compile and the store is reached: /healthz answers at once, /readyz
        // says what is still being done.
        let metrics = vigil_metrics::Metrics::new();
        let _server = match args.metrics_addr {
            Some(addr) => Some(
                vigil_metrics::serve(addr, metrics.clone())
                    .await
                    .with_context(|| format!("cannot serve metrics on {addr} (is the port taken?)"))?,
            ),
            None => None,
        };
        let pipeline = Pipeline::with_metrics(config.clone(), &origin, metrics.clone()).await?;
        drain_on_signals(pipeline.shutdown_handle(), metrics.health(), shutdown_limit);
        let _progress = show_progress.then(|| progress::Progress::start(&config, pipeline.metrics())).flatten();
        anyhow::Ok(pipeline.run().await?)
    })?;
    if !alerts_to_stdout {
        println!("{summary}");
    } else if logs::format() == logs::LogFormat::Json {
        let mut fields = serde_json::Map::new();
        fields.insert("summary".into(), serde_json::to_value(&summary)?);
        logs::say_with(tracing::Level::INFO, &summary.to_string(), fields);
    } else {
        eprintln!("{summary}");
    }
    if let Some(path) = &args.summary_json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !summary.reconciles() {
        logs::say(
            tracing::Level::ERROR,
            "error: records read, or their bytes, do not equal what was archived + dead-lettered (see MISMATCH \
             above); this is a bug, please report it",
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or Ctrl-C: finish the open batches, make them durable, commit, exit 0 (`/readyz` answers 503
/// from the signal on). Past `limit` (unless 0), or at a second signal, exit at once: nothing is lost,
/// what was not archived is not committed and is read again on the next start.
fn drain_on_signals(handle: ShutdownHandle, health: std::sync::Arc<vigil_metrics::Health>, limit: std::time::Duration) {
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
                logs::say(
                    tracing::Level::INFO,
                    &format!(
                        "vigil: stopping: finishing and archiving the open batches{} (signal again to exit at once)",
                        if limit.is_zero() { String::new() } else { format!(" within {} s", limit.as_secs()) }
                    ),
                );
                handle.shutdown();
                if !limit.is_zero() {
                    exit_after(limit, health.clone());
                }
            } else {
                logs::say(
                    tracing::Level::WARN,
                    "vigil: exiting now; unarchived records are read again on the next start",
                );
                std::process::exit(130);
            }
        }
    });
}

/// Exits 2 once `limit` has passed, naming what was read but is not durable. A thread, not a task: it
/// fires even when every runtime worker is busy.
fn exit_after(limit: std::time::Duration, health: std::sync::Arc<vigil_metrics::Health>) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let pending = health.not_durable();
        let what = if pending.is_empty() {
            "everything read is durable (the drain was still storing rule state or signing)".to_string()
        } else {
            format!(
                "not made durable: {}; their offsets are not committed, so they are read again on the next start",
                pending.join("; ")
            )
        };
        logs::say(
            tracing::Level::ERROR,
            &format!(
                "error: the graceful shutdown did not finish within {} s (shutdown_timeout_secs,                  --shutdown-timeout); exiting: {what}",
                limit.as_secs()
            ),
        );
        std::process::exit(2);
    });
}

/// A problem `validate` found: where (file and line, or the config) and what; `text` as printed.
struct Problem {
    origin: String,
    reason: String,
    text: String,
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

fn validate(args: ValidateArgs) -> Result<ExitCode> {
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
                    r.kind.as_str(),
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
        Command::Run(args) => run(args),
        Command::Bench(args) => bench::bench(args),
        Command::Validate(args) => validate(args),
        Command::Rules(command) => rules(command),
        Command::Verify(args) => verify(args),
        Command::Query(args) => query(args),
        Command::Sample(args) => sample(args),
        Command::Evidence(EvidenceCommand::Expire(args)) => expire(args),
        Command::Keys(command) => keys(command),
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

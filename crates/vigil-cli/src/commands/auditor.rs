//! The auditor's and the response team's commands beside `query` and `sample`: `vigil alerts triage`
//! and `vigil alerts list` (the triage records and queue, [`vigil_audit::triage`]) and `vigil report`
//! (the workpaper, [`vigil_report`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use vigil_pipeline::config::EvidenceConfig;

use super::{every_core, rfc3339, runtime};
use crate::logs;

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// Record what was decided about an alert: appended to the archive's `triage` table (chained, and
    /// signed when the archive is), never editing an earlier record.
    Triage(TriageArgs),
    /// The queue: alerts of a period with their latest triage status (never triaged: open).
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct TriageArgs {
    /// The alert's id (`alert_id` in the alerts output and the `alerts` table).
    alert_id: String,
    /// open, investigating, resolved or false_positive.
    #[arg(long, value_name = "STATUS")]
    status: String,
    /// Who decided (a name or an email address).
    #[arg(long, value_name = "WHO")]
    by: String,
    /// A ticket reference (e.g. SEC-1234).
    #[arg(long, value_name = "REF")]
    ticket: Option<String>,
    /// A note.
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL.
    #[arg(long, value_name = "URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    evidence: String,
    /// The signing key a signed archive needs (default: VIGIL_SIGNING_KEY_FILE, else VIGIL_SIGNING_KEY).
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only alerts whose latest status is this (open, investigating, resolved, false_positive).
    #[arg(long, value_name = "STATUS")]
    status: Option<String>,
    /// Period start, inclusive (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME")]
    from: String,
    /// Period end, exclusive (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME")]
    to: String,
    /// Output format: table, csv, json (one object per line) or parquet.
    #[arg(long, default_value = "table")]
    format: String,
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL.
    #[arg(long, value_name = "URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    evidence: String,
}

pub fn alerts(command: AlertsCommand) -> Result<ExitCode> {
    match command {
        AlertsCommand::Triage(args) => triage(args),
        AlertsCommand::List(args) => list(args),
    }
}

pub(crate) fn triage(args: TriageArgs) -> Result<ExitCode> {
    let mut config = EvidenceConfig::at(args.evidence.clone());
    config.signing_key_file = args.signing_key.clone();
    let signer = config.signer()?;
    let request = vigil_audit::triage::TriageRequest {
        alert_id: args.alert_id,
        status: args.status,
        by: args.by,
        ticket: args.ticket,
        note: args.note,
    };
    let rt = runtime(every_core())?;
    let (record, id, digest) = rt.block_on(async {
        let mut archive = vigil_evidence::Archive::open_existing(&args.evidence).await?;
        let signed = archive.is_signed().await?;
        match signer {
            Some(signer) => archive = archive.with_signer(signer),
            None if signed => {
                return Err(anyhow::Error::from(vigil_evidence::Error::SigningKeyMissing {
                    location: archive.location().to_string(),
                }));
            }
            None => {}
        }
        let ctx = vigil_audit::query::archive_context(&archive).await?;
        let (record, id) = vigil_audit::triage::record(&archive, &ctx, &request).await?;
        let digest = archive.sign_digest(true).await?;
        Ok((record, id, digest))
    })?;
    println!(
        "alert {} ({}): {} by {}; triage record {id}",
        record.alert_id, record.rule_id, record.status, record.triaged_by
    );
    if let Some(d) = digest {
        println!("signed in digest {} with key {}", d.seq, d.key_id);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn list(args: ListArgs) -> Result<ExitCode> {
    use std::io::Write;
    if let Some(status) = &args.status
        && !vigil_evidence::records::TRIAGE_STATUSES.contains(&status.as_str())
    {
        bail!("unknown status `{status}`: use one of {}", vigil_evidence::records::TRIAGE_STATUSES.join(", "));
    }
    let format: vigil_audit::query::OutputFormat = args.format.parse()?;
    let sql = vigil_audit::triage::queue_sql(args.status.as_deref(), &rfc3339(&args.from)?, &rfc3339(&args.to)?);
    let rt = runtime(every_core())?;
    let batches = rt.block_on(async {
        let archive = vigil_evidence::Archive::open_existing(&args.evidence).await?;
        let ctx = vigil_audit::query::archive_context(&archive).await?;
        vigil_audit::query::query(&ctx, &sql).await
    })?;
    let mut buf = Vec::new();
    vigil_audit::query::write_output(&batches, format, &mut buf)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&buf).and_then(|()| stdout.flush()).context("cannot write the queue to stdout")?;
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    logs::say(tracing::Level::INFO, &format!("{n} alert(s); the query: {sql}"));
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL.
    #[arg(long, value_name = "URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    evidence: String,
    /// Period start, inclusive (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME")]
    from: String,
    /// Period end, exclusive (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_name = "TIME")]
    to: String,
    /// A control (criterion such as CC6.1) to report on; repeatable. Default: every criterion the rules
    /// in the archive serve.
    #[arg(long = "control", value_name = "CC")]
    controls: Vec<String>,
    /// Folder for the workpaper (index.html, one page per control, samples).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Public key file(s) the digests are verified with (as `vigil verify --public-key`).
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
    /// The samples' seed (printed in the report; the same seed draws the same records).
    #[arg(long, value_name = "N", default_value = "1")]
    seed: String,
    /// Records sampled per control.
    #[arg(long, value_name = "N", default_value_t = 25)]
    sample_size: usize,
    /// List alerts still unresolved this many days after they were raised.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    unresolved_days: u32,
    /// A source without events for this many hours is a silence spell.
    #[arg(long, value_name = "HOURS", default_value_t = 24)]
    silence_hours: u32,
}

pub fn report(args: ReportArgs) -> Result<ExitCode> {
    let mut public_keys = Vec::new();
    for path in &args.public_keys {
        public_keys.extend(vigil_evidence::keys::PublicKey::all_from_file(path)?);
    }
    let options = vigil_report::ReportOptions {
        from: rfc3339(&args.from)?,
        to: rfc3339(&args.to)?,
        controls: args.controls,
        out: args.out.clone(),
        public_keys,
        seed: args.seed,
        sample_size: args.sample_size,
        unresolved_days: args.unresolved_days,
        silence_hours: args.silence_hours,
        evidence: vigil_schema::redact::url(&args.evidence).into_owned(),
        public_key_files: args.public_keys.iter().map(|p| p.display().to_string()).collect(),
    };
    let rt = runtime(every_core())?;
    let summary = rt.block_on(async {
        let archive = vigil_evidence::Archive::open_existing(&args.evidence).await?;
        Ok::<_, anyhow::Error>(vigil_report::write(&archive, &options).await?)
    })?;
    for c in &summary.controls {
        println!(
            "{}: {} rule version(s), {} alert(s), {} sampled: {}",
            c.id,
            c.rule_versions,
            c.alerts,
            c.sampled,
            c.page.display()
        );
    }
    println!(
        "workpaper: {} (archive {}{})",
        summary.index.display(),
        if summary.verify_ok { "verified" } else { "has verify findings: see the report" },
        if summary.authenticated { ", signatures checked" } else { ", signatures not checked (no --public-key)" }
    );
    for failure in &summary.failures {
        logs::say(tracing::Level::WARN, &format!("could not be read from the archive: {failure}"));
    }
    // Like verify: 1 when the archive has a finding (the workpaper is written and says what).
    Ok(if summary.verify_ok && summary.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

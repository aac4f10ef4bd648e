//! `vigil evidence expire`: delete data files past retention, recording each disposal first.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use vigil_pipeline::config::{EvidenceConfig, PipelineConfig};

use super::{every_core, runtime};
use crate::logs;

#[derive(Subcommand, Debug)]
pub(crate) enum EvidenceCommand {
    /// Delete data files past retention (their manifest entry was written more than retention_days ago),
    /// recording each disposal in its manifest chain first. Manifest entries are kept.
    Expire(ExpireArgs),
}

#[derive(Args, Debug)]
pub(crate) struct ExpireArgs {
    /// Evidence archive: a local directory, file:// or s3://BUCKET/PREFIX URL (default: the config's).
    #[arg(long, value_name = "URL", env = "VIGIL_EVIDENCE", hide_env_values = true)]
    pub(crate) evidence: Option<String>,
    /// Pipeline config whose [evidence] url and retention_days apply.
    #[arg(long, short = 'c', env = "VIGIL_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Retention in days (default: the config's retention_days, else 400).
    #[arg(long, value_name = "DAYS")]
    pub(crate) retention_days: Option<u32>,
    /// Dispose of evidence younger than the minimum retention (the config's min_retention_days, default
    /// 365). Recorded in the disposal entry; `vigil verify` names every such disposal.
    #[arg(long)]
    pub(crate) allow_short_retention: bool,
    /// The signing key (default: the config's signing_key_file, VIGIL_SIGNING_KEY_FILE or
    /// VIGIL_SIGNING_KEY); a signed archive needs it to sign the disposals.
    #[arg(long, value_name = "FILE", env = "VIGIL_SIGNING_KEY_FILE")]
    pub(crate) signing_key: Option<PathBuf>,
    /// List what is past retention; write and delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn expire(args: ExpireArgs) -> Result<ExitCode> {
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

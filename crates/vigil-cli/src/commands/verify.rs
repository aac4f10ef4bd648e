//! `vigil verify`: prove an evidence archive complete and untampered (exit 0 intact, 1 a finding).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::{every_core, parse_time_arg, runtime};

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
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

pub(crate) fn verify(args: VerifyArgs) -> Result<ExitCode> {
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

//! `vigil query`: read-only SQL over an evidence archive.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::{every_core, runtime};
use crate::logs;

#[derive(Args, Debug)]
pub(crate) struct QueryArgs {
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

pub(crate) fn query(args: QueryArgs) -> Result<ExitCode> {
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

//! `vigil sample`: a reproducible evidence sample into a package folder.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

use super::{every_core, rfc3339, runtime};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("population").required(true).args(["rule", "criterion", "where_sql"])))]
pub(crate) struct SampleArgs {
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

pub(crate) fn sample(args: SampleArgs) -> Result<ExitCode> {
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

//! `vigil bench`: the real pipeline over one file (normalize, rules, zstd Parquet evidence with manifests,
//! alerts), timed, then one JSON line in the result contract of `../shared/bench` (engine, threads, events,
//! bytes, per-stage seconds, total_s, events_per_s, mb_per_s, matches per rule, parquet_bytes), so that
//! `compare.sh` can run it next to DuckDB. Users run it on their own logs the same way.
//!
//! `total_s` runs from loading the rules until the last evidence file and manifest entry are written;
//! process start and argument parsing are outside it. With one thread the stages follow one another, so
//! `parse_s + rules_s + parquet_s` (+ the small `emit_s`) add up to about `total_s`. With two or more, a
//! batch's Parquet write runs beside the next batch's normalization and rules, and `parquet_s` is only the
//! time spent waiting for it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use vigil_pipeline::Pipeline;
use vigil_pipeline::config::{EvidenceConfig, InputConfig, OutputConfig, PipelineConfig, RulesConfig, Settings};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Input format (as for `run --input FORMAT:PATH`).
    #[arg(long, default_value = "cloudtrail")]
    format: String,
    /// Worker threads for parsing, rules and encoding.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Directory of .sql rules (the translated peer rules are in benches/rules).
    #[arg(long, value_name = "DIR", default_value = "benches/rules")]
    rules: Vec<PathBuf>,
    /// Scratch directory for the evidence, alerts and dead letters; vigil's files from an earlier bench
    /// there are removed first, so each run starts from an empty archive.
    #[arg(long, value_name = "DIR", default_value = "/tmp/vigil-bench-out/vigil")]
    out: PathBuf,
    /// Close a micro-batch at this many records.
    #[arg(long, value_name = "N")]
    batch_rows: Option<usize>,
    /// zstd level of the Parquet evidence (as `[pipeline] zstd_level`; default 1).
    #[arg(long, value_name = "N")]
    zstd_level: Option<i32>,
    /// The input file.
    input: PathBuf,
}

pub fn bench(args: BenchArgs) -> Result<std::process::ExitCode> {
    let bytes = std::fs::metadata(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?.len();
    for name in ["evidence", "alerts.ndjson", "dead_letters.ndjson"] {
        let path = args.out.join(name);
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        if let Err(e) = removed
            && e.kind() != std::io::ErrorKind::NotFound
        {
            bail!("cannot clear {} from the last bench: {e}", path.display());
        }
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let input = format!("{}:{}", args.format, args.input.display());
    let mut pipeline = Settings { threads: args.threads.max(1), ..Settings::default() };
    if let Some(rows) = args.batch_rows {
        pipeline.batch_rows = rows;
    }
    if let Some(level) = args.zstd_level {
        pipeline.zstd_level = level;
    }
    let config = PipelineConfig {
        pipeline,
        inputs: vec![InputConfig::from_flag(&input)?],
        rules: RulesConfig { dirs: args.rules.clone(), ..RulesConfig::default() },
        evidence: EvidenceConfig::at(args.out.join("evidence").display().to_string()),
        alerts: OutputConfig {
            path: Some(args.out.join("alerts.ndjson").display().to_string()),
            ..OutputConfig::default()
        },
        dead_letters: OutputConfig {
            path: Some(args.out.join("dead_letters.ndjson").display().to_string()),
            ..OutputConfig::default()
        },
    };
    let rt = super::runtime(args.threads.max(1))?;
    let (summary, total) = rt.block_on(async {
        let started = Instant::now();
        let pipeline = Pipeline::new(config, "bench").await?;
        let summary = pipeline.run().await?;
        anyhow::Ok((summary, started.elapsed()))
    })?;
    eprintln!("{summary}");
    let events = summary.total().events;
    let total_s = total.as_secs_f64().max(1e-9);
    // Every rule, with 0 for those that matched nothing (the kit compares the whole map).
    let matches: std::collections::BTreeMap<&str, u64> =
        summary.rules.iter().map(|r| (r.as_str(), summary.alerts_by_rule.get(r).copied().unwrap_or(0))).collect();
    let line = serde_json::json!({
        "engine": "vigil",
        "version": env!("CARGO_PKG_VERSION"),
        "threads": args.threads.max(1),
        "events": events,
        "dead_letters": summary.total().dead_letters,
        "bytes": bytes,
        "parse_s": round(summary.stages.normalize.as_secs_f64()),
        "rules_s": round(summary.stages.rules.as_secs_f64()),
        "emit_s": round(summary.stages.emit.as_secs_f64()),
        "parquet_s": round(summary.stages.archive.as_secs_f64()),
        "total_s": round(total_s),
        "events_per_s": (events as f64 / total_s * 10.0).round() / 10.0,
        "mb_per_s": ((bytes as f64 / 1e6 / total_s) * 100.0).round() / 100.0,
        "matches": matches,
        "mode": "evidence+raw+manifests",
        "parquet_bytes": parquet_bytes(&args.out.join("evidence")),
    });
    println!("{line}");
    Ok(if summary.reconciles() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::from(1) })
}

pub(crate) fn round(seconds: f64) -> f64 {
    (seconds * 10_000.0).round() / 10_000.0
}

/// Bytes of the events' Parquet files under `evidence` (what the peer's single Parquet file compares to).
pub(crate) fn parquet_bytes(evidence: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![evidence.join("events")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}

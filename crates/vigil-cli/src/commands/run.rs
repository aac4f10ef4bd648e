//! `vigil run`: run a pipeline until its inputs end or a signal drains it.

use std::process::ExitCode;

use anyhow::{Context, Result};
use vigil_pipeline::{Pipeline, ShutdownHandle};

use super::pipeline_args::PipelineArgs;
use super::runtime;
use crate::{logs, progress};

pub(crate) fn run(args: PipelineArgs) -> Result<ExitCode> {
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
pub(crate) fn drain_on_signals(
    handle: ShutdownHandle,
    health: std::sync::Arc<vigil_metrics::Health>,
    limit: std::time::Duration,
) {
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
pub(crate) fn exit_after(limit: std::time::Duration, health: std::sync::Arc<vigil_metrics::Health>) {
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

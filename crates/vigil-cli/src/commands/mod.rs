//! One module per subcommand; `main.rs` holds the command line and dispatches here. Shared below: the
//! runtime every command runs on and the time arguments.

use anyhow::{Context, Result, bail};

pub(crate) mod auditor;
pub(crate) mod bench;
pub(crate) mod expire;
pub(crate) mod keys;
pub(crate) mod pipeline_args;
pub(crate) mod query;
pub(crate) mod rules;
pub(crate) mod run;
pub(crate) mod sample;
pub(crate) mod sigma;
pub(crate) mod validate;
pub(crate) mod verify;

/// Threads for the archive commands (verify, query, sample): every core.
pub(crate) fn every_core() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

pub(crate) fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    // Parsing and encoding run on rayon; DataFusion and I/O on tokio: both sized to the same thread count.
    let _ =
        rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("vigil-work-{i}")).build_global();
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build()?)
}

/// Parses RFC 3339 or `YYYY-MM-DD` (midnight UTC) into microseconds since the epoch.
pub(crate) fn parse_time_arg(text: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros()).unwrap_or_default());
    }
    bail!("`{text}` is not a time: write 2024-08-01 or 2024-08-01T12:00:00Z")
}

pub(crate) fn rfc3339(text: &str) -> Result<String> {
    let us = parse_time_arg(text)?;
    let t = chrono::DateTime::from_timestamp_micros(us).context("time out of range")?;
    Ok(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

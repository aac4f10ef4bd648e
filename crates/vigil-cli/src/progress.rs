//! The progress line of `vigil run` replaying files on a terminal: bytes read of the inputs' total, a bar,
//! events/s and MB/s since the start, and the ETA. Off when stderr is not a terminal, when an input is
//! Kafka (an endless stream: see `--metrics-addr`), or with `--no-progress`. Compressed or stdin inputs
//! have no known total: the line shows the rates without a bar.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vigil_metrics::Metrics;
use vigil_pipeline::config::PipelineConfig;
use vigil_pipeline::source::expand_input;

/// Total bytes of the file inputs, `None` when one has no size known up front (stdin, `.gz`), and no
/// progress at all (`Err`) when an input is Kafka.
fn total_bytes(config: &PipelineConfig) -> Result<Option<u64>, ()> {
    let mut total = 0u64;
    let mut known = true;
    for input in &config.inputs {
        if input.is_kafka() {
            return Err(());
        }
        for file in expand_input(&input.path).map_err(|_| ())? {
            match &file.path {
                Some(p) if p.extension().is_none_or(|e| e != "gz") => {
                    total += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                }
                _ => known = false,
            }
        }
    }
    Ok(known.then_some(total))
}

/// Draws the line every 200 ms until dropped.
pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts the line for `config`'s inputs, or `None` when it does not apply.
    pub fn start(config: &PipelineConfig, metrics: Metrics) -> Option<Progress> {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let total = total_bytes(config).ok()?;
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template("{bytes:>10}/{total_bytes} [{bar:30}] {percent:>3}% {msg} ETA {eta}")
                    .ok()?
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner()
                .with_style(ProgressStyle::with_template("{spinner} {bytes:>10} read, {msg}").ok()?),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(5));
        let started = Instant::now();
        let ticking = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let counters = metrics.partitions();
                let bytes: u64 = counters.values().map(|c| c.bytes_read).sum();
                let events: u64 = counters.values().map(|c| c.events_archived).sum();
                let seconds = started.elapsed().as_secs_f64().max(1e-3);
                ticking.set_position(bytes);
                ticking.set_message(format!(
                    "{:.0} events/s, {:.1} MB/s",
                    events as f64 / seconds,
                    bytes as f64 / 1e6 / seconds
                ));
            }
        });
        Some(Progress { bar, task })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

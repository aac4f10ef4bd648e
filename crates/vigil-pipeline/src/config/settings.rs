//! `[pipeline]`: micro-batch and parallelism settings.

use serde::Deserialize;

/// Micro-batch and parallelism settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// A micro-batch closes at this many records.
    pub batch_rows: usize,
    /// A micro-batch closes this many milliseconds after its first record.
    pub batch_ms: u64,
    /// Worker threads for parsing, rules and encoding; 0 means every core.
    pub threads: usize,
    /// Records larger than this are dead-lettered `too_large` (bytes); their whole bytes are streamed to
    /// a temporary file and archived as a blob, never held in memory.
    pub max_record_bytes: usize,
    /// A JSON document (envelope file) is held in memory up to this size (bytes); a larger one is
    /// dead-lettered whole (one blob) and the run goes on with the next file.
    pub max_document_bytes: usize,
    /// zstd level of the Parquet evidence (default 1: on CloudTrail, level 3 made files 1.2 % smaller and
    /// took 34 % longer to encode).
    pub zstd_level: i32,
    /// Kafka: stop once every assigned partition reached the end offset seen when it was assigned.
    pub until_caught_up: bool,
    /// Records held in open micro-batches are bounded by this many bytes: a batch closes before it would
    /// pass it. Kafka: the bound is on the sum over all partitions, and the largest batch closes first.
    pub max_buffered_bytes: usize,
    /// `/healthz` answers 503 when records of a partition (an open batch past its deadline, or an archive
    /// write not settled) have waited this many seconds without progress, or the loop has not come round
    /// for as long.
    pub stuck_after_secs: u64,
    /// After SIGTERM, the drain (finish the open batches, make them durable, commit their offsets) may
    /// take this many seconds; past it vigil exits non-zero naming what is not durable (those offsets are
    /// not committed: they are read again on the next start). Also `--shutdown-timeout SECS`.
    pub shutdown_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_rows: 32_768,
            batch_ms: 1_000,
            threads: 0,
            max_record_bytes: 4 << 20,
            max_document_bytes: 128 << 20,
            zstd_level: 1,
            until_caught_up: false,
            // One batch is normalized while the previous one is written: with 7.8 KB records (full
            // 32 MiB batches) RSS peaked at 594 MiB; at 64 MiB it was 880 MiB (issue 7 measurements).
            max_buffered_bytes: 32 << 20,
            stuck_after_secs: 300,
            shutdown_timeout_secs: 60,
        }
    }
}

impl Settings {
    /// Threads to use: the setting, or every core.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 { self.threads } else { std::thread::available_parallelism().map_or(1, |n| n.get()) }
    }
}

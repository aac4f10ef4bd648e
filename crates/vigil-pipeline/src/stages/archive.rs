//! Stage 5, **archive**: the batch's events, dead letters and alerts are encoded as zstd Parquet (on a
//! blocking thread) and written with the range's manifest entry ([`vigil_evidence::Archive::commit`])
//! in the background, one write at a time per partition, while the next batch is read. The write is
//! durable once [`commit`](super::commit) has settled it.

use std::time::Instant;

use arrow::array::RecordBatch;
use vigil_evidence::RangeCommit;
use vigil_metrics::BatchCounts;
use vigil_normalize::{NormalizedBatch, dead_letters_to_batch};
use vigil_rules::{Alert, alerts_to_batch};

use super::batch::{ClosedBatch, Partition};
use crate::run::Pipeline;
use crate::{Error, Result};

/// A closed batch being encoded and written to the archive in the background.
pub(crate) struct InFlight {
    /// Last offset of its range.
    pub(crate) last: i64,
    /// What it adds to the run once durable. Its dead-letter bytes are those of rows without a blob so
    /// far: blobs are counted from the manifest entry once it is written.
    pub(crate) counts: BatchCounts,
    /// When the batch's first record was read, and when its write started.
    pub(crate) opened_at: Instant,
    pub(crate) started: Instant,
    pub(crate) task: tokio::task::JoinHandle<Result<vigil_evidence::ManifestEntry>>,
}

impl Pipeline {
    /// Starts the archive write of `batch` (after the partition's previous write is settled).
    pub(crate) async fn archive(
        &mut self,
        part: &mut Partition,
        batch: ClosedBatch,
        normalized: NormalizedBatch,
        alerts: &[Alert],
    ) -> Result<()> {
        let stage = Instant::now();
        let zstd = self.config.pipeline.zstd_level;
        let partition = part.id.partition;
        let ClosedBatch {
            blobs,
            source_prefix,
            first,
            last,
            opened_at,
            read,
            bytes_read,
            ingest_time_us,
            normalizer,
            ..
        } = batch;
        let dead_batch = dead_letters_to_batch(
            &normalized.dead_letters,
            normalizer.as_ref(),
            part.id.source(),
            partition,
            ingest_time_us,
        );
        // Silence alerts raised while the partition was idle are archived (and counted) with this range.
        let idle_alerts = std::mem::take(&mut part.idle_alerts);
        let mut alerts_by_rule = std::collections::BTreeMap::new();
        for alert in idle_alerts.iter().chain(alerts) {
            *alerts_by_rule.entry(alert.rule_id.clone()).or_default() += 1;
        }
        let alert_batch = if idle_alerts.is_empty() {
            alerts_to_batch(alerts, part.id.source(), partition)
        } else {
            let mut archived = idle_alerts;
            archived.extend(alerts.iter().cloned());
            alerts_to_batch(&archived, part.id.source(), partition)
        };
        let events: Vec<RecordBatch> = normalized.batches;
        let rows = events.iter().map(RecordBatch::num_rows).sum::<usize>();
        // What the archive keeps of the records' bytes, for the byte reconciliation (blobs: at `settle`).
        let event_bytes = raw_bytes(&events);
        let dead_letter_row_bytes: u64 = normalized
            .dead_letters
            .iter()
            .filter(|d| !blobs.iter().any(|b| b.offset == d.offset))
            .map(|d| d.raw.len() as u64)
            .sum();
        let skipped = (last - first + 1) as u64 - read as u64;
        let format = normalizer.format().to_string();
        let input = part.input.clone();
        let pack_hash = self.engine.pack_hash().to_string();
        let src = part.id.source.clone();
        // One write at a time per partition: the next entry chains after the previous one. The rules have
        // seen this batch already, so the state is not stored as of the previous one here.
        self.settle(part, false).await?;
        let archive = self.archive.clone();
        let head = part.head.clone();
        let task = tokio::spawn(async move {
            let prepared = tokio::task::spawn_blocking(move || {
                let commit = RangeCommit {
                    ingest_source: &src,
                    partition,
                    first_offset: first,
                    last_offset: last,
                    format: &format,
                    input: &input,
                    events: &events,
                    dead_letters: Some(&dead_batch),
                    alerts: Some(&alert_batch),
                    skipped,
                    rule_pack_hash: &pack_hash,
                    lost_reason: None,
                    source_prefix,
                    blobs: &blobs,
                };
                vigil_evidence::prepare(&commit, zstd)
            })
            .await
            .map_err(|e| Error::Internal(format!("encode task failed: {e}")))??;
            if let Some(wait) = vigil_evidence::failpoint::stall("archive_write") {
                tokio::time::sleep(wait).await;
            }
            vigil_evidence::failpoint::hit("before_archive");
            Ok(archive.commit(prepared, head.as_ref()).await?)
        });
        let mut dead_letters = std::collections::BTreeMap::new();
        for dead in &normalized.dead_letters {
            *dead_letters.entry(dead.code.as_str()).or_default() += 1;
        }
        let counts = BatchCounts {
            records_read: read as u64,
            bytes_read,
            events: rows as u64,
            event_bytes,
            dead_letters,
            dead_letter_bytes: dead_letter_row_bytes,
            skipped,
            alerts: alerts_by_rule,
        };
        tracing::debug!(
            partition = %part.id,
            first,
            last,
            rows,
            dead = counts.dead_letter_total(),
            alerts = counts.alert_total(),
            "batch handed to the archive"
        );
        part.in_flight = Some(InFlight { last, counts, opened_at, started: stage, task });
        part.next_first = Some(last + 1);
        self.stages.archive += stage.elapsed();
        if !part.overlap_archive {
            self.settle(part, true).await?;
        }
        Ok(())
    }
}

/// Bytes of the `raw` column of event batches: the records' original bytes as archived.
fn raw_bytes(batches: &[RecordBatch]) -> u64 {
    use arrow::array::{Array, AsArray};
    batches
        .iter()
        .filter_map(|b| b.column_by_name(vigil_schema::RAW)?.as_binary_opt::<i32>().map(|a| (a, b.num_rows())))
        .map(|(raw, rows)| {
            let offsets = raw.value_offsets();
            let (first, last) = (offsets.first().copied().unwrap_or(0), offsets.get(rows).copied().unwrap_or(0));
            if raw.null_count() > 0 {
                (0..rows).filter(|&i| raw.is_valid(i)).map(|i| raw.value_length(i) as u64).sum()
            } else {
                (last - first).max(0) as u64
            }
        })
        .sum()
}

//! Stage 2, **normalize**: the batch's records are parsed on rayon (off the async workers) into
//! canonical Arrow events and dead letters ([`vigil_normalize::normalize_records`]); over-size records,
//! dead letters already, join the others in offset order.

use std::time::Instant;

use vigil_normalize::{NormalizedBatch, ReasonCode, normalize_records};

use super::batch::{ClosedBatch, Partition};
use crate::run::Pipeline;
use crate::{Error, Result};

impl Pipeline {
    /// Normalizes `batch` (taking its records).
    pub(crate) async fn normalize(&mut self, part: &Partition, batch: &mut ClosedBatch) -> Result<NormalizedBatch> {
        let threads = self.config.pipeline.effective_threads();
        let stage = Instant::now();
        let records = std::mem::take(&mut batch.records);
        let chunk_rows = records.len().div_ceil(threads * 2).clamp(256, 8192);
        let n = batch.normalizer.clone();
        let src = part.id.source.clone();
        let partition = part.id.partition;
        let ingest_time_us = batch.ingest_time_us;
        let mut normalized: NormalizedBatch = tokio::task::spawn_blocking(move || {
            normalize_records(n.as_ref(), records, &src, partition, ingest_time_us, chunk_rows)
        })
        .await
        .map_err(|e| {
            self.metrics.error("normalize", 1);
            Error::Internal(format!("normalize task failed: {e}"))
        })?;
        // A normalizer that panicked on a record (caught: the record is a dead letter) is a bug.
        let panicked = normalized.dead_letters.iter().filter(|d| d.code == ReasonCode::InternalError).count();
        if panicked > 0 {
            self.metrics.error("normalize", panicked as u64);
        }
        normalized.dead_letters.extend(std::mem::take(&mut batch.too_large));
        normalized.dead_letters.sort_by_key(|d| d.offset);
        self.stages.normalize += stage.elapsed();
        self.metrics.stage("normalize", stage.elapsed());
        Ok(normalized)
    }
}

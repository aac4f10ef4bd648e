//! Stage 6, **commit**: a batch's archive write is awaited ([`Pipeline::settle`]); then its range is
//! durable, the partition's chain head moves to the new manifest entry, the range counts as archived
//! (the same [`vigil_metrics::BatchCounts`] into the run summary and the metrics), its rule state may be
//! stored, and its offsets are reported to the source ([`report_durable`]: Kafka commits them). A range the source no longer had is committed as
//! a completeness break ([`Pipeline::commit_lost`]).

use std::time::Instant;

use vigil_evidence::{Archive, ChainHead, RangeCommit};
use vigil_kafka::Checkpoints;
use vigil_schema::PartitionId;

use super::batch::Partition;
use crate::input::Source;
use crate::run::Pipeline;
use crate::{Error, Result};

/// The archive as the Kafka source's checkpoint store.
pub(crate) struct ArchiveCheckpoints {
    pub(crate) archive: Archive,
    pub(crate) runtime: tokio::runtime::Handle,
}

impl Checkpoints for ArchiveCheckpoints {
    fn resume_after(&self, partition: &PartitionId) -> std::result::Result<Option<i64>, String> {
        self.runtime
            .block_on(self.archive.resume(partition))
            .map(|r| r.head.map(|h| h.last_offset))
            .map_err(|e| e.to_string())
    }
}

impl Pipeline {
    /// Waits for the archive write of `part`'s last closed batch: then its range is durable and the chain
    /// head moves to it. Only after this do the range's offsets count as archived (and, for Kafka, get
    /// committed). With `may_store_state`, the rules have seen nothing after that batch, so the rule
    /// state may be stored as of it (when its interval has passed).
    pub(crate) async fn settle(&mut self, part: &mut Partition, may_store_state: bool) -> Result<()> {
        let Some(in_flight) = part.in_flight.take() else { return Ok(()) };
        let stage = Instant::now();
        let written = in_flight.task.await.map_err(|e| Error::Internal(format!("archive task failed: {e}")));
        let entry = match written.and_then(|w| w) {
            Ok(entry) => entry,
            Err(e) => return Err(self.archive_failed(e)),
        };
        vigil_evidence::failpoint::hit("before_commit");
        part.rules.covered(in_flight.last);
        if may_store_state {
            self.rule_state.save(&self.archive, &self.engine, &part.id, &mut part.rules, false).await?;
        }
        part.head = Some(ChainHead::from(&entry));
        part.resume_after = in_flight.last;
        let mut counts = in_flight.counts;
        counts.dead_letter_bytes +=
            entry.files.iter().filter(|f| f.kind == vigil_evidence::BLOB_KIND).map(|f| f.size).sum::<u64>();
        part.summary.add(&counts);
        self.metrics.archived(&part.id, &counts, in_flight.opened_at.elapsed());
        self.stages.archive += stage.elapsed();
        self.metrics.stage("archive", in_flight.started.elapsed());
        let health = self.metrics.health();
        health.durable(&part.id, in_flight.last);
        health.store_reachable();
        Ok(())
    }

    /// A write to the archive failed: counted, and the pipeline is not ready.
    fn archive_failed(&self, error: Error) -> Error {
        self.metrics.error("archive", 1);
        self.metrics.health().store_failed(&error.to_string());
        error
    }

    /// Records offsets `first..=last` of `part` as lost (a completeness break in its chain).
    pub(crate) async fn commit_lost(
        &mut self,
        part: &mut Partition,
        first: i64,
        last: i64,
        reason: &str,
    ) -> Result<()> {
        self.close_batch(part).await?;
        self.settle(part, true).await?;
        let first = part.next_first.map_or(first, |n| n.max(first));
        if first > last {
            return Ok(());
        }
        let format = part.normalizer.format().to_string();
        let commit = RangeCommit {
            ingest_source: part.id.source(),
            partition: part.id.partition,
            first_offset: first,
            last_offset: last,
            format: &format,
            input: &part.input,
            rule_pack_hash: self.engine.pack_hash(),
            lost_reason: Some(reason),
            ..RangeCommit::default()
        };
        let prepared = vigil_evidence::prepare(&commit, self.config.pipeline.zstd_level)?;
        let entry = match self.archive.commit(prepared, part.head.as_ref()).await {
            Ok(entry) => entry,
            Err(e) => return Err(self.archive_failed(e.into())),
        };
        self.metrics.completeness_break(&part.id, (last - first + 1) as u64);
        self.metrics.health().durable(&part.id, last);
        part.rules.covered(last);
        part.head = Some(ChainHead::from(&entry));
        part.next_first = Some(last + 1);
        part.resume_after = last;
        part.last_offset = last;
        part.summary.lost += (last - first + 1) as u64;
        Ok(())
    }
}

/// Tells the source that `part` is durable up to its next range, once per new position (for Kafka each
/// report is an offset commit).
pub(crate) fn report_durable(source: &Source, part: &mut Partition) {
    if part.head.is_some()
        && let Some(next) = part.next_first
        && part.reported != Some(next)
    {
        source.durable(&part.id, next);
        part.reported = Some(next);
    }
}

//! Stage 1, **batch**: the records of one source partition gather into a micro-batch, which closes at
//! `batch_rows` records, `batch_ms` after its first record, or `max_buffered_bytes`, whichever comes
//! first; then [`Pipeline::close_batch`] hands it down the stages, in this order:
//! [`normalize`](super::normalize) → [`detect`](super::detect) → [`emit`](super::emit) →
//! [`archive`](super::archive) → [`commit`](super::commit).
//!
//! A [`Partition`] is one input file (`file-<fingerprint>`, partition 0) or one Kafka topic partition,
//! with its chain head (what is durable) and its open batch. Records at or before the head are counted
//! as `already_archived` and not processed again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_evidence::{Archive, ChainHead, DeadLetterBlob, SourcePrefix};
use vigil_normalize::{DeadLetter, Normalizer, RawRecords, ReasonCode};
use vigil_rules::{Alert, RuleEngine};
use vigil_schema::PartitionId;

use super::archive::InFlight;
use crate::Result;
use crate::input::Opening;
use crate::rule_state::{PartitionRules, RuleStateStore};
use crate::run::Pipeline;
use crate::source::{DEAD_LETTER_PREFIX, PrefixMark};
use crate::summary::InputSummary;

/// One source partition being read: its identity, its chain head, its rule state and the micro-batch
/// being filled.
pub(crate) struct Partition {
    pub(crate) input: String,
    pub(crate) normalizer: Arc<dyn Normalizer>,
    pub(crate) id: PartitionId,
    /// Its stateful rules' state (loaded when it opened, stored as it goes).
    pub(crate) rules: PartitionRules,
    /// The newest manifest entry of this partition's chain.
    pub(crate) head: Option<ChainHead>,
    /// Records at or before this offset are already archived.
    pub(crate) resume_after: i64,
    /// First offset of the next committed range; `None` until the first record of a new chain.
    pub(crate) next_first: Option<i64>,
    /// Records of the open micro-batch.
    pub(crate) records: RawRecords,
    /// Over-size records of the open micro-batch, already dead letters (their rows keep a prefix)...
    pub(crate) too_large: Vec<DeadLetter>,
    /// ... and their whole bytes, one blob each.
    pub(crate) blobs: Vec<DeadLetterBlob>,
    /// File inputs: the content through the end of the last record added to the open batch.
    pub(crate) prefix: Option<PrefixMark>,
    /// Last offset read into the open micro-batch.
    pub(crate) last_offset: i64,
    /// When the open batch must close (`batch_ms` after its first record).
    pub(crate) deadline: Option<tokio::time::Instant>,
    /// When the open batch's first record was read: where its events' latency starts.
    pub(crate) opened_at: Option<Instant>,
    /// The next offset last reported durable to the source.
    pub(crate) reported: Option<i64>,
    /// The open batch ends the run's input: stateful rules release what they hold when it closes.
    pub(crate) end_of_input: bool,
    /// Kafka: when the partition last received records (or was assigned); silence rules' idle clock.
    pub(crate) last_records_at: tokio::time::Instant,
    /// Silence alerts raised while the partition was idle: already sent to the outputs, archived with
    /// the partition's next range.
    pub(crate) idle_alerts: Vec<Alert>,
    /// The archive write of the last closed batch, still running (see [`Pipeline::settle`]).
    pub(crate) in_flight: Option<InFlight>,
    /// Let a batch's archive write run while the next batch is read and normalized (file inputs with
    /// two or more threads; Kafka partitions settle each write at once, so offsets commit promptly).
    pub(crate) overlap_archive: bool,
    pub(crate) summary: InputSummary,
}

impl Partition {
    /// Opens a partition at its chain head, removing what an interrupted write left, with its rule state
    /// loaded and caught up with the archive. File offsets count from 1, Kafka offsets from 0.
    pub(crate) async fn open(
        archive: &Archive,
        (rule_state, engine): (&RuleStateStore, &mut RuleEngine),
        opening: Opening,
    ) -> Result<Self> {
        let Opening { id, input, normalizer, first_offset, overlap_archive, finite, .. } = opening;
        let head = archive.resume(&id).await?.head;
        let (mut rules, _) = rule_state.open(archive, engine, &id, head.as_ref()).await?;
        if finite {
            rules.state.finite_input();
        }
        let resume_after = head.as_ref().map_or(first_offset - 1, |h| h.last_offset);
        let next_first = match &head {
            Some(h) => Some(h.last_offset + 1),
            None if first_offset > 0 => Some(first_offset), // files: a chain covers every line from 1
            None => None,                                   // Kafka: from the first record read
        };
        Ok(Partition {
            summary: InputSummary {
                input: input.clone(),
                format: normalizer.format().to_string(),
                ingest_source: id.source().to_string(),
                partition: id.partition,
                ..InputSummary::default()
            },
            input,
            normalizer,
            id,
            rules,
            head,
            resume_after,
            next_first,
            records: RawRecords::default(),
            too_large: Vec::new(),
            blobs: Vec::new(),
            prefix: None,
            last_offset: resume_after,
            deadline: None,
            opened_at: None,
            reported: None,
            end_of_input: false,
            last_records_at: tokio::time::Instant::now(),
            idle_alerts: Vec::new(),
            in_flight: None,
            overlap_archive,
        })
    }

    pub(crate) fn batch_is_empty(&self) -> bool {
        self.records.is_empty() && self.too_large.is_empty()
    }

    pub(crate) fn buffered_bytes(&self) -> usize {
        let in_memory = |b: &DeadLetterBlob| match b.data {
            vigil_evidence::BlobData::Memory(_) => b.size as usize,
            vigil_evidence::BlobData::File(_) => 0,
        };
        self.records.byte_len()
            + self.too_large.iter().map(|d| d.raw.len()).sum::<usize>()
            + self.blobs.iter().map(in_memory).sum::<usize>()
    }

    /// Bytes of the open batch's records as read, oversized ones whole.
    pub(crate) fn read_bytes(&self) -> u64 {
        self.records.byte_len() as u64 + self.blobs.iter().map(|b| b.size).sum::<u64>()
    }
}

/// A micro-batch taken out of its partition, on its way down the stages.
pub(crate) struct ClosedBatch {
    /// Its records (taken by [`normalize`](super::normalize)).
    pub(crate) records: RawRecords,
    /// Its over-size records, already dead letters (their rows keep a prefix) ...
    pub(crate) too_large: Vec<DeadLetter>,
    /// ... and their whole bytes, one blob each.
    pub(crate) blobs: Vec<DeadLetterBlob>,
    /// File inputs: the content the range commits to, through its last record.
    pub(crate) source_prefix: Option<SourcePrefix>,
    /// The offsets the range covers (blank lines and holes included).
    pub(crate) first: i64,
    pub(crate) last: i64,
    /// When its first record was read: where its events' latency starts.
    pub(crate) opened_at: Instant,
    /// Records in it, and their bytes as read (oversized ones whole).
    pub(crate) read: usize,
    pub(crate) bytes_read: u64,
    /// The ingest time stamped on its events and dead letters.
    pub(crate) ingest_time_us: i64,
    /// The partition's normalizer.
    pub(crate) normalizer: Arc<dyn Normalizer>,
}

impl ClosedBatch {
    /// Takes the open batch out of `part` (which starts the next one empty).
    fn take(part: &mut Partition) -> ClosedBatch {
        let opened_at = part.opened_at.take().unwrap_or_else(Instant::now);
        let bytes_read = part.read_bytes();
        let records = std::mem::take(&mut part.records);
        let too_large = std::mem::take(&mut part.too_large);
        let last = part.last_offset;
        ClosedBatch {
            read: records.len() + too_large.len(),
            records,
            too_large,
            blobs: std::mem::take(&mut part.blobs),
            source_prefix: part.prefix.map(|m| m.to_prefix()),
            first: part.next_first.unwrap_or(last),
            last,
            opened_at,
            bytes_read,
            ingest_time_us: vigil_evidence::now_us(),
            normalizer: part.normalizer.clone(),
        }
    }
}

impl Pipeline {
    /// Adds one record to the open batch of `part` (closing the batch when full).
    pub(crate) async fn accept(&mut self, part: &mut Partition, offset: i64, bytes: &[u8]) -> Result<()> {
        if offset <= part.resume_after {
            part.summary.already_archived += 1;
            return Ok(());
        }
        let max = self.config.pipeline.max_record_bytes;
        if bytes.len() > max {
            // A Kafka message is in memory already (bounded by the broker's maximum message size): kept whole.
            let reason = format!("record of {} bytes is larger than max_record_bytes ({max}); kept whole", bytes.len());
            let prefix = bytes[..bytes.len().min(DEAD_LETTER_PREFIX)].to_vec();
            let blob = DeadLetterBlob::in_memory(offset, bytes.to_vec());
            return self.accept_too_large(part, offset, ReasonCode::TooLarge, reason, prefix, blob).await;
        }
        // A full batch closes when the next record comes, so the last batch of an input is never empty
        // and its end (stateful rules releasing what they hold) always has a range to be archived in.
        // ... and so does one whose bytes would pass max_buffered_bytes: memory stays bounded whatever the
        // records' sizes (Kafka inputs also bound the sum over partitions, in `bound_memory`).
        let settings = &self.config.pipeline;
        if part.records.len() + part.too_large.len() >= settings.batch_rows
            || (!part.batch_is_empty() && part.buffered_bytes() + bytes.len() > settings.max_buffered_bytes)
        {
            self.close_batch(part).await?;
        }
        self.start_batch(part, offset);
        part.records.push(offset, bytes);
        part.last_offset = offset;
        Ok(())
    }

    pub(crate) fn start_batch(&self, part: &mut Partition, offset: i64) {
        if part.batch_is_empty() {
            let batch_ms = Duration::from_millis(self.config.pipeline.batch_ms);
            part.deadline = Some(tokio::time::Instant::now() + batch_ms);
            part.opened_at = Some(Instant::now());
            part.next_first.get_or_insert(offset);
            self.metrics.health().batch_opened(&part.id, offset, batch_ms);
        }
    }

    /// Starts reporting `part` (just opened at its chain head) to the metrics and the health checks.
    pub(crate) fn track(&self, part: &Partition) {
        self.metrics.partition_opened(&part.id);
        let health = self.metrics.health();
        health.partition_opened(&part.id, &part.input, part.resume_after);
    }

    /// Adds an oversized record to the open batch: a dead-letter row with its first bytes and a blob that
    /// the archive stores whole. Counted like any record towards the batch's limits.
    pub(crate) async fn accept_too_large(
        &mut self,
        part: &mut Partition,
        offset: i64,
        code: ReasonCode,
        reason: String,
        prefix: Vec<u8>,
        blob: DeadLetterBlob,
    ) -> Result<()> {
        if offset <= part.resume_after {
            part.summary.already_archived += 1;
            return Ok(());
        }
        let settings = &self.config.pipeline;
        if part.records.len() + part.too_large.len() >= settings.batch_rows
            || (!part.batch_is_empty() && part.buffered_bytes() + prefix.len() > settings.max_buffered_bytes)
        {
            self.close_batch(part).await?;
        }
        self.start_batch(part, offset);
        let path = vigil_evidence::layout::dead_letter_blob_relative(part.id.source(), part.id.partition, offset);
        let reason = format!(
            "{reason}: {path} ({} bytes, SHA-256 {}); raw holds its first {} bytes",
            blob.size,
            blob.sha256,
            prefix.len()
        );
        part.too_large.push(DeadLetter { offset, code, reason, raw: prefix });
        part.blobs.push(blob);
        part.last_offset = offset;
        Ok(())
    }

    /// Closes the open micro-batch of `part` and hands it down the stages: normalize, detect, emit,
    /// archive (whose write [`commit`](super::commit) settles, and only then counts it).
    pub(crate) async fn close_batch(&mut self, part: &mut Partition) -> Result<()> {
        part.deadline = None;
        if part.batch_is_empty() {
            return Ok(()); // nothing but blank lines: the next range starts at the same place
        }
        let mut batch = ClosedBatch::take(part);
        self.metrics.health().batch_closed(&part.id, batch.last);
        let normalized = self.normalize(part, &mut batch).await?;
        // The previous batch's write runs beside this normalization and, unless the rule state is due to
        // be stored, beside these rules too. When it is due, the write must be durable first, so the
        // state is stored as of that batch, before these events change it.
        if !part.overlap_archive || self.rule_state.save_due(&part.rules) {
            self.settle(part, true).await?;
        }
        let alerts = self.detect(part, &normalized).await?;
        self.emit(part, &batch, &normalized, &alerts).await?;
        self.archive(part, batch, normalized, &alerts).await
    }
}

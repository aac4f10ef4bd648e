//! The runtime: micro-batches of each source partition through normalize, detect, emit and archive.
//!
//! ```text
//!  file reader thread ─┐
//!  Kafka poller thread ┴─chunks─> batcher (per partition; rows / ms / bytes bound) ─> normalize (rayon)
//!     ─> detect (DataFusion) ─> emit alerts + dead letters (NDJSON synced / Kafka acknowledged)
//!     ─> archive (Parquet + manifest entry) = checkpoint ─> only then: Kafka offset commit
//! ```
//!
//! A source partition is an input file (`file-<fingerprint>`, partition 0) or a Kafka topic partition;
//! each has its own manifest chain. When a partition is opened, the chain's head says which offsets
//! are durable: records at or before it are counted as `already_archived` and not processed again, so
//! a rerun or a restart after a crash leaves the archive holding each record exactly once. Alerts and
//! dead letters reach their outputs before the manifest entry is written: a crash between the two
//! replays the range, and deterministic alert ids let downstream drop the repeats.
//!
//! File inputs are read first, one after the other; then the Kafka inputs (one consumer-group member
//! for all of them) until a shutdown ([`ShutdownHandle`], wired to SIGTERM by the CLI) or, with
//! `until_caught_up`, until the end offsets seen at assignment are consumed. A shutdown finishes the
//! open batches, makes them durable, commits their offsets and returns normally.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tokio::sync::watch;
use vigil_evidence::{Archive, ChainHead, DeadLetterBlob, RangeCommit};
use vigil_kafka::{Checkpoints, KafkaEndpoint, KafkaSource, SourceControl, SourceEvent, SourceOptions};
use vigil_metrics::Metrics;
use vigil_normalize::{
    DeadLetter, NormalizedBatch, Normalizer, RawRecords, ReasonCode, dead_letters_to_batch, normalize_records,
};
use vigil_rules::{Alert, RuleEngine, alerts_to_batch, format_time_us, load_rules};

use crate::config::{InputConfig, PipelineConfig};
use crate::rule_state::{RuleStateStore, stream_name};
use crate::sink::{DeadLetterOrigin, Output};
use crate::source::{
    ChainLookup, DEAD_LETTER_PREFIX, InputFile, Oversized, PrefixMark, ReadEvent, ReaderSettings, expand_input,
    spawn_reader,
};
use crate::summary::{InputSummary, Latency, Quantiles, RunSummary, StageTimes};
use crate::{Error, Result};

/// Asks a running pipeline to finish its open batches, make them durable and return.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Requests the shutdown (idempotent).
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

/// A pipeline ready to run: rules compiled, outputs open.
pub struct Pipeline {
    config: PipelineConfig,
    engine: RuleEngine,
    rule_state: RuleStateStore,
    archive: Archive,
    alerts: Output,
    dead_letters: Output,
    shutdown: Arc<watch::Sender<bool>>,
    stages: StageTimes,
    metrics: Metrics,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("engine", &self.engine).field("archive", &self.archive.location()).finish()
    }
}

/// One source partition being read: its identity, its chain head, and the micro-batch being filled.
struct Partition {
    input: String,
    normalizer: Arc<dyn Normalizer>,
    ingest_source: Arc<str>,
    partition: i32,
    /// The newest manifest entry of this partition's chain.
    head: Option<ChainHead>,
    /// Records at or before this offset are already archived.
    resume_after: i64,
    /// First offset of the next committed range; `None` until the first record of a new chain.
    next_first: Option<i64>,
    /// Records of the open micro-batch.
    records: RawRecords,
    /// Over-size records of the open micro-batch, already dead letters (their rows keep a prefix)...
    too_large: Vec<DeadLetter>,
    /// ... and their whole bytes, one blob each.
    blobs: Vec<DeadLetterBlob>,
    /// File inputs: the content through the end of the last record added to the open batch.
    prefix: Option<PrefixMark>,
    /// Last offset read into the open micro-batch.
    last_offset: i64,
    /// When the open batch must close (`batch_ms` after its first record).
    deadline: Option<tokio::time::Instant>,
    /// When the open batch's first record was read: where its events' latency starts.
    opened_at: Option<Instant>,
    /// Kafka: the next offset last reported durable to the source.
    reported: Option<i64>,
    /// The open batch ends the run's input: stateful rules release what they hold when it closes.
    end_of_input: bool,
    /// Kafka: when the partition last received records (or was assigned); silence rules' idle clock.
    last_records_at: tokio::time::Instant,
    /// Silence alerts raised while the partition was idle: already sent to the outputs, archived with
    /// the partition's next range.
    idle_alerts: Vec<Alert>,
    /// The archive write of the last closed batch, still running (see [`Pipeline::settle`]).
    in_flight: Option<InFlight>,
    /// Let a batch's archive write run while the next batch is read and normalized (file inputs with
    /// two or more threads; Kafka partitions settle each write at once, so offsets commit promptly).
    overlap_archive: bool,
    summary: InputSummary,
}

/// A closed batch being encoded and written to the archive in the background.
struct InFlight {
    /// Last offset of its range.
    last: i64,
    events: u64,
    dead_letters: u64,
    /// Raw bytes of its events, and of its dead-letter rows that have no blob (blobs are counted from
    /// the manifest entry once it is written).
    event_bytes: u64,
    dead_letter_row_bytes: u64,
    /// When the batch's first record was read, and when its write started.
    opened_at: Instant,
    started: Instant,
    task: tokio::task::JoinHandle<Result<vigil_evidence::ManifestEntry>>,
}

impl Partition {
    /// Opens a partition at its chain head, removing what an interrupted write left. File offsets
    /// count from 1, Kafka offsets from 0.
    async fn open(
        archive: &Archive,
        input: String,
        normalizer: Arc<dyn Normalizer>,
        ingest_source: Arc<str>,
        partition: i32,
        first_offset: i64,
    ) -> Result<Self> {
        let head = archive.resume(&ingest_source, partition).await?.head;
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
                ingest_source: ingest_source.to_string(),
                partition,
                ..InputSummary::default()
            },
            input,
            normalizer,
            ingest_source,
            partition,
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
            overlap_archive: false,
        })
    }

    fn batch_is_empty(&self) -> bool {
        self.records.is_empty() && self.too_large.is_empty()
    }

    fn buffered_bytes(&self) -> usize {
        let in_memory = |b: &DeadLetterBlob| match b.data {
            vigil_evidence::BlobData::Memory(_) => b.size as usize,
            vigil_evidence::BlobData::File(_) => 0,
        };
        self.records.byte_len()
            + self.too_large.iter().map(|d| d.raw.len()).sum::<usize>()
            + self.blobs.iter().map(in_memory).sum::<usize>()
    }

    /// Bytes of the open batch's records as read, oversized ones whole.
    fn read_bytes(&self) -> u64 {
        self.records.byte_len() as u64 + self.blobs.iter().map(|b| b.size).sum::<u64>()
    }
}

/// The archive as the Kafka source's checkpoint store.
struct ArchiveCheckpoints {
    archive: Archive,
    runtime: tokio::runtime::Handle,
}

impl Checkpoints for ArchiveCheckpoints {
    fn resume_after(&self, topic: &str, partition: i32) -> std::result::Result<Option<i64>, String> {
        self.runtime
            .block_on(self.archive.resume(topic, partition))
            .map(|r| r.head.map(|h| h.last_offset))
            .map_err(|e| e.to_string())
    }
}

/// Which normalizer reads which topic: exact names first, then `^` patterns in config order.
struct TopicRoutes {
    exact: HashMap<String, Arc<dyn Normalizer>>,
    patterns: Vec<(regex::Regex, Arc<dyn Normalizer>)>,
}

impl TopicRoutes {
    fn route(&self, topic: &str) -> Option<Arc<dyn Normalizer>> {
        self.exact
            .get(topic)
            .cloned()
            .or_else(|| self.patterns.iter().find(|(re, _)| re.is_match(topic)).map(|(_, n)| n.clone()))
    }
}

impl Pipeline {
    /// Checks the config, compiles the rules, opens the archive and the outputs.
    pub async fn new(config: PipelineConfig, origin: &str) -> Result<Self> {
        if let Some(first) = config.problems(origin).into_iter().next() {
            return Err(first);
        }
        let pack = load_rules(&config.rules.dirs).map_err(Error::Rules)?;
        let mut engine =
            RuleEngine::with_options(&pack, config.pipeline.effective_threads(), config.rules.engine_options())
                .await
                .map_err(Error::Rules)?;
        let (shutdown, stop) = watch::channel(false);
        // A shutdown cuts a rule that holds the batch up (after a short grace) instead of waiting for it.
        engine.set_stop_signal(stop);
        let mut archive = Archive::open(&config.evidence.url)?;
        match config.evidence.signer()? {
            Some(signer) => archive = archive.with_signer(signer),
            // A signed archive stays signed: entries without a digest would fail `verify --public-key`.
            None if archive.is_signed().await? => {
                return Err(
                    vigil_evidence::Error::SigningKeyMissing { location: archive.location().to_string() }.into()
                );
            }
            None => tracing::warn!(
                evidence = %archive.location(),
                "evidence is not signed: no signing key ([evidence] signing_key_file, VIGIL_SIGNING_KEY_FILE or \
                 VIGIL_SIGNING_KEY; create one with `vigil keys generate`), so `vigil verify --public-key` cannot \
                 prove who wrote it"
            ),
        }
        let interval = Duration::from_secs(config.rules.state_checkpoint_secs);
        let rule_state = RuleStateStore::new(&engine, interval, config.pipeline.batch_rows);
        if let Some(bucket) = archive.bucket() {
            let (mode, days) = (&config.evidence.object_lock_mode, config.evidence.retention_days);
            let status = bucket.ensure_default_retention(mode, days).await?;
            if !status.enabled {
                tracing::warn!(
                    bucket = %bucket.settings().bucket,
                    "the evidence bucket has no Object Lock: evidence can be deleted or overwritten before its \
                     retention ends; create the bucket with Object Lock enabled"
                );
            }
        }
        let alerts = Output::open(&config.alerts).await?;
        let dead_letters = Output::open(&config.dead_letters).await?;
        Ok(Pipeline {
            config,
            engine,
            rule_state,
            archive,
            alerts,
            dead_letters,
            shutdown: Arc::new(shutdown),
            stages: StageTimes::default(),
            metrics: Metrics::new(),
        })
    }

    /// The pipeline's metrics (shared: serve them, or watch progress, while it runs).
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The compiled rule engine.
    pub fn engine(&self) -> &RuleEngine {
        &self.engine
    }

    /// A handle that asks the running pipeline to drain and return.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Runs every file input to its end, then the Kafka inputs until shutdown or caught up; returns what
    /// happened. A signing archive signs a digest every `digest_interval` meanwhile, and a closing one at
    /// the end (also when the run fails: what was made durable is signed).
    pub async fn run(mut self) -> Result<RunSummary> {
        let (stop_signing, signing) = self.sign_periodically();
        let result = self.run_inputs().await;
        let _ = stop_signing.send(());
        if let Some(task) = signing {
            let _ = task.await;
        }
        let closing = self.archive.sign_digest(true).await;
        let mut summary = result?;
        summary.digest = closing?.map(|d| crate::summary::SignedDigest { seq: d.seq, key_id: d.key_id });
        Ok(summary)
    }

    /// Signs a digest every `digest_interval` until told to stop (never cut mid-write: a digest's heads
    /// are taken when it is written).
    fn sign_periodically(&self) -> (tokio::sync::oneshot::Sender<()>, Option<tokio::task::JoinHandle<()>>) {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let Some(interval) = self.archive.signer().map(|s| s.interval()) else { return (stop, None) };
        let archive = self.archive.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        if let Err(e) = archive.sign_digest(false).await {
                            tracing::warn!(error = %e, "signing a digest failed; its heads are signed with the next one");
                        }
                    }
                }
            }
        });
        (stop, Some(task))
    }

    async fn run_inputs(&mut self) -> Result<RunSummary> {
        let started = Instant::now();
        let mut summary = RunSummary {
            evidence: self.archive.location().to_string(),
            rules: self.engine.rules().map(|r| r.id.clone()).collect(),
            ..RunSummary::default()
        };
        let (kafka_inputs, file_inputs): (Vec<InputConfig>, Vec<InputConfig>) =
            self.config.inputs.clone().into_iter().partition(InputConfig::is_kafka);
        let mut files = Vec::new();
        for input in file_inputs {
            let format = input.format()?;
            let build = |options: &vigil_normalize::FormatOptions| {
                format.build(options).map_err(|e| Error::Config { origin: input.path.clone(), reason: e.to_string() })
            };
            let normalizer = build(&input.options())?;
            for file in expand_input(&input.path)? {
                // Syslog times carry no year: without `year`, it comes from the file's date.
                let normalizer = match (format, input.year, file.modified_date()) {
                    (vigil_normalize::Format::LinuxAuth, None, Some(date)) => {
                        build(&vigil_normalize::FormatOptions { file_date: Some(date), ..input.options() })?
                    }
                    _ => normalizer.clone(),
                };
                files.push((file, normalizer));
            }
        }
        for (file, normalizer) in files {
            if self.shutting_down() {
                summary.interrupted = true;
                break;
            }
            let result = self.run_file(&file, normalizer, &mut summary.alerts_by_rule).await?;
            summary.inputs.push(result);
        }
        if !kafka_inputs.is_empty() && !self.shutting_down() {
            self.run_kafka(&kafka_inputs, &mut summary).await?;
        }
        summary.rule_state = self.rule_state.counters(&self.engine);
        summary.quarantined = self
            .engine
            .quarantined()
            .into_iter()
            .map(|f| crate::summary::QuarantinedRule { rule: f.rule_id, reason: f.reason })
            .collect();
        summary.interrupted |= self.shutting_down();
        summary.elapsed = started.elapsed();
        summary.stages = self.stages;
        summary.latency = Latency {
            event_to_alert: self.metrics.event_to_alert_quantiles().map(Quantiles::from_array),
            event_to_archive: self.metrics.event_to_archive_quantiles().map(Quantiles::from_array),
        };
        Ok(summary)
    }

    async fn run_file(
        &mut self,
        file: &InputFile,
        normalizer: Arc<dyn Normalizer>,
        alerts_by_rule: &mut BTreeMap<String, u64>,
    ) -> Result<InputSummary> {
        let settings = self.config.pipeline.clone();
        let reader_settings = ReaderSettings {
            max_record_bytes: settings.max_record_bytes,
            max_document_bytes: settings.max_document_bytes,
        };
        // The reader asks which chains exist before it says which one the file continues (see `source`).
        let (archive, runtime) = (self.archive.clone(), tokio::runtime::Handle::current());
        let lookup: ChainLookup =
            Arc::new(move |name: &str| runtime.block_on(archive.source_head(name, 0)).map_err(|e| e.to_string()));
        let mut rx = spawn_reader(file.clone(), normalizer.framing(), reader_settings, lookup);
        let (ingest_source, reader_resume_after) = match rx.recv().await {
            Some(ReadEvent::Start { ingest_source, resume_after }) => (ingest_source, resume_after),
            Some(ReadEvent::Failed(e)) => return Err(e),
            _ => {
                return Err(Error::Internal(format!("reader of {} ended before starting", file.display)));
            }
        };
        let mut part =
            Partition::open(&self.archive, file.display.clone(), normalizer, Arc::from(ingest_source), 0, 1).await?;
        if part.resume_after != reader_resume_after.max(0) {
            return Err(Error::Input {
                input: file.display.clone(),
                reason: format!(
                    "the chain {} moved to offset {} while the file was checked against offset {}: another process \
                     is archiving the same file; run one instance per file input",
                    part.ingest_source, part.resume_after, reader_resume_after
                ),
            });
        }
        // With one thread, encoding beside normalizing would take a second core.
        part.overlap_archive = settings.effective_threads() >= 2;
        self.rule_state.open(&self.archive, &mut self.engine, &part.ingest_source, 0, part.head.as_ref()).await?;
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let deadline = part.deadline;
            let event = tokio::select! {
                // A shutdown first, then records: a batch closes on its deadline only while the reader
                // has nothing ready.
                biased;
                _ = shutdown.wait_for(|stop| *stop) => {
                    // Finish what was read, make it durable, stop; the rest is read on the next run.
                    self.close_batch(&mut part, alerts_by_rule).await?;
                    part.summary.interrupted = true;
                    break;
                }
                event = rx.recv() => event,
                _ = sleep_until(deadline) => {
                    // batch_ms passed since the batch's first record: close it.
                    self.close_batch(&mut part, alerts_by_rule).await?;
                    continue;
                }
            };
            match event {
                Some(ReadEvent::Chunk(chunk)) => {
                    for ((offset, bytes), mark) in chunk.records.iter().zip(chunk.marks) {
                        self.accept(&mut part, offset, bytes, alerts_by_rule).await?;
                        // After `accept`, which may have closed the batch before this record.
                        part.prefix = Some(mark);
                    }
                }
                Some(ReadEvent::TooLarge(Oversized { offset, code, reason, prefix, blob, mark })) => {
                    self.accept_too_large(&mut part, offset, code, reason, prefix, blob, alerts_by_rule).await?;
                    part.prefix = Some(mark);
                }
                Some(ReadEvent::End { last_offset, already_archived }) => {
                    part.summary.already_archived += already_archived;
                    if last_offset > part.resume_after {
                        part.last_offset = part.last_offset.max(last_offset);
                    }
                    // The file's end ends its stream: stateful rules release what they hold.
                    part.end_of_input = true;
                    self.close_batch(&mut part, alerts_by_rule).await?;
                    break;
                }
                Some(ReadEvent::Failed(e)) => return Err(e),
                Some(ReadEvent::Start { .. }) | None => {
                    return Err(Error::Internal(format!("reader of {} stopped without an end", file.display)));
                }
            }
        }
        self.settle(&mut part, true).await?;
        self.rule_state.close(&self.archive, &mut self.engine, &part.ingest_source, 0).await?;
        Ok(part.summary)
    }

    /// Adds one record to the open batch of `part` (closing the batch when full).
    async fn accept(
        &mut self,
        part: &mut Partition,
        offset: i64,
        bytes: &[u8],
        alerts_by_rule: &mut BTreeMap<String, u64>,
    ) -> Result<()> {
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
            return self
                .accept_too_large(part, offset, ReasonCode::TooLarge, reason, prefix, blob, alerts_by_rule)
                .await;
        }
        // A full batch closes when the next record comes, so the last batch of an input is never empty
        // and its end (stateful rules releasing what they hold) always has a range to be archived in.
        // ... and so does one whose bytes would pass max_buffered_bytes: memory stays bounded whatever the
        // records' sizes (Kafka inputs also bound the sum over partitions, in `bound_memory`).
        let settings = &self.config.pipeline;
        if part.records.len() + part.too_large.len() >= settings.batch_rows
            || (!part.batch_is_empty() && part.buffered_bytes() + bytes.len() > settings.max_buffered_bytes)
        {
            self.close_batch(part, alerts_by_rule).await?;
        }
        self.start_batch(part, offset);
        part.records.push(offset, bytes);
        part.last_offset = offset;
        Ok(())
    }

    fn start_batch(&self, part: &mut Partition, offset: i64) {
        if part.batch_is_empty() {
            let batch_ms = Duration::from_millis(self.config.pipeline.batch_ms);
            part.deadline = Some(tokio::time::Instant::now() + batch_ms);
            part.opened_at = Some(Instant::now());
            part.next_first.get_or_insert(offset);
        }
    }

    /// Adds an oversized record to the open batch: a dead-letter row with its first bytes and a blob that
    /// the archive stores whole. Counted like any record towards the batch's limits.
    #[allow(clippy::too_many_arguments)]
    async fn accept_too_large(
        &mut self,
        part: &mut Partition,
        offset: i64,
        code: ReasonCode,
        reason: String,
        prefix: Vec<u8>,
        blob: DeadLetterBlob,
        alerts_by_rule: &mut BTreeMap<String, u64>,
    ) -> Result<()> {
        if offset <= part.resume_after {
            part.summary.already_archived += 1;
            return Ok(());
        }
        let settings = &self.config.pipeline;
        if part.records.len() + part.too_large.len() >= settings.batch_rows
            || (!part.batch_is_empty() && part.buffered_bytes() + prefix.len() > settings.max_buffered_bytes)
        {
            self.close_batch(part, alerts_by_rule).await?;
        }
        self.start_batch(part, offset);
        let path = vigil_evidence::layout::dead_letter_blob_relative(&part.ingest_source, part.partition, offset);
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

    /// Normalizes, detects, emits and archives the open micro-batch of `part`, then advances its chain.
    async fn close_batch(&mut self, part: &mut Partition, alerts_by_rule: &mut BTreeMap<String, u64>) -> Result<()> {
        part.deadline = None;
        if part.batch_is_empty() {
            return Ok(()); // nothing but blank lines: the next range starts at the same place
        }
        let (threads, zstd) = (self.config.pipeline.effective_threads(), self.config.pipeline.zstd_level);
        let opened_at = part.opened_at.take().unwrap_or_else(Instant::now);
        let bytes_read = part.read_bytes();
        let records = std::mem::take(&mut part.records);
        let too_large = std::mem::take(&mut part.too_large);
        let blobs = std::mem::take(&mut part.blobs);
        let source_prefix = part.prefix.map(|m| m.to_prefix());
        let last = part.last_offset;
        let first = part.next_first.unwrap_or(last);
        let normalizer = part.normalizer.clone();
        let ingest_time_us = vigil_evidence::now_us();
        let read = records.len() + too_large.len();
        self.metrics.read(&part.ingest_source, part.partition, read as u64, bytes_read);

        // normalize: on rayon, off the async workers
        let stage = Instant::now();
        let chunk_rows = records.len().div_ceil(threads * 2).clamp(256, 8192);
        let n = normalizer.clone();
        let src = part.ingest_source.clone();
        let partition = part.partition;
        let mut normalized: NormalizedBatch = tokio::task::spawn_blocking(move || {
            normalize_records(n.as_ref(), records, &src, partition, ingest_time_us, chunk_rows)
        })
        .await
        .map_err(|e| Error::Internal(format!("normalize task failed: {e}")))?;
        normalized.dead_letters.extend(too_large);
        normalized.dead_letters.sort_by_key(|d| d.offset);
        self.stages.normalize += stage.elapsed();
        self.metrics.stage("normalize", stage.elapsed());
        // The previous batch's write runs beside this normalization and, unless the rule state is due to
        // be stored, beside these rules too. When it is due, the write must be durable first, so the
        // state is stored as of that batch, before these events change it.
        if !part.overlap_archive || self.rule_state.save_due(&part.ingest_source, partition) {
            self.settle(part, true).await?;
        }

        // detect
        let stage = Instant::now();
        let stream = stream_name(&part.ingest_source, partition);
        let mut alerts: Vec<Alert> = self.engine.evaluate_in(&stream, &normalized.batches).await?;
        if part.end_of_input {
            alerts.extend(self.engine.finish_in(&stream));
        }
        // The engine's own findings: a rule quarantined on this batch, events dated too far ahead.
        for alert in &alerts {
            match alert.rule_id.as_str() {
                vigil_rules::budget::RULE_FAILED => {
                    let rule = alert.fields.get("rule").and_then(|v| v.as_str()).unwrap_or_default();
                    self.metrics.rule_quarantined(rule);
                }
                vigil_rules::budget::EVENT_TIME_IN_FUTURE => {
                    let n = alert.fields.get("count").and_then(|v| v.as_u64()).unwrap_or_default();
                    part.summary.future_dated += n;
                    self.metrics.future_dated(&part.ingest_source, partition, n);
                }
                _ => {}
            }
        }

        self.stages.rules += stage.elapsed();
        self.metrics.stage("rules", stage.elapsed());

        // emit: alerts and dead letters reach their outputs before the checkpoint
        let stage = Instant::now();
        let ingest_time = format_time_us(ingest_time_us);
        self.alerts.alerts(&alerts).await?;
        let origin = DeadLetterOrigin {
            normalizer: normalizer.as_ref(),
            ingest_source: &part.ingest_source,
            partition,
            input: &part.input,
            ingest_time: &ingest_time,
        };
        self.dead_letters.dead_letters(&normalized.dead_letters, &origin).await?;
        self.stages.emit += stage.elapsed();
        self.metrics.stage("emit", stage.elapsed());
        for alert in &alerts {
            self.metrics.alert(&alert.rule_id, opened_at.elapsed());
        }
        let stage = Instant::now();

        // archive: data files, then the manifest entry
        let dead_batch = dead_letters_to_batch(
            &normalized.dead_letters,
            normalizer.as_ref(),
            &part.ingest_source,
            partition,
            ingest_time_us,
        );
        let alert_batch = if part.idle_alerts.is_empty() {
            alerts_to_batch(&alerts, &part.ingest_source, partition)
        } else {
            let mut archived = std::mem::take(&mut part.idle_alerts);
            archived.extend(alerts.iter().cloned());
            alerts_to_batch(&archived, &part.ingest_source, partition)
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
        let src = part.ingest_source.clone();
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
            vigil_evidence::failpoint::hit("before_archive");
            Ok(archive.commit(prepared, head.as_ref()).await?)
        });
        let dead_letters = normalized.dead_letters.len() as u64;
        part.in_flight = Some(InFlight {
            last,
            events: rows as u64,
            dead_letters,
            event_bytes,
            dead_letter_row_bytes,
            opened_at,
            started: stage,
            task,
        });
        part.next_first = Some(last + 1);
        self.stages.archive += stage.elapsed();
        if !part.overlap_archive {
            self.settle(part, true).await?;
        }
        let summary = &mut part.summary;

        summary.records_read += read as u64;
        summary.bytes_read += bytes_read;
        summary.events += rows as u64;
        summary.dead_letters += normalized.dead_letters.len() as u64;
        summary.skipped_blank += skipped;
        summary.batches += 1;
        summary.alerts += alerts.len() as u64;
        for alert in &alerts {
            *alerts_by_rule.entry(alert.rule_id.clone()).or_default() += 1;
        }
        tracing::debug!(
            ingest_source = %part.ingest_source,
            partition,
            first,
            last,
            rows,
            dead = normalized.dead_letters.len(),
            alerts = alerts.len(),
            "batch archived"
        );
        Ok(())
    }

    /// Waits for the archive write of `part`'s last closed batch: then its range is durable and the chain
    /// head moves to it. Only after this do the range's offsets count as archived (and, for Kafka, get
    /// committed). With `may_store_state`, the rules have seen nothing after that batch, so the rule
    /// state may be stored as of it (when its interval has passed).
    async fn settle(&mut self, part: &mut Partition, may_store_state: bool) -> Result<()> {
        let Some(in_flight) = part.in_flight.take() else { return Ok(()) };
        let stage = Instant::now();
        let entry = in_flight.task.await.map_err(|e| Error::Internal(format!("archive task failed: {e}")))??;
        vigil_evidence::failpoint::hit("before_commit");
        self.rule_state.covered(&part.ingest_source, part.partition, in_flight.last);
        if may_store_state {
            self.rule_state.save(&self.archive, &self.engine, &part.ingest_source, part.partition, false).await?;
        }
        part.head = Some(ChainHead::from(&entry));
        part.resume_after = in_flight.last;
        part.summary.event_bytes += in_flight.event_bytes;
        let blob_bytes: u64 = entry.files.iter().filter(|f| f.kind == vigil_evidence::BLOB_KIND).map(|f| f.size).sum();
        part.summary.dead_letter_bytes += in_flight.dead_letter_row_bytes + blob_bytes;
        self.stages.archive += stage.elapsed();
        self.metrics.stage("archive", in_flight.started.elapsed());
        let since_read = in_flight.opened_at.elapsed();
        self.metrics.archived(
            &part.ingest_source,
            part.partition,
            in_flight.events,
            in_flight.dead_letters,
            since_read,
        );
        Ok(())
    }

    /// Records offsets `first..=last` of `part` as lost (a completeness break in its chain).
    async fn commit_lost(
        &mut self,
        part: &mut Partition,
        first: i64,
        last: i64,
        reason: &str,
        alerts_by_rule: &mut BTreeMap<String, u64>,
    ) -> Result<()> {
        self.close_batch(part, alerts_by_rule).await?;
        self.settle(part, true).await?;
        let first = part.next_first.map_or(first, |n| n.max(first));
        if first > last {
            return Ok(());
        }
        let format = part.normalizer.format().to_string();
        let commit = RangeCommit {
            ingest_source: &part.ingest_source,
            partition: part.partition,
            first_offset: first,
            last_offset: last,
            format: &format,
            input: &part.input,
            rule_pack_hash: self.engine.pack_hash(),
            lost_reason: Some(reason),
            ..RangeCommit::default()
        };
        let prepared = vigil_evidence::prepare(&commit, self.config.pipeline.zstd_level)?;
        let entry = self.archive.commit(prepared, part.head.as_ref()).await?;
        self.rule_state.covered(&part.ingest_source, part.partition, last);
        part.head = Some(ChainHead::from(&entry));
        part.next_first = Some(last + 1);
        part.resume_after = last;
        part.last_offset = last;
        part.summary.lost += (last - first + 1) as u64;
        Ok(())
    }

    /// Reads every Kafka input through one consumer-group member until shutdown or caught up.
    async fn run_kafka(&mut self, inputs: &[InputConfig], summary: &mut RunSummary) -> Result<()> {
        // One endpoint for all inputs (problems() checked that brokers, group and properties agree).
        let mut endpoint: Option<KafkaEndpoint> = None;
        let mut routes = TopicRoutes { exact: HashMap::new(), patterns: Vec::new() };
        for input in inputs {
            let Some(e) = input.kafka_endpoint() else { continue };
            let e = e?;
            let normalizer = input
                .format()?
                .build(&input.options())
                .map_err(|err| Error::Config { origin: e.describe(), reason: err.to_string() })?;
            for topic in &e.topics {
                if topic.starts_with('^') {
                    let re = regex::Regex::new(topic)
                        .map_err(|err| Error::Config { origin: e.describe(), reason: err.to_string() })?;
                    routes.patterns.push((re, normalizer.clone()));
                } else {
                    routes.exact.insert(topic.clone(), normalizer.clone());
                }
            }
            match &mut endpoint {
                None => endpoint = Some(e),
                Some(first) => {
                    first.topics.extend(e.topics.iter().cloned());
                    first.secrets.extend(e.secrets.clone());
                }
            }
        }
        let Some(endpoint) = endpoint else { return Ok(()) };
        let options = SourceOptions {
            until_caught_up: self.config.pipeline.until_caught_up,
            metrics: Some(self.metrics.clone()),
            ..SourceOptions::default()
        };
        let checkpoints: Arc<dyn Checkpoints> =
            Arc::new(ArchiveCheckpoints { archive: self.archive.clone(), runtime: tokio::runtime::Handle::current() });
        let start_endpoint = endpoint.clone();
        let mut source = tokio::task::spawn_blocking(move || KafkaSource::start(&start_endpoint, checkpoints, options))
            .await
            .map_err(|e| Error::Internal(format!("Kafka connect task failed: {e}")))??;
        let control = source.control.clone();
        let result = self.consume(&mut source, &control, &endpoint, &routes, summary).await;
        control.finish();
        source.join().await;
        result
    }

    async fn consume(
        &mut self,
        source: &mut KafkaSource,
        control: &SourceControl,
        endpoint: &KafkaEndpoint,
        routes: &TopicRoutes,
        summary: &mut RunSummary,
    ) -> Result<()> {
        let mut parts: HashMap<(Arc<str>, i32), Partition> = HashMap::new();
        let mut shutdown = self.shutdown.subscribe();
        let mut stopping = false;
        let brokers = endpoint.brokers.join(",");
        let idle_check = Duration::from_secs(self.config.rules.idle_check_secs.max(1));
        let watch_idle = self.engine.has_silence();
        let mut idle_tick = tokio::time::interval(idle_check);
        idle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_deadline = parts.values().filter_map(|p| p.deadline).min();
            let event = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop), if !stopping => {
                    tracing::info!("shutdown requested: finishing open batches");
                    control.stop();
                    stopping = true;
                    continue;
                }
                _ = sleep_until(next_deadline) => {
                    let now = tokio::time::Instant::now();
                    let due: Vec<(Arc<str>, i32)> = parts
                        .iter()
                        .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in due {
                        if let Some(part) = parts.get_mut(&key) {
                            self.close_batch(part, &mut summary.alerts_by_rule).await?;
                            report_durable(control, part);
                        }
                    }
                    continue;
                }
                _ = idle_tick.tick(), if watch_idle && !stopping => {
                    self.check_idle(&mut parts, idle_check, &mut summary.alerts_by_rule).await?;
                    continue;
                }
                event = source.events.recv() => event,
            };
            match event {
                Some(SourceEvent::Assigned { partitions }) => {
                    // Opened now, not at their first record: a partition that stays quiet still has its
                    // silence rules watched.
                    for (topic, partition) in partitions {
                        let part = self.open_kafka_partition(&mut parts, routes, &brokers, topic, partition).await?;
                        part.last_records_at = tokio::time::Instant::now();
                    }
                }
                Some(SourceEvent::Records { topic, partition, records }) => {
                    let part = self.open_kafka_partition(&mut parts, routes, &brokers, topic, partition).await?;
                    part.last_records_at = tokio::time::Instant::now();
                    for (offset, bytes) in records.iter() {
                        self.accept(part, offset, bytes, &mut summary.alerts_by_rule).await?;
                    }
                    report_durable(control, part);
                    self.bound_memory(&mut parts, control, &mut summary.alerts_by_rule).await?;
                }
                Some(SourceEvent::Lost { topic, partition, first, last, reason }) => {
                    let part = self.open_kafka_partition(&mut parts, routes, &brokers, topic, partition).await?;
                    self.commit_lost(part, first, last, &reason, &mut summary.alerts_by_rule).await?;
                    report_durable(control, part);
                }
                Some(SourceEvent::Revoked { partitions, lost, done }) => {
                    for key in partitions {
                        self.metrics.forget_kafka_partition(&key.0, key.1);
                        let Some(mut part) = parts.remove(&key) else { continue };
                        if lost {
                            tracing::warn!(
                                topic = %key.0,
                                partition = key.1,
                                dropped = part.records.len() + part.too_large.len(),
                                "assignment lost: the open batch is dropped unwritten; its new owner reads it again"
                            );
                            self.rule_state.forget(&mut self.engine, &key.0, key.1);
                        } else {
                            self.close_batch(&mut part, &mut summary.alerts_by_rule).await?;
                            report_durable(control, &mut part);
                            self.rule_state.close(&self.archive, &mut self.engine, &key.0, key.1).await?;
                        }
                        summary.inputs.push(part.summary);
                    }
                    let _ = done.send(());
                }
                Some(SourceEvent::Stopped { caught_up }) => {
                    for part in parts.values_mut() {
                        self.close_batch(part, &mut summary.alerts_by_rule).await?;
                        report_durable(control, part);
                    }
                    summary.caught_up = caught_up;
                    break;
                }
                Some(SourceEvent::Failed(e)) => return Err(e.into()),
                None => return Err(Error::Internal("the Kafka source stopped without saying why".into())),
            }
        }
        let mut rest: Vec<Partition> = parts.into_values().collect();
        rest.sort_by(|a, b| (&a.ingest_source, a.partition).cmp(&(&b.ingest_source, b.partition)));
        for part in &rest {
            self.rule_state.close(&self.archive, &mut self.engine, &part.ingest_source, part.partition).await?;
        }
        summary.inputs.extend(rest.into_iter().map(|p| p.summary));
        Ok(())
    }

    /// The partition, opened at its chain head when first seen, with its rule state loaded.
    async fn open_kafka_partition<'a>(
        &mut self,
        parts: &'a mut HashMap<(Arc<str>, i32), Partition>,
        routes: &TopicRoutes,
        brokers: &str,
        topic: Arc<str>,
        partition: i32,
    ) -> Result<&'a mut Partition> {
        let key = (topic.clone(), partition);
        if !parts.contains_key(&key) {
            let normalizer = routes
                .route(&topic)
                .ok_or_else(|| Error::Internal(format!("topic {topic} matches no input although subscribed")))?;
            let input = format!("kafka://{brokers}/{topic}/{partition}");
            let part = Partition::open(&self.archive, input, normalizer, topic, partition, 0).await?;
            parts.insert(key.clone(), part);
        }
        let part = parts.get_mut(&key).ok_or_else(|| Error::Internal("a partition just opened is missing".into()))?;
        let (source, head) = (part.ingest_source.clone(), part.head.clone());
        self.rule_state.open(&self.archive, &mut self.engine, &source, partition, head.as_ref()).await?;
        Ok(part)
    }

    /// Silence rules of partitions that received nothing for `idle_check` or longer: their quiet counts
    /// as event time ([`RuleEngine::idle_in`]). Alerts go to the outputs now and into the archive with the
    /// partition's next range; the rule state is stored at once, so a restart does not raise them again.
    async fn check_idle(
        &mut self,
        parts: &mut HashMap<(Arc<str>, i32), Partition>,
        idle_check: Duration,
        alerts_by_rule: &mut BTreeMap<String, u64>,
    ) -> Result<()> {
        let now = tokio::time::Instant::now();
        let mut keys: Vec<(Arc<str>, i32)> = parts.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let Some(part) = parts.get_mut(&key) else { continue };
            let idle = now.saturating_duration_since(part.last_records_at);
            if !part.batch_is_empty() || idle < idle_check {
                continue;
            }
            let stream = stream_name(&part.ingest_source, part.partition);
            let idle_us = i64::try_from(idle.as_micros()).unwrap_or(i64::MAX);
            let alerts = self.engine.idle_in(&stream, idle_us);
            if alerts.is_empty() {
                continue;
            }
            tracing::warn!(
                ingest_source = %part.ingest_source,
                partition = part.partition,
                idle_secs = idle.as_secs(),
                alerts = alerts.len(),
                "partition quiet: silence rules alerted"
            );
            self.alerts.alerts(&alerts).await?;
            part.summary.alerts += alerts.len() as u64;
            for alert in &alerts {
                *alerts_by_rule.entry(alert.rule_id.clone()).or_default() += 1;
            }
            part.idle_alerts.extend(alerts);
            self.rule_state.changed(&part.ingest_source, part.partition);
            self.rule_state.save(&self.archive, &self.engine, &part.ingest_source, part.partition, true).await?;
        }
        Ok(())
    }

    /// Closes the largest open batches while all open batches together hold more than
    /// `max_buffered_bytes`.
    async fn bound_memory(
        &mut self,
        parts: &mut HashMap<(Arc<str>, i32), Partition>,
        control: &SourceControl,
        alerts_by_rule: &mut BTreeMap<String, u64>,
    ) -> Result<()> {
        let max = self.config.pipeline.max_buffered_bytes;
        while parts.values().map(Partition::buffered_bytes).sum::<usize>() > max {
            let Some(largest) = parts.values_mut().max_by_key(|p| p.buffered_bytes()) else { break };
            self.close_batch(largest, alerts_by_rule).await?;
            report_durable(control, largest);
        }
        Ok(())
    }
}

/// Tells the source that `part` is durable up to its next range, once per new position (each report is
/// an offset commit).
fn report_durable(control: &SourceControl, part: &mut Partition) {
    if part.head.is_some()
        && let Some(next) = part.next_first
        && part.reported != Some(next)
    {
        control.durable(&part.ingest_source, part.partition, next);
        part.reported = Some(next);
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

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

//! The runtime: for each input file, micro-batches through normalize, detect, emit and archive.
//!
//! ```text
//!  reader thread ──chunks──> batcher (rows / ms bound) ──> normalize (rayon) ──> detect (DataFusion)
//!                                                            ──> emit alerts + dead letters (NDJSON, synced)
//!                                                            ──> archive (Parquet + manifest entry) = checkpoint
//! ```
//!
//! Each input file is one source partition with its own manifest chain. Before reading, the chain's
//! head says which offsets are already durable; those records are counted as `already_archived` and not
//! processed again, so running the same input twice leaves the archive unchanged. Alerts and dead
//! letters reach their outputs before the manifest entry is written: a crash between the two replays the
//! range, and the deterministic alert ids let downstream drop the repeats.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tokio::time::timeout_at;
use vigil_evidence::{Archive, ChainHead, RangeCommit};
use vigil_normalize::{
    DeadLetter, NormalizedBatch, Normalizer, RawRecords, ReasonCode, dead_letters_to_batch, normalize_records,
};
use vigil_rules::{Alert, RuleEngine, alerts_to_batch, format_time_us, load_rules};

use crate::config::PipelineConfig;
use crate::sink::{NdjsonSink, alert_line, dead_letter_line};
use crate::source::{InputFile, ReadEvent, ReaderSettings, expand_input, spawn_reader};
use crate::summary::{InputSummary, RunSummary};
use crate::{Error, Result};

/// A pipeline ready to run: rules compiled, outputs open.
pub struct Pipeline {
    config: PipelineConfig,
    engine: RuleEngine,
    archive: Archive,
    alerts: Option<NdjsonSink>,
    dead_letters: Option<NdjsonSink>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("engine", &self.engine).field("archive", &self.archive.location()).finish()
    }
}

/// One source partition being read: its identity, its chain head, and the micro-batch being filled.
struct Partition {
    file: InputFile,
    normalizer: Arc<dyn Normalizer>,
    ingest_source: String,
    /// The newest manifest entry of this partition's chain.
    head: Option<ChainHead>,
    /// First offset of the next committed range.
    next_first: i64,
    /// Records of the open micro-batch.
    records: RawRecords,
    /// Over-size records of the open micro-batch, already dead letters.
    too_large: Vec<DeadLetter>,
    /// Last offset read into the open micro-batch.
    last_offset: i64,
    summary: InputSummary,
}

impl Partition {
    fn batch_is_empty(&self) -> bool {
        self.records.is_empty() && self.too_large.is_empty()
    }
}

impl Pipeline {
    /// Checks the config, compiles the rules, opens the archive and the outputs.
    pub async fn new(config: PipelineConfig, origin: &str) -> Result<Self> {
        if let Some(first) = config.problems(origin).into_iter().next() {
            return Err(first);
        }
        let pack = load_rules(&config.rules.dirs).map_err(Error::Rules)?;
        let engine = RuleEngine::new(&pack, config.pipeline.effective_threads()).await.map_err(Error::Rules)?;
        let archive = Archive::open(&config.evidence.url)?;
        let alerts = config.alerts.path.as_deref().map(NdjsonSink::open).transpose()?;
        let dead_letters = config.dead_letters.path.as_deref().map(NdjsonSink::open).transpose()?;
        Ok(Pipeline { config, engine, archive, alerts, dead_letters })
    }

    /// The compiled rule engine.
    pub fn engine(&self) -> &RuleEngine {
        &self.engine
    }

    /// Runs every input to its end and returns what happened.
    pub async fn run(mut self) -> Result<RunSummary> {
        let started = Instant::now();
        let mut summary = RunSummary {
            evidence: self.archive.location().to_string(),
            rules: self.engine.rules().map(|r| r.id.clone()).collect(),
            ..RunSummary::default()
        };
        for input in self.config.inputs.clone() {
            let format = input.format()?;
            let normalizer = format
                .build(&input.options())
                .map_err(|e| Error::Config { origin: input.path.clone(), reason: e.to_string() })?;
            for file in expand_input(&input.path)? {
                let result = self.run_file(&file, normalizer.clone(), &mut summary.alerts_by_rule).await?;
                summary.inputs.push(result);
            }
        }
        summary.elapsed = started.elapsed();
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
        let mut rx = spawn_reader(file.clone(), normalizer.framing(), reader_settings);
        let ingest_source = match rx.recv().await {
            Some(ReadEvent::Start { ingest_source }) => ingest_source,
            Some(ReadEvent::Failed(e)) => return Err(e),
            _ => {
                return Err(Error::Internal(format!("reader of {} ended before starting", file.display)));
            }
        };
        let head = self.archive.chain_head(&ingest_source, 0).await?;
        let resume_after = head.as_ref().map_or(0, |h| h.last_offset);
        let mut part = Partition {
            summary: InputSummary {
                input: file.display.clone(),
                format: normalizer.format().to_string(),
                ingest_source: ingest_source.clone(),
                ..InputSummary::default()
            },
            file: file.clone(),
            normalizer,
            ingest_source,
            head,
            next_first: resume_after + 1,
            records: RawRecords::default(),
            too_large: Vec::new(),
            last_offset: resume_after,
        };
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let event = match deadline {
                Some(at) => match timeout_at(at, rx.recv()).await {
                    Ok(event) => event,
                    Err(_) => {
                        // batch_ms passed since the batch's first record: close it.
                        self.close_batch(&mut part, alerts_by_rule).await?;
                        deadline = None;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            match event {
                Some(ReadEvent::Chunk(chunk)) => {
                    for (offset, bytes) in chunk.iter() {
                        if offset <= resume_after {
                            part.summary.already_archived += 1;
                            continue;
                        }
                        if part.batch_is_empty() {
                            deadline = Some(tokio::time::Instant::now() + Duration::from_millis(settings.batch_ms));
                        }
                        part.records.push(offset, bytes);
                        part.last_offset = offset;
                        if part.records.len() + part.too_large.len() >= settings.batch_rows {
                            self.close_batch(&mut part, alerts_by_rule).await?;
                            deadline = None;
                        }
                    }
                }
                Some(ReadEvent::TooLarge(offset, bytes)) => {
                    if offset <= resume_after {
                        part.summary.already_archived += 1;
                        continue;
                    }
                    if part.batch_is_empty() {
                        deadline = Some(tokio::time::Instant::now() + Duration::from_millis(settings.batch_ms));
                    }
                    let reason = format!(
                        "record is larger than max_record_bytes ({} bytes); its first bytes are kept",
                        settings.max_record_bytes
                    );
                    part.too_large.push(DeadLetter { offset, code: ReasonCode::TooLarge, reason, raw: bytes });
                    part.last_offset = offset;
                }
                Some(ReadEvent::End { last_offset }) => {
                    if last_offset > resume_after {
                        part.last_offset = part.last_offset.max(last_offset);
                    }
                    self.close_batch(&mut part, alerts_by_rule).await?;
                    break;
                }
                Some(ReadEvent::Failed(e)) => return Err(e),
                Some(ReadEvent::Start { .. }) | None => {
                    return Err(Error::Internal(format!("reader of {} stopped without an end", file.display)));
                }
            }
        }
        Ok(part.summary)
    }

    /// Normalizes, detects, emits and archives the open micro-batch of `part`, then advances its chain.
    async fn close_batch(&mut self, part: &mut Partition, alerts_by_rule: &mut BTreeMap<String, u64>) -> Result<()> {
        if part.batch_is_empty() {
            return Ok(()); // nothing but blank lines: the next range starts at the same place
        }
        let settings = &self.config.pipeline;
        let records = std::mem::take(&mut part.records);
        let too_large = std::mem::take(&mut part.too_large);
        let (first, last) = (part.next_first, part.last_offset);
        let (normalizer, ingest_source, file) = (part.normalizer.clone(), part.ingest_source.as_str(), &part.file);
        let ingest_time_us = vigil_evidence::now_us();
        let read = records.len() + too_large.len();

        // normalize: on rayon, off the async workers
        let threads = settings.effective_threads();
        let chunk_rows = records.len().div_ceil(threads * 2).clamp(256, 8192);
        let n = normalizer.clone();
        let src = ingest_source.to_string();
        let mut normalized: NormalizedBatch = tokio::task::spawn_blocking(move || {
            normalize_records(n.as_ref(), &records, &src, 0, ingest_time_us, chunk_rows)
        })
        .await
        .map_err(|e| Error::Internal(format!("normalize task failed: {e}")))?;
        normalized.dead_letters.extend(too_large);
        normalized.dead_letters.sort_by_key(|d| d.offset);

        // detect
        let alerts: Vec<Alert> = self.engine.evaluate(&normalized.batches).await?;

        // emit: alerts and dead letters reach their outputs before the checkpoint
        let ingest_time = format_time_us(ingest_time_us);
        if let Some(sink) = &mut self.alerts {
            sink.write_lines(alerts.iter().map(alert_line))?;
        }
        if let Some(sink) = &mut self.dead_letters {
            sink.write_lines(
                normalized
                    .dead_letters
                    .iter()
                    .map(|d| dead_letter_line(d, normalizer.as_ref(), ingest_source, &file.display, &ingest_time)),
            )?;
        }

        // archive: data files, then the manifest entry
        let dead_batch =
            dead_letters_to_batch(&normalized.dead_letters, normalizer.as_ref(), ingest_source, 0, ingest_time_us);
        let alert_batch = alerts_to_batch(&alerts, ingest_source, 0);
        let events: Vec<RecordBatch> = normalized.batches;
        let rows = events.iter().map(RecordBatch::num_rows).sum::<usize>();
        let skipped = (last - first + 1) as u64 - read as u64;
        let format = normalizer.format().to_string();
        let input = file.display.clone();
        let pack_hash = self.engine.pack_hash().to_string();
        let src = ingest_source.to_string();
        let zstd = settings.zstd_level;
        let prepared = tokio::task::spawn_blocking(move || {
            let commit = RangeCommit {
                ingest_source: &src,
                partition: 0,
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
            };
            vigil_evidence::prepare(&commit, zstd)
        })
        .await
        .map_err(|e| Error::Internal(format!("encode task failed: {e}")))??;
        let entry = self.archive.commit(prepared, part.head.as_ref()).await?;
        part.head = Some(ChainHead::from(&entry));
        part.next_first = last + 1;
        let summary = &mut part.summary;

        summary.records_read += read as u64;
        summary.events += rows as u64;
        summary.dead_letters += normalized.dead_letters.len() as u64;
        summary.skipped_blank += skipped;
        summary.batches += 1;
        summary.alerts += alerts.len() as u64;
        for alert in &alerts {
            *alerts_by_rule.entry(alert.rule_id.clone()).or_default() += 1;
        }
        tracing::debug!(
            ingest_source,
            first,
            last,
            rows,
            dead = normalized.dead_letters.len(),
            alerts = alerts.len(),
            "batch archived"
        );
        Ok(())
    }
}

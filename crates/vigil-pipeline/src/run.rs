//! The runtime: micro-batches of each source partition through normalize, detect, emit and archive.
//! This file holds the [`Pipeline`] and its one consume loop, which reads every source through one
//! contract (`crate::input`: assigned, records, end, revoked, stopped); the batch path itself is
//! `crate::stages`, one stage a file.
//!
//! ```text
//!  file reader thread ─┐
//!  Kafka poller thread ┴─events─> consume loop ─> batcher (per partition; rows / ms / bytes bound) ─> normalize (rayon)
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
//!
//! The loop reports to the pipeline's [`vigil_metrics::Health`] (what `/healthz` and `/readyz` answer):
//! it ticks every [`vigil_metrics::Health::tick_interval`] even when no input comes, each partition's
//! batches and durable writes are reported as they happen, and a shutdown makes the pipeline not ready
//! at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vigil_evidence::Archive;
use vigil_kafka::{Checkpoints, KafkaEndpoint, KafkaSource, SourceOptions};
use vigil_metrics::{Health, Metrics, StoreStatus};
use vigil_rules::RuleEngine;
use vigil_schema::PartitionId;

use crate::config::{InputConfig, PipelineConfig};
use crate::input::{Event, FileInputs, KafkaInput, Opening, Records, Source, TopicRoutes};
use crate::rule_state::RuleStateStore;
use crate::sink::Output;
use crate::source::{ChainLookup, Oversized, ReaderSettings, expand_input};
use crate::stages::batch::Partition;
use crate::stages::commit::{ArchiveCheckpoints, report_durable};
use crate::summary::{InputSummary, Latency, Quantiles, RunSummary, StageTimes};
use crate::{Error, Result};

/// Asks a running pipeline to finish its open batches, make them durable and return.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>, Arc<Health>);

impl ShutdownHandle {
    /// Requests the shutdown (idempotent); from now on the pipeline is not ready (`/readyz`).
    pub fn shutdown(&self) {
        self.1.draining();
        self.0.send_replace(true);
    }
}

/// A pipeline ready to run: rules compiled, outputs open.
pub struct Pipeline {
    pub(crate) config: PipelineConfig,
    pub(crate) engine: RuleEngine,
    pub(crate) rule_state: RuleStateStore,
    pub(crate) archive: Archive,
    pub(crate) alerts: Output,
    pub(crate) dead_letters: Output,
    pub(crate) shutdown: Arc<watch::Sender<bool>>,
    pub(crate) stages: StageTimes,
    pub(crate) metrics: Metrics,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("engine", &self.engine).field("archive", &self.archive.location()).finish()
    }
}

impl Pipeline {
    /// Checks the config, compiles the rules, opens the archive and the outputs.
    pub async fn new(config: PipelineConfig, origin: &str) -> Result<Self> {
        Self::with_metrics(config, origin, Metrics::new()).await
    }

    /// [`Pipeline::new`], reporting into `metrics` (and its [`Health`]) from the start: serve them before
    /// calling this, and `/readyz` says what is still being done (rules compiling, the store not reached).
    pub async fn with_metrics(config: PipelineConfig, origin: &str, metrics: Metrics) -> Result<Self> {
        let health = metrics.health();
        health.config_loaded();
        health.set_stuck_after(Duration::from_secs(config.pipeline.stuck_after_secs));
        health.set_store_probe(Arc::new(|| {
            let trouble = vigil_evidence::retry::trouble();
            StoreStatus {
                failed_attempts: trouble.failed_attempts,
                failing_since: trouble.failing_since_ms.map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms)),
                last_error: trouble.last_error,
            }
        }));
        // The check `vigil validate` makes: config, rules, key, store, brokers (see `crate::check`).
        let mut checked = crate::check::check(&config, origin, crate::check::Reach::Environment).await;
        if let Some(problem) = checked.first_problem() {
            return Err(problem);
        }
        for warning in &checked.warnings {
            tracing::warn!("{warning}");
        }
        let (Some(mut engine), Some(pack)) = (checked.engine, checked.pack) else {
            return Err(Error::Internal("the start check passed without rules".into()));
        };
        let archive = match checked.archive {
            Some(archive) => archive,
            // A local directory that does not exist yet: created now.
            None => match checked.signer {
                Some(signer) => Archive::open(&config.evidence.url)?.with_signer(signer),
                None => Archive::open(&config.evidence.url)?,
            },
        };
        metrics.register_rules(engine.rules().map(|r| (r.id.as_str(), r.kind != vigil_rules::RuleKind::Stateless)));
        health.rules_compiled();
        let (shutdown, stop) = watch::channel(false);
        // A shutdown cuts a rule that holds the batch up (after a short grace) instead of waiting for it.
        engine.set_stop_signal(stop);
        let interval = Duration::from_secs(config.rules.state_checkpoint_secs);
        let rule_state = RuleStateStore::new(&engine, interval, config.pipeline.batch_rows);
        if let Some(bucket) = archive.bucket() {
            let (mode, days) = (&config.evidence.object_lock_mode, config.evidence.retention_days);
            // (A bucket without Object Lock was warned about by the check.)
            bucket.ensure_default_retention(mode, days).await?;
        }
        health.store_reachable();
        crate::rule_texts::record(&archive, &pack).await?;
        let alerts = Output::open_alerts(&config, &metrics).await?;
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
            metrics,
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
        ShutdownHandle(self.shutdown.clone(), self.metrics.health())
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
        // Destinations get a moment to deliver what is queued (none after a shutdown signal); the rest
        // stays queued for the next run.
        self.alerts.finish(self.shutting_down()).await;
        let _ = stop_signing.send(());
        if let Some(task) = signing {
            let _ = task.await;
        }
        let closing = self.archive.sign_digest(true).await;
        self.metrics.health().stopped();
        if closing.is_err() {
            self.metrics.error("sign", 1);
        }
        let mut summary = result?;
        summary.digest = closing?.map(|d| crate::summary::SignedDigest { seq: d.seq, key_id: d.key_id });
        Ok(summary)
    }

    /// Signs a digest every `digest_interval` until told to stop (never cut mid-write: a digest's heads
    /// are taken when it is written).
    fn sign_periodically(&self) -> (tokio::sync::oneshot::Sender<()>, Option<tokio::task::JoinHandle<()>>) {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let Some(interval) = self.archive.signer().map(|s| s.interval()) else { return (stop, None) };
        let (archive, metrics) = (self.archive.clone(), self.metrics.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        if let Err(e) = archive.sign_digest(false).await {
                            metrics.error("sign", 1);
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
        if !file_inputs.is_empty() {
            let mut files = self.file_inputs(&file_inputs)?;
            self.consume(&mut files, &mut summary).await?;
        }
        if !kafka_inputs.is_empty() && !self.shutting_down() {
            self.run_kafka(&kafka_inputs, &mut summary).await?;
        }
        for input in &summary.inputs {
            for (rule, n) in &input.alerts_by_rule {
                *summary.alerts_by_rule.entry(rule.clone()).or_default() += n;
            }
        }
        summary.rule_state = self.rule_state.counters(&self.engine, []);
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

    /// Every file of the file inputs, each with its normalizer, as one source.
    fn file_inputs(&self, inputs: &[InputConfig]) -> Result<Source> {
        let mut files = Vec::new();
        for input in inputs {
            let format = input.format()?;
            let build = |options: &vigil_normalize::FormatOptions| {
                format.build(options).map_err(|source| Error::Format { origin: input.path.clone(), source })
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
        let settings = &self.config.pipeline;
        let reader_settings = ReaderSettings {
            max_record_bytes: settings.max_record_bytes,
            max_document_bytes: settings.max_document_bytes,
        };
        // The reader asks which chains exist before it says which one the file continues (see `source`).
        let (archive, runtime) = (self.archive.clone(), tokio::runtime::Handle::current());
        let lookup: ChainLookup = Arc::new(move |name: &str| {
            runtime.block_on(archive.source_head(&PartitionId::new(name, 0))).map_err(|e| e.to_string())
        });
        // With one thread, encoding beside normalizing would take a second core.
        let overlap = settings.effective_threads() >= 2;
        Ok(Source::Files(FileInputs::new(files, reader_settings, lookup, overlap, self.metrics.clone())))
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
                .map_err(|source| Error::Format { origin: e.describe(), source })?;
            for topic in &e.topics {
                if topic.starts_with('^') {
                    let re = regex::Regex::new(topic)
                        .map_err(|source| Error::TopicPattern { origin: e.describe(), source })?;
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
        self.metrics.health().kafka_joining();
        let options = SourceOptions {
            until_caught_up: self.config.pipeline.until_caught_up,
            metrics: Some(self.metrics.clone()),
            ..SourceOptions::default()
        };
        let checkpoints: Arc<dyn Checkpoints> =
            Arc::new(ArchiveCheckpoints { archive: self.archive.clone(), runtime: tokio::runtime::Handle::current() });
        let start_endpoint = endpoint.clone();
        let kafka = tokio::task::spawn_blocking(move || KafkaSource::start(&start_endpoint, checkpoints, options))
            .await
            .map_err(|e| Error::Internal(format!("Kafka connect task failed: {e}")))??;
        let control = kafka.control.clone();
        let brokers = endpoint.brokers.join(",");
        let mut source = Source::Kafka(KafkaInput { source: kafka, control: control.clone(), routes, brokers });
        let result = self.consume(&mut source, summary).await;
        control.finish();
        if let Source::Kafka(input) = source {
            input.source.join().await;
        }
        result
    }

    /// The one consume loop: reads `source` ([`crate::input`]) until it stops, handing each partition's
    /// records to its open batch, closing batches on their deadline, ticking the health checks, feeding
    /// quiet live partitions to the silence rules, and on a shutdown making what was read durable.
    async fn consume(&mut self, source: &mut Source, summary: &mut RunSummary) -> Result<()> {
        let mut parts: BTreeMap<PartitionId, Partition> = BTreeMap::new();
        let mut shutdown = self.shutdown.subscribe();
        let mut stopping = false;
        let idle_check = Duration::from_secs(self.config.rules.idle_check_secs.max(1));
        let watch_idle = self.engine.has_silence() && source.is_live();
        let mut idle_tick = tokio::time::interval(idle_check);
        idle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let health = self.metrics.health();
        let mut health_tick = tokio::time::interval(health.tick_interval());
        health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if source.is_live() {
                // A live source's batches close on their deadline even while records keep coming.
                self.close_due(&mut parts, source).await?;
            }
            let next_deadline = parts.values().filter_map(|p| p.deadline).min();
            let event = tokio::select! {
                // A shutdown first, then the health tick, then records: a file's batch closes on its
                // deadline only while the reader has nothing ready.
                biased;
                _ = shutdown.wait_for(|stop| *stop), if !stopping => {
                    tracing::info!("shutdown requested: finishing open batches");
                    source.stop();
                    stopping = true;
                    continue;
                }
                _ = health_tick.tick() => {
                    health.tick();
                    // A write that finished while the input is quiet (stdin) is settled now: durable,
                    // counted, not taken for a stuck one. The rules have seen nothing after it.
                    for part in parts.values_mut() {
                        if part.in_flight.as_ref().is_some_and(|w| w.task.is_finished()) {
                            self.settle(part, true).await?;
                            report_durable(source, part);
                        }
                    }
                    continue;
                }
                _ = idle_tick.tick(), if watch_idle && !stopping => {
                    self.check_idle(&mut parts, idle_check).await?;
                    continue;
                }
                event = source.next() => event,
                _ = sleep_until(next_deadline) => {
                    self.close_due(&mut parts, source).await?;
                    continue;
                }
            };
            match event {
                Event::Assigned(openings) => self.on_assigned(&mut parts, source, openings).await?,
                Event::Records { partition, records } => {
                    self.on_records(&mut parts, source, &partition, records).await?;
                }
                Event::Lost { partition, first, last, reason } => {
                    let part = self.partition(&mut parts, source, &partition).await?;
                    self.commit_lost(part, first, last, &reason).await?;
                    report_durable(source, part);
                }
                Event::End { partition, last_offset, already_archived } => {
                    let end = (last_offset, already_archived);
                    summary.inputs.push(self.on_end(&mut parts, source, &partition, end).await?);
                }
                Event::Revoked { partitions, lost, done } => {
                    self.on_revoked(&mut parts, source, partitions, lost, summary).await?;
                    let _ = done.send(());
                }
                Event::Stopped { caught_up } => {
                    self.on_stopped(&mut parts, source, caught_up, summary).await?;
                    break;
                }
                Event::Failed(e) => return Err(e),
            }
        }
        for part in parts.into_values() {
            summary.inputs.push(self.close_partition(part, source).await?);
        }
        Ok(())
    }

    /// Partitions given to this member: opened now, not at their first record, so that a partition
    /// that stays quiet still has its silence rules watched.
    async fn on_assigned(
        &mut self,
        parts: &mut BTreeMap<PartitionId, Partition>,
        source: &Source,
        openings: Vec<Opening>,
    ) -> Result<()> {
        if source.is_live() {
            // The group is joined, even when it gave this member nothing (readiness).
            self.metrics.health().kafka_joined();
        }
        for opening in openings {
            let part = self.open_partition(parts, opening).await?;
            part.last_records_at = tokio::time::Instant::now();
        }
        Ok(())
    }

    /// A partition's records, each into its open batch (which closes when full), then the memory bound.
    async fn on_records(
        &mut self,
        parts: &mut BTreeMap<PartitionId, Partition>,
        source: &mut Source,
        partition: &PartitionId,
        records: Records,
    ) -> Result<()> {
        let part = self.partition(parts, source, partition).await?;
        part.last_records_at = tokio::time::Instant::now();
        match records {
            Records::Messages(records) => {
                for (offset, bytes) in records.iter() {
                    self.accept(part, offset, bytes).await?;
                }
            }
            Records::Lines(chunk) => {
                for ((offset, bytes), mark) in chunk.records.iter().zip(chunk.marks) {
                    self.accept(part, offset, bytes).await?;
                    // After `accept`, which may have closed the batch before this record.
                    part.prefix = Some(mark);
                }
            }
            Records::TooLarge(Oversized { offset, code, reason, prefix, blob, mark }) => {
                self.accept_too_large(part, offset, code, reason, prefix, blob).await?;
                part.prefix = Some(mark);
            }
        }
        self.metrics.health().read_through(&part.id, part.last_offset);
        report_durable(source, part);
        self.bound_memory(parts, source).await?;
        Ok(())
    }

    /// A file's end (`end`: its last offset and the records already archived by an earlier run): its
    /// last batch closes and its stream ends, so stateful rules release what they hold.
    async fn on_end(
        &mut self,
        parts: &mut BTreeMap<PartitionId, Partition>,
        source: &mut Source,
        partition: &PartitionId,
        (last_offset, already_archived): (i64, u64),
    ) -> Result<InputSummary> {
        let Some(mut part) = parts.remove(partition) else {
            return Err(Error::Internal(format!("the end of {partition}, which is not open")));
        };
        part.summary.already_archived += already_archived;
        if last_offset > part.resume_after {
            part.last_offset = part.last_offset.max(last_offset);
        }
        // The file's end ends its stream: stateful rules release what they hold.
        part.end_of_input = true;
        self.close_batch(&mut part).await?;
        self.close_partition(part, source).await
    }

    /// Partitions taken from this member: a lost assignment drops its open batch (its new owner reads
    /// it again); a revoked one closes it first.
    async fn on_revoked(
        &mut self,
        parts: &mut BTreeMap<PartitionId, Partition>,
        source: &mut Source,
        partitions: Vec<PartitionId>,
        lost: bool,
        summary: &mut RunSummary,
    ) -> Result<()> {
        for id in partitions {
            self.metrics.forget_kafka_partition(&id);
            let Some(mut part) = parts.remove(&id) else { continue };
            if lost {
                tracing::warn!(
                    partition = %id,
                    dropped = part.records.len() + part.too_large.len(),
                    "assignment lost: the open batch is dropped unwritten; its new owner reads it again"
                );
                self.rule_state.forget(&self.engine, part.rules);
                self.metrics.health().partition_closed(&id);
                summary.inputs.push(part.summary);
            } else {
                self.close_batch(&mut part).await?;
                summary.inputs.push(self.close_partition(part, source).await?);
            }
        }
        Ok(())
    }

    /// The source stopped: every open batch closes and is made durable.
    async fn on_stopped(
        &mut self,
        parts: &mut BTreeMap<PartitionId, Partition>,
        source: &mut Source,
        caught_up: bool,
        summary: &mut RunSummary,
    ) -> Result<()> {
        for part in parts.values_mut() {
            self.close_batch(part).await?;
            report_durable(source, part);
            // A file stopped before its end is read on from here by the next run.
            part.summary.interrupted |= !source.is_live();
        }
        summary.caught_up = caught_up;
        summary.interrupted |= !caught_up && !source.is_live();
        Ok(())
    }

    /// The partition, opened at its chain head with its rule state loaded, and reported to the metrics.
    async fn open_partition<'a>(
        &mut self,
        parts: &'a mut BTreeMap<PartitionId, Partition>,
        opening: Opening,
    ) -> Result<&'a mut Partition> {
        let (id, display, checked_against) = (opening.id.clone(), opening.input.clone(), opening.checked_against);
        if !parts.contains_key(&id) {
            let part = Partition::open(&self.archive, (&self.rule_state, &mut self.engine), opening).await?;
            if let Some(checked) = checked_against
                && part.resume_after != checked.max(0)
            {
                return Err(Error::Input {
                    input: display,
                    reason: format!(
                        "the chain {} moved to offset {} while the file was checked against offset {checked}: \
                         another process is archiving the same file; run one instance per file input",
                        id.source(),
                        part.resume_after,
                    ),
                });
            }
            self.track(&part);
            parts.insert(id.clone(), part);
        }
        parts.get_mut(&id).ok_or_else(|| Error::Internal(format!("partition {id} just opened is missing")))
    }

    /// The open partition `id`; opened now, as the source describes it, when its records come before its
    /// assignment.
    async fn partition<'a>(
        &mut self,
        parts: &'a mut BTreeMap<PartitionId, Partition>,
        source: &Source,
        id: &PartitionId,
    ) -> Result<&'a mut Partition> {
        if parts.contains_key(id) {
            return parts.get_mut(id).ok_or_else(|| Error::Internal(format!("partition {id} is not open")));
        }
        self.open_partition(parts, source.opening(id)?).await
    }

    /// A partition is done here (its file ended, it was revoked, the run ends): its last write settled
    /// and reported, its rule state stored; returns what it did.
    async fn close_partition(&mut self, mut part: Partition, source: &Source) -> Result<InputSummary> {
        self.settle(&mut part, true).await?;
        report_durable(source, &mut part);
        self.rule_state.close(&self.archive, &self.engine, &part.id, part.rules).await?;
        self.metrics.health().partition_closed(&part.id);
        Ok(part.summary)
    }

    /// Closes every batch whose `batch_ms` passed since its first record.
    async fn close_due(&mut self, parts: &mut BTreeMap<PartitionId, Partition>, source: &Source) -> Result<()> {
        let now = tokio::time::Instant::now();
        for part in parts.values_mut().filter(|p| p.deadline.is_some_and(|d| d <= now)) {
            self.close_batch(part).await?;
            report_durable(source, part);
        }
        Ok(())
    }

    /// Silence rules of partitions that received nothing for `idle_check` or longer: their quiet counts
    /// as event time ([`RuleEngine::idle`]). Alerts go to the outputs now and into the archive with the
    /// partition's next range; the rule state is stored at once, so a restart does not raise them again.
    async fn check_idle(&mut self, parts: &mut BTreeMap<PartitionId, Partition>, idle_check: Duration) -> Result<()> {
        let now = tokio::time::Instant::now();
        for part in parts.values_mut() {
            let idle = now.saturating_duration_since(part.last_records_at);
            if !part.batch_is_empty() || idle < idle_check {
                continue;
            }
            let idle_us = i64::try_from(idle.as_micros()).unwrap_or(i64::MAX);
            let alerts = self.engine.idle(&mut part.rules.state, idle_us);
            if alerts.is_empty() {
                continue;
            }
            tracing::warn!(
                partition = %part.id,
                idle_secs = idle.as_secs(),
                alerts = alerts.len(),
                "partition quiet: silence rules alerted"
            );
            self.alerts.alerts(&alerts).await?;
            part.idle_alerts.extend(alerts);
            part.rules.changed();
            self.rule_state.save(&self.archive, &self.engine, &part.id, &mut part.rules, true).await?;
        }
        Ok(())
    }

    /// Closes the largest open batches while all open batches together hold more than
    /// `max_buffered_bytes`.
    async fn bound_memory(&mut self, parts: &mut BTreeMap<PartitionId, Partition>, source: &Source) -> Result<()> {
        let max = self.config.pipeline.max_buffered_bytes;
        while parts.values().map(Partition::buffered_bytes).sum::<usize>() > max {
            let Some(largest) = parts.values_mut().max_by_key(|p| p.buffered_bytes()) else { break };
            self.close_batch(largest).await?;
            report_durable(source, largest);
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

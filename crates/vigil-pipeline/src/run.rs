//! The runtime: micro-batches of each source partition through normalize, detect, emit and archive.
//! This file holds the [`Pipeline`] and the loops that feed it (files, then Kafka); the batch path itself
//! is `crate::stages`, one stage a file.
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
//!
//! The loops report to the pipeline's [`vigil_metrics::Health`] (what `/healthz` and `/readyz` answer):
//! they tick every [`vigil_metrics::Health::tick_interval`] even when no input comes, each partition's
//! batches and durable writes are reported as they happen, and a shutdown makes the pipeline not ready
//! at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vigil_evidence::Archive;
use vigil_kafka::{Checkpoints, KafkaEndpoint, KafkaSource, SourceControl, SourceEvent, SourceOptions};
use vigil_metrics::{Health, Metrics, StoreStatus};
use vigil_normalize::Normalizer;
use vigil_rules::{RuleEngine, load_rules};

use crate::config::{InputConfig, PipelineConfig};
use crate::rule_state::{RuleStateStore, stream_name};
use crate::sink::Output;
use crate::source::{ChainLookup, InputFile, Oversized, ReadEvent, ReaderSettings, expand_input, spawn_reader};
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
        Self::with_metrics(config, origin, Metrics::new()).await
    }

    /// [`Pipeline::new`], reporting into `metrics` (and its [`Health`]) from the start: serve them before
    /// calling this, and `/readyz` says what is still being done (rules compiling, the store not reached).
    pub async fn with_metrics(config: PipelineConfig, origin: &str, metrics: Metrics) -> Result<Self> {
        if let Some(first) = config.problems(origin).into_iter().next() {
            return Err(first);
        }
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
        let pack = load_rules(&config.rules.dirs).map_err(Error::Rules)?;
        let mut engine =
            RuleEngine::with_options(&pack, config.pipeline.effective_threads(), config.rules.engine_options())
                .await
                .map_err(Error::Rules)?;
        metrics.register_rules(engine.rules().map(|r| (r.id.as_str(), r.kind != vigil_rules::RuleKind::Stateless)));
        health.rules_compiled();
        let (shutdown, stop) = watch::channel(false);
        // A shutdown cuts a rule that holds the batch up (after a short grace) instead of waiting for it.
        engine.set_stop_signal(stop);
        let mut archive = Archive::open(&config.evidence.url)?;
        let signer = config.evidence.signer()?;
        // Also the start's check that the store answers (readiness).
        let signed = archive.is_signed().await?;
        match signer {
            Some(signer) => archive = archive.with_signer(signer),
            // A signed archive stays signed: entries without a digest would fail `verify --public-key`.
            None if signed => {
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
        health.store_reachable();
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
        let health = self.metrics.health();
        let mut health_tick = tokio::time::interval(health.tick_interval());
        health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Stdin says which file it is after its first 4 KiB: the loop ticks meanwhile.
        let first = loop {
            tokio::select! {
                event = rx.recv() => break event,
                _ = health_tick.tick() => health.tick(),
            }
        };
        let (ingest_source, reader_resume_after) = match first {
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
        self.track(&part);
        self.rule_state.open(&self.archive, &mut self.engine, &part.ingest_source, 0, part.head.as_ref()).await?;
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let deadline = part.deadline;
            let event = tokio::select! {
                // A shutdown first, then the health tick, then records: a batch closes on its deadline
                // only while the reader has nothing ready.
                biased;
                _ = shutdown.wait_for(|stop| *stop) => {
                    // Finish what was read, make it durable, stop; the rest is read on the next run.
                    self.close_batch(&mut part, alerts_by_rule).await?;
                    part.summary.interrupted = true;
                    break;
                }
                _ = health_tick.tick() => {
                    health.tick();
                    // A write that finished while the input is quiet (stdin) is settled now: durable,
                    // counted, not taken for a stuck one. The rules have seen nothing after it.
                    if part.in_flight.as_ref().is_some_and(|w| w.task.is_finished()) {
                        self.settle(&mut part, true).await?;
                    }
                    continue;
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
                    health.read_through(&part.ingest_source, 0, part.last_offset);
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
                Some(ReadEvent::Failed(e)) => {
                    self.metrics.error("read", 1);
                    return Err(e);
                }
                Some(ReadEvent::Start { .. }) | None => {
                    return Err(Error::Internal(format!("reader of {} stopped without an end", file.display)));
                }
            }
        }
        self.settle(&mut part, true).await?;
        self.rule_state.close(&self.archive, &mut self.engine, &part.ingest_source, 0).await?;
        health.partition_closed(&part.ingest_source, 0);
        Ok(part.summary)
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
        self.metrics.health().kafka_joining();
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
        let health = self.metrics.health();
        let mut health_tick = tokio::time::interval(health.tick_interval());
        health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_deadline = parts.values().filter_map(|p| p.deadline).min();
            let event = tokio::select! {
                _ = health_tick.tick() => {
                    health.tick();
                    continue;
                }
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
                    // The group is joined, even when it gave this member nothing (readiness).
                    health.kafka_joined();
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
                    health.read_through(&part.ingest_source, part.partition, part.last_offset);
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
                        health.partition_closed(&key.0, key.1);
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
            self.track(&part);
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

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

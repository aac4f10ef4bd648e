//! The Kafka source: one consumer-group member on a poller thread, handing records to the pipeline
//! through a bounded channel and committing only the offsets the pipeline reports durable.
//!
//! ```text
//!  poller thread (owns the consumer)                         pipeline task
//!   poll ──> chunk per partition ──> bounded channel ──────> batches ─> archive (manifest = checkpoint)
//!    │  channel full: wait; stuck for 5 s: pause every         │
//!    │  partition and keep polling (membership stays alive)    │
//!    └── commit(next offsets) <── SourceControl::durable <─────┘
//! ```
//!
//! - **Start offsets.** On assignment each partition starts after its last archived offset
//!   ([`Checkpoints`]); a partition never archived starts at the group's committed offset, else at
//!   `start` (earliest / latest). The archive, not the group, is the checkpoint: a crash between an
//!   archive write and the offset commit cannot duplicate or lose a record.
//! - **Rebalances.** Before partitions are revoked, every record fetched from them is handed over and
//!   [`SourceEvent::Revoked`] waits until the pipeline has made the open batches of those partitions
//!   durable (or dropped them, when the assignment was lost to a session timeout and another member may
//!   own them already); their offsets are committed before the partitions are given up.
//! - **Offsets are not contiguous.** Transaction markers and compaction leave offsets with no record;
//!   the pipeline counts them as skipped inside a range. Offsets deleted by retention before they were
//!   read are never skipped silently: the source reports [`SourceEvent::Lost`] (the pipeline records it in
//!   the manifest chain as a completeness break) and goes on from the oldest offset still there. A
//!   partition whose end lies before the archived position (topic recreated) stops the source with an
//!   error instead of guessing.
//! - **Until caught up.** With `until_caught_up`, each partition's end offset is read when it is
//!   assigned; once every assigned partition reached it, the source stops ([`SourceEvent::Stopped`]).
//!   A member holding no partitions is not caught up: it waits for an assignment (after a crash, the
//!   dead member's partitions come back only when its session times out).
//! - **Shutdown.** [`SourceControl::stop`]: no more polling; fetched records are handed over, then
//!   `Stopped`; after [`SourceControl::finish`], durable offsets are committed and the member leaves the
//!   group.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use tokio::sync::mpsc;
use vigil_metrics::Metrics;
use vigil_normalize::RawRecords;
use vigil_schema::PartitionId;

use crate::check::{self, ErrorLog};
use crate::config::{KafkaEndpoint, StartPosition};
use crate::{Error, Result};

const CHUNK_RECORDS: usize = 4096;
const CHUNK_BYTES: usize = 4 << 20;
const POLL: Duration = Duration::from_millis(100);
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the poller waits for a full channel before pausing the partitions.
const PAUSE_AFTER: Duration = Duration::from_secs(5);

fn assigned_list(state: &PollState) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for id in state.assigned.keys() {
        tpl.add_partition(id.source(), id.partition);
    }
    tpl
}

/// Where the archive says a partition stands.
pub trait Checkpoints: Send + Sync + 'static {
    /// The last offset of `topic`/`partition` that is durable in the archive, or `None` when nothing of it
    /// is. Called from the poller thread when the partition is assigned.
    fn resume_after(&self, partition: &PartitionId) -> std::result::Result<Option<i64>, String>;
}

/// What the source hands to the pipeline, in order.
#[derive(Debug)]
pub enum SourceEvent {
    /// Partitions given to this member by a rebalance (possibly none: it joined its group), before any of
    /// their records. A partition may then stay quiet: the pipeline opens it anyway, so that silence
    /// rules can notice.
    Assigned {
        /// The partitions.
        partitions: Vec<PartitionId>,
    },
    /// Records of one partition in offset order (offsets may have holes: markers, compaction).
    Records {
        /// The topic partition.
        partition: PartitionId,
        /// The records.
        records: RawRecords,
    },
    /// Offsets `first..=last` of a partition were deleted by the broker before they were read.
    Lost {
        /// The topic partition.
        partition: PartitionId,
        /// First lost offset.
        first: i64,
        /// Last lost offset.
        last: i64,
        /// What happened, for the manifest and the log.
        reason: String,
    },
    /// Partitions taken away by a rebalance. Make their open batches durable (and report them through
    /// [`SourceControl::durable`]) or, when `lost`, drop them without writing; then send on `done`.
    Revoked {
        /// The partitions.
        partitions: Vec<PartitionId>,
        /// The assignment was lost (session timeout): another member may own these already.
        lost: bool,
        /// Send once done.
        done: std::sync::mpsc::SyncSender<()>,
    },
    /// No more records will come: make everything durable, report it, then call
    /// [`SourceControl::finish`].
    Stopped {
        /// Stopped because every assigned partition reached its end offset seen at assignment.
        caught_up: bool,
    },
    /// The source failed and stopped; nothing follows.
    Failed(Error),
}

/// Per-partition consumer state: where it stands and where it ended when assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionProgress {
    /// Next offset to hand over.
    pub position: i64,
    /// End offset (high watermark) seen when the partition was assigned.
    pub end_at_assignment: i64,
    /// Offsets reported lost to retention.
    pub lost: u64,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    finished: Mutex<bool>,
    finished_cv: Condvar,
    closing: AtomicBool,
    durable: Mutex<HashMap<PartitionId, i64>>,
    fatal: Mutex<Option<Error>>,
    records: AtomicU64,
    bytes: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pipeline's handle on a running source.
#[derive(Clone)]
pub struct SourceControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SourceControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceControl").finish_non_exhaustive()
    }
}

impl SourceControl {
    /// Everything of `partition` before `next_offset` is durable: it may be committed.
    pub fn durable(&self, partition: &PartitionId, next_offset: i64) {
        let mut durable = lock(&self.shared.durable);
        let slot = durable.entry(partition.clone()).or_insert(next_offset);
        *slot = (*slot).max(next_offset);
    }

    /// Stop fetching (SIGTERM, or the pipeline is done); the source answers with `Stopped`.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    /// After `Stopped`: everything is durable and reported; commit and leave the group.
    pub fn finish(&self) {
        *lock(&self.shared.finished) = true;
        self.shared.finished_cv.notify_all();
    }

    /// Records and bytes handed over so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.shared.records.load(Ordering::Relaxed), self.shared.bytes.load(Ordering::Relaxed))
    }
}

/// Source settings besides the endpoint.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Stop once every assigned partition reached the end offset seen at its assignment.
    pub until_caught_up: bool,
    /// Chunks buffered between the poller and the pipeline before partitions are paused.
    pub channel_chunks: usize,
    /// Where the consumer lag of each assigned partition goes (from librdkafka's statistics, every
    /// `statistics.interval.ms`, 5 s unless the input URL sets it; `0` turns them off).
    pub metrics: Option<Metrics>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions { until_caught_up: false, channel_chunks: 16, metrics: None }
    }
}

struct Chunk {
    partition: PartitionId,
    records: RawRecords,
}

#[derive(Default)]
struct PollState {
    assigned: BTreeMap<PartitionId, PartitionProgress>,
    chunk: Option<Chunk>,
    pending: VecDeque<SourceEvent>,
    paused: bool,
    topics: HashMap<String, Arc<str>>,
}

impl PollState {
    fn intern(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.topics.get(topic) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(topic);
        self.topics.insert(topic.to_string(), t.clone());
        t
    }

    fn flush_chunk(&mut self) {
        if let Some(c) = self.chunk.take()
            && !c.records.is_empty()
        {
            self.pending.push_back(SourceEvent::Records { partition: c.partition, records: c.records });
        }
    }
}

struct SourceContext {
    shared: Arc<Shared>,
    state: Mutex<PollState>,
    tx: mpsc::Sender<SourceEvent>,
    checkpoints: Arc<dyn Checkpoints>,
    start: StartPosition,
    errors: ErrorLog,
    metrics: Option<Metrics>,
}

impl ClientContext for SourceContext {
    crate::oauth::oauthbearer_refresh!();

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.errors.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.record(&error, reason);
        if let Some(metrics) = &self.metrics {
            metrics.error("read", 1);
        }
    }

    fn stats(&self, statistics: Statistics) {
        let Some(metrics) = &self.metrics else { return };
        for (name, topic) in &statistics.topics {
            for (&partition, p) in &topic.partitions {
                // -1 is librdkafka's internal "unassigned" partition; a lag of -1 means not known (not ours)
                if partition >= 0 && p.consumer_lag >= 0 {
                    metrics.kafka_lag(&PartitionId::new(name.as_str(), partition), p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.on_assign(consumer, tpl);
                if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.on_revoke(consumer, tpl);
                if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; giving up the assignment");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "applying a rebalance failed");
        }
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(partitions = offsets.count(), "offsets committed"),
            Err(e) => {
                if let Some(metrics) = &self.metrics {
                    metrics.error("offset_commit", 1);
                }
                tracing::warn!(
                    error = %e,
                    "committing offsets failed; the archive stays the checkpoint and a later commit covers them"
                )
            }
        }
    }
}

impl SourceContext {
    fn set_fatal(&self, error: Error) {
        let mut fatal = lock(&self.shared.fatal);
        if fatal.is_none() {
            *fatal = Some(error);
        }
    }

    /// Chooses each assigned partition's start: after the archive's last offset, else the group's
    /// committed offset, else `start`; and reads its end offset for `until_caught_up`.
    fn on_assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let committed = consumer.committed_offsets(tpl.clone(), BROKER_TIMEOUT).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the group's committed offsets failed; using the archive and `start`");
            TopicPartitionList::new()
        });
        let mut state = lock(&self.state);
        let partitions: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        let mut opened = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            let (low, high) = match consumer.fetch_watermarks(&topic, partition, BROKER_TIMEOUT) {
                Ok(w) => w,
                Err(e) => {
                    self.set_fatal(Error::Broker {
                        what: format!("{topic}/{partition}"),
                        reason: format!("cannot read the partition's offsets: {e}"),
                    });
                    continue;
                }
            };
            let key = PartitionId::new(state.intern(&topic), partition);
            let archived = match self.checkpoints.resume_after(&key) {
                Ok(a) => a,
                Err(reason) => {
                    self.set_fatal(Error::Checkpoint { what: format!("{topic}/{partition}"), reason });
                    continue;
                }
            };
            let group_offset = committed.find_partition(&topic, partition).and_then(|e| match e.offset() {
                Offset::Offset(n) => Some(n),
                _ => None,
            });
            let (position, why) = match (archived, group_offset) {
                (Some(last), _) => (last + 1, "after the archive's last offset"),
                (None, Some(n)) => (n, "the group's committed offset"),
                (None, None) => match self.start {
                    StartPosition::Earliest => (low, "earliest (no archive, no committed offset)"),
                    StartPosition::Latest => (high, "latest (no archive, no committed offset)"),
                },
            };
            tracing::info!(topic, partition, position, low, high, "assigned; starting at {why}");
            if archived.is_some() && group_offset != Some(position) {
                // The archive is ahead of the group (a crash fell between an archive write and its
                // commit): what it holds is durable, so the commit catches up now.
                lock(&self.shared.durable).insert(key.clone(), position);
            }
            state.assigned.insert(key.clone(), PartitionProgress { position, end_at_assignment: high, lost: 0 });
            opened.push(key);
            if let Err(e) = tpl.set_partition_offset(&topic, partition, Offset::Offset(position)) {
                tracing::error!(error = %e, topic, partition, "cannot set the start offset");
            }
        }
        if opened.is_empty() {
            tracing::info!("a rebalance gave this member no partitions; waiting for one that does");
        }
        // Also when empty: the member is in its group (readiness).
        state.pending.push_back(SourceEvent::Assigned { partitions: opened });
        // A new assignment starts unpaused; the poll loop pauses again if the pipeline is still behind.
        state.paused = false;
    }

    /// Hands over everything fetched, waits for the pipeline to settle the revoked partitions, commits.
    fn on_revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions: Vec<PartitionId> = {
            let mut state = lock(&self.state);
            tpl.elements().iter().map(|e| PartitionId::new(state.intern(e.topic()), e.partition())).collect()
        };
        if self.shared.closing.load(Ordering::SeqCst) {
            return; // the pipeline is done; offsets were committed on the way out
        }
        let lost = consumer.assignment_lost();
        tracing::info!(partitions = partitions.len(), lost, "partitions revoked; settling their open batches");
        let pending: Vec<SourceEvent> = {
            let mut state = lock(&self.state);
            state.flush_chunk();
            state.pending.drain(..).collect()
        };
        for event in pending {
            if self.tx.blocking_send(event).is_err() {
                return; // the pipeline is gone
            }
        }
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.tx.blocking_send(SourceEvent::Revoked { partitions: partitions.clone(), lost, done }).is_ok() {
            let _ = wait.recv();
        }
        if !lost {
            commit_durable(consumer, &self.shared, Some(&partitions), CommitMode::Sync);
        }
        let mut state = lock(&self.state);
        let mut durable = lock(&self.shared.durable);
        for key in &partitions {
            state.assigned.remove(key);
            durable.remove(key);
        }
    }
}

/// Commits the durable offsets (of `only` these partitions, or all), removing them from the queue.
fn commit_durable(
    consumer: &BaseConsumer<SourceContext>,
    shared: &Shared,
    only: Option<&[PartitionId]>,
    mode: CommitMode,
) {
    let offsets: Vec<(PartitionId, i64)> = {
        let mut durable = lock(&shared.durable);
        let keys: Vec<PartitionId> = match only {
            Some(parts) => parts.iter().filter(|k| durable.contains_key(*k)).cloned().collect(),
            None => durable.keys().cloned().collect(),
        };
        keys.into_iter().filter_map(|k| durable.remove(&k).map(|o| (k, o))).collect()
    };
    if offsets.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (id, next) in &offsets {
        if let Err(e) = tpl.add_partition_offset(id.source(), id.partition, Offset::Offset(*next)) {
            tracing::error!(error = %e, "cannot build the commit");
        }
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        if let Some(metrics) = &consumer.context().metrics {
            metrics.error("offset_commit", 1);
        }
        tracing::warn!(
            error = %e,
            "committing offsets failed; the archive stays the checkpoint, so a restart resumes correctly"
        );
    }
}

/// A running Kafka source.
pub struct KafkaSource {
    /// Events for the pipeline.
    pub events: mpsc::Receiver<SourceEvent>,
    /// The pipeline's handle.
    pub control: SourceControl,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource").finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// Connects (failing fast, with what to fix, when the brokers cannot be reached, a topic does not
    /// exist or the login is refused), joins the group and starts the poller thread.
    pub fn start(
        endpoint: &KafkaEndpoint,
        checkpoints: Arc<dyn Checkpoints>,
        options: SourceOptions,
    ) -> Result<KafkaSource> {
        let config = endpoint.consumer_config()?;
        let (tx, rx) = mpsc::channel(options.channel_chunks.max(1));
        let shared = Arc::new(Shared::default());
        let errors = ErrorLog::default();
        let context = SourceContext {
            shared: shared.clone(),
            state: Mutex::new(PollState::default()),
            tx,
            checkpoints,
            start: endpoint.start,
            errors: errors.clone(),
            metrics: options.metrics.clone(),
        };
        let consumer: BaseConsumer<SourceContext> =
            config.create_with_context(context).map_err(|e| endpoint.refused_config(&e))?;
        check::connected(consumer.client(), endpoint, &endpoint.topics, &errors, &|| {
            let _ = consumer.poll(Duration::ZERO);
        })?;
        let topics: Vec<&str> = endpoint.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| Error::Broker { what: endpoint.describe(), reason: format!("cannot subscribe: {e}") })?;
        tracing::info!(endpoint = %endpoint.describe(), group = endpoint.group.as_deref().unwrap_or(""), "joined the consumer group");
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-kafka".into())
            .spawn(move || Poller { consumer, shared: thread_shared, options }.run())
            .map_err(|e| Error::Broker {
                what: endpoint.describe(),
                reason: format!("cannot start the poller thread: {e}"),
            })?;
        Ok(KafkaSource { events: rx, control: SourceControl { shared }, thread: Some(thread) })
    }

    /// Waits for the poller thread to end (after `finish`, or after `Failed`).
    pub async fn join(mut self) {
        self.control.finish();
        drop(self.events);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

struct Poller {
    consumer: BaseConsumer<SourceContext>,
    shared: Arc<Shared>,
    options: SourceOptions,
}

impl Poller {
    fn context(&self) -> &SourceContext {
        self.consumer.context()
    }

    fn run(self) {
        let caught_up = match self.poll_loop() {
            Ok(caught_up) => caught_up,
            Err(e) => {
                let _ = self.context().tx.blocking_send(SourceEvent::Failed(e));
                self.close();
                return;
            }
        };
        // Hand over everything fetched, then say so.
        let pending: Vec<SourceEvent> = {
            let mut state = lock(&self.context().state);
            state.flush_chunk();
            state.pending.drain(..).collect()
        };
        for event in pending.into_iter().chain(std::iter::once(SourceEvent::Stopped { caught_up })) {
            if self.context().tx.blocking_send(event).is_err() {
                break;
            }
        }
        // Keep the membership alive while the pipeline makes the rest durable.
        loop {
            let finished = lock(&self.shared.finished);
            let (finished, _) =
                self.shared.finished_cv.wait_timeout(finished, POLL).unwrap_or_else(std::sync::PoisonError::into_inner);
            if *finished || self.context().tx.is_closed() {
                break;
            }
            drop(finished);
            commit_durable(&self.consumer, &self.shared, None, CommitMode::Async);
            // Serve callbacks (rebalances) without taking records: every partition is paused.
            self.pause_all();
            let _ = self.consumer.poll(Duration::ZERO);
        }
        self.close();
    }

    fn close(&self) {
        commit_durable(&self.consumer, &self.shared, None, CommitMode::Sync);
        self.shared.closing.store(true, Ordering::SeqCst);
        self.consumer.unsubscribe();
        tracing::info!("left the consumer group");
    }

    fn pause_all(&self) {
        let tpl = assigned_list(&lock(&self.context().state));
        if tpl.count() > 0 {
            let _ = self.consumer.pause(&tpl);
        }
    }

    /// Polls until stopped or caught up; `Ok(true)` when caught up.
    fn poll_loop(&self) -> Result<bool> {
        let ctx = self.context();
        // The consumer error being retried, if any: logged once at warn, and its end at info.
        let mut failing: Option<String> = None;
        loop {
            if let Some(e) = lock(&self.shared.fatal).take() {
                return Err(e);
            }
            if self.shared.stop.load(Ordering::SeqCst) || ctx.tx.is_closed() {
                return Ok(false);
            }
            self.hand_over();
            commit_durable(&self.consumer, &self.shared, None, CommitMode::Async);
            match self.consumer.poll(POLL) {
                None => {
                    let mut state = lock(&ctx.state);
                    state.flush_chunk();
                    // Nothing assigned is not caught up: after a crash the dead member keeps its
                    // partitions until its session times out, and a cooperative rebalance may hand out
                    // an empty assignment first; stopping then would skip the whole backlog.
                    if self.options.until_caught_up
                        && !state.assigned.is_empty()
                        && state.pending.is_empty()
                        && state.assigned.values().all(|p| p.position >= p.end_at_assignment)
                    {
                        tracing::info!("caught up with the end offsets seen at assignment");
                        return Ok(true);
                    }
                }
                Some(Ok(message)) => {
                    if let Some(error) = failing.take() {
                        tracing::info!(after = %error, "records arriving again after a consumer error");
                    }
                    self.take(&message)
                }
                Some(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange,
                ))) => self.out_of_range()?,
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                    return Err(Error::Broker { what: "consumer".into(), reason: format!("fatal error: {code}") });
                }
                Some(Err(e)) => {
                    let error = e.to_string();
                    if let Some(metrics) = &ctx.metrics {
                        metrics.error("read", 1);
                    }
                    if failing.as_deref() == Some(error.as_str()) {
                        tracing::debug!(%error, "consumer error again; librdkafka retries");
                    } else {
                        tracing::warn!(%error, "consumer error; librdkafka retries");
                        failing = Some(error);
                    }
                }
            }
        }
    }

    /// Moves pending events into the channel. While the channel is full the poller waits (librdkafka's
    /// own prefetch queue is bounded by `queued.max.messages.kbytes`, so memory stays bounded); only when
    /// the pipeline has been stuck for [`PAUSE_AFTER`] are the partitions paused, so that polling can go
    /// on serving the group (rebalances, `max.poll.interval.ms`) without taking records. Pausing at once
    /// would throw away librdkafka's prefetched records at every hiccup and fetch them again.
    fn hand_over(&self) {
        let ctx = self.context();
        let started = std::time::Instant::now();
        loop {
            let mut state = lock(&ctx.state);
            while let Some(event) = state.pending.pop_front() {
                match ctx.tx.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(event)) | Err(mpsc::error::TrySendError::Closed(event)) => {
                        state.pending.push_front(event);
                        break;
                    }
                }
            }
            let behind = !state.pending.is_empty();
            if !behind || ctx.tx.is_closed() || self.shared.stop.load(Ordering::SeqCst) {
                if state.paused && !behind {
                    state.paused = false;
                    let tpl = assigned_list(&state);
                    drop(state);
                    if tpl.count() > 0 && self.consumer.resume(&tpl).is_err() {
                        tracing::warn!("resuming partitions failed");
                    }
                    tracing::info!("backpressure: the pipeline caught up, partitions resumed");
                }
                return;
            }
            if started.elapsed() >= PAUSE_AFTER {
                if !state.paused {
                    state.paused = true;
                    let tpl = assigned_list(&state);
                    drop(state);
                    if tpl.count() > 0 && self.consumer.pause(&tpl).is_err() {
                        tracing::warn!("pausing partitions failed");
                    }
                    tracing::warn!(
                        "backpressure: the pipeline (evidence writing) lags; partitions paused until it catches up"
                    );
                }
                return;
            }
            drop(state);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn take(&self, message: &rdkafka::message::BorrowedMessage<'_>) {
        let ctx = self.context();
        let mut state = lock(&ctx.state);
        let key = PartitionId::new(state.intern(message.topic()), message.partition());
        let offset = message.offset();
        let Some(progress) = state.assigned.get_mut(&key) else {
            return; // a straggler of a partition no longer assigned
        };
        if offset < progress.position {
            return; // fetched again after a pause or seek: already handed over
        }
        progress.position = offset + 1;
        let payload = message.payload().unwrap_or_default();
        self.shared.records.fetch_add(1, Ordering::Relaxed);
        self.shared.bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
        let same = state.chunk.as_ref().is_some_and(|c| c.partition == key);
        if !same {
            state.flush_chunk();
            state.chunk = Some(Chunk { partition: key, records: RawRecords::default() });
        }
        if let Some(chunk) = state.chunk.as_mut() {
            chunk.records.push(offset, payload);
            if chunk.records.len() >= CHUNK_RECORDS || chunk.records.byte_len() >= CHUNK_BYTES {
                state.flush_chunk();
            }
        }
    }

    /// An offset is no longer on the broker: find the partitions behind their low watermark, report the
    /// lost offsets and go on from the oldest one still there.
    fn out_of_range(&self) -> Result<()> {
        let ctx = self.context();
        let assigned: Vec<(PartitionId, i64)> =
            lock(&ctx.state).assigned.iter().map(|(k, p)| (k.clone(), p.position)).collect();
        for (id, position) in assigned {
            let (topic, partition) = (id.source.clone(), id.partition);
            let (low, high) = self.consumer.fetch_watermarks(&topic, partition, BROKER_TIMEOUT).map_err(|e| {
                Error::Broker { what: format!("{topic}/{partition}"), reason: format!("cannot read offsets: {e}") }
            })?;
            if position < low {
                let reason = format!(
                    "offsets {position}..={} of {topic}/{partition} were deleted by the broker (retention) before vigil read them",
                    low - 1
                );
                tracing::error!(topic = %topic, partition, first = position, last = low - 1, "completeness break: {reason}");
                let mut state = lock(&ctx.state);
                state.flush_chunk();
                state.pending.push_back(SourceEvent::Lost {
                    partition: id.clone(),
                    first: position,
                    last: low - 1,
                    reason,
                });
                if let Some(p) = state.assigned.get_mut(&id) {
                    p.position = low;
                    p.lost += (low - position) as u64;
                }
                drop(state);
                self.consumer.seek(&topic, partition, Offset::Offset(low), BROKER_TIMEOUT).map_err(|e| {
                    Error::Broker { what: format!("{topic}/{partition}"), reason: format!("cannot seek to {low}: {e}") }
                })?;
            } else if position > high {
                return Err(Error::Broker {
                    what: format!("{topic}/{partition}"),
                    reason: format!(
                        "the partition ends at offset {high} but the archive already holds offsets up to {}: the topic was \
                         recreated or truncated. vigil does not guess; archive the new topic under another evidence \
                         location (or another topic name)",
                        position - 1
                    ),
                });
            }
        }
        Ok(())
    }
}

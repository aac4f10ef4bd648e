//! Stateful rules' state per source partition, stored beside the evidence at
//! `{evidence}/state/rules/{ingest_source}/{partition}.json` with the offset it covers, so windows,
//! sequences and first-seen keys survive a restart and move with a Kafka partition to its new owner.
//!
//! ```text
//!  partition opened:  load its state ─> RuleEngine::restore_in ─> replay from the archive the ranges
//!                     committed after the covered offset (alerts discarded: they were raised and archived then)
//!  after a commit:    note the offset; store every `[rules] state_checkpoint_secs` (default 60)
//!  partition closed:  store now, forget the stream (end of file, Kafka revocation, end of run)
//! ```
//!
//! Like Kafka Streams, state is kept per partition: a rule correlates the events of one file or one topic
//! partition. Partition a topic by what its rules key on (user, source address) for correlation across a
//! topic; one instance then holds all of a key's events. The archive is the source of truth: a crash
//! between two snapshots costs a replay of the partition's events archived since, never a wrong or
//! missing alert. A partition's first start stores an empty snapshot as of its chain head (an existing
//! archive is not replayed from its beginning). A rule whose kind or key columns changed starts empty
//! (with a warning); one whose other text changed keeps its state. On an Object Lock bucket each stored
//! snapshot is kept as a version until its retention ends: a longer checkpoint interval keeps that small.
//! How big the state can get is bounded per rule (see `vigil_rules::stateful`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, sort_to_indices, take_record_batch};
use arrow::datatypes::Int64Type;
use serde::{Deserialize, Serialize};
use vigil_evidence::{Archive, ChainHead};
use vigil_rules::engine::add_counters;
use vigil_rules::stateful::StateCounters;
use vigil_rules::{EngineSnapshot, RuleEngine};

use crate::{Error, Result};

/// Format version of [`StoredState`].
const STATE_VERSION: u32 = 1;

/// Where a partition's state lives, relative to the archive root.
pub fn state_path(ingest_source: &str, partition: i32) -> String {
    format!("state/rules/{ingest_source}/{partition}.json")
}

/// The engine stream of a partition.
pub fn stream_name(ingest_source: &str, partition: i32) -> String {
    format!("{ingest_source}/{partition}")
}

/// One partition's stored state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// When it was stored (RFC 3339).
    pub written_at: String,
    /// The rule pack it was taken with.
    pub rule_pack_hash: String,
    /// The last offset of the partition whose events the state includes.
    pub covered: i64,
    /// The engine's state of this partition.
    pub engine: EngineSnapshot,
}

/// What loading a partition's state found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// A stored snapshot was found.
    pub restored: bool,
    /// Rules whose stored state no longer fit (kind or key changed) and started empty.
    pub discarded: Vec<String>,
    /// Events replayed from the archive to catch up with it.
    pub replayed: u64,
}

#[derive(Debug)]
struct Tracked {
    covered: i64,
    last_saved: Instant,
    dirty: bool,
}

/// Loads, tracks and stores the rule state of the partitions one pipeline holds.
#[derive(Debug)]
pub struct RuleStateStore {
    enabled: bool,
    interval: Duration,
    replay_rows: usize,
    partitions: HashMap<String, Tracked>,
    /// Counters of the partitions already closed.
    closed: BTreeMap<String, StateCounters>,
}

impl RuleStateStore {
    /// A store for `engine` (which does nothing when it has no stateful rule).
    pub fn new(engine: &RuleEngine, interval: Duration, replay_rows: usize) -> Self {
        RuleStateStore {
            enabled: engine.has_stateful(),
            interval,
            replay_rows,
            partitions: HashMap::new(),
            closed: BTreeMap::new(),
        }
    }

    /// Makes `engine`'s stream of a partition whole: its stored state, then what the archive holds after it.
    /// `head` is the partition's chain head as the pipeline just resumed it.
    pub async fn open(
        &mut self,
        archive: &Archive,
        engine: &mut RuleEngine,
        ingest_source: &str,
        partition: i32,
        head: Option<&ChainHead>,
    ) -> Result<Loaded> {
        let mut loaded = Loaded::default();
        let stream = stream_name(ingest_source, partition);
        if !self.enabled || self.partitions.contains_key(&stream) {
            return Ok(loaded);
        }
        let path = state_path(ingest_source, partition);
        let Some(bytes) = archive.get_object(&path).await? else {
            // First start of these rules on this partition: store the empty state as of the chain head,
            // so a crash before the first checkpoint replays from here instead of starting empty again.
            let covered = head.map_or(i64::MIN, |h| h.last_offset);
            self.partitions.insert(stream.clone(), Tracked { covered, last_saved: Instant::now(), dirty: true });
            self.save(archive, engine, ingest_source, partition, true).await?;
            return Ok(loaded);
        };
        let stored: StoredState = serde_json::from_slice(&bytes).map_err(|e| Error::Config {
            origin: format!("{}/{path}", archive.location()),
            reason: format!("stored rule state is unreadable ({e}); move it away to start the rules empty"),
        })?;
        loaded.restored = true;
        loaded.discarded = engine.restore_in(&stream, stored.engine);
        for rule in &loaded.discarded {
            tracing::warn!(rule, %stream, "the rule's kind or key changed since its state was stored: it starts empty");
        }
        let mut covered = stored.covered;
        for entry in archive.chain(ingest_source, partition).await? {
            if !entry.has_data() || entry.last_offset <= covered {
                covered = covered.max(entry.last_offset);
                continue;
            }
            let batches = archive.read_events(&entry).await?;
            if let Some(events) = in_offset_order(&batches, covered)? {
                loaded.replayed += events.num_rows() as u64;
                let mut start = 0;
                while start < events.num_rows() {
                    let len = self.replay_rows.max(1).min(events.num_rows() - start);
                    engine.evaluate_in(&stream, &[events.slice(start, len)]).await?;
                    start += len;
                }
            }
            covered = entry.last_offset;
        }
        if loaded.replayed > 0 {
            tracing::info!(%stream, events = loaded.replayed, "rule state caught up with the archive");
        }
        let dirty = loaded.replayed > 0;
        self.partitions.insert(stream, Tracked { covered, last_saved: Instant::now(), dirty });
        Ok(loaded)
    }

    /// Notes that the partition's events up to `last_offset` went through the rules.
    pub fn covered(&mut self, ingest_source: &str, partition: i32, last_offset: i64) {
        if let Some(t) = self.partitions.get_mut(&stream_name(ingest_source, partition)) {
            t.covered = last_offset;
            t.dirty = true;
        }
    }

    /// The partition's rule state changed without new records (silence rules alerting on an idle partition).
    pub fn changed(&mut self, ingest_source: &str, partition: i32) {
        if let Some(t) = self.partitions.get_mut(&stream_name(ingest_source, partition)) {
            t.dirty = true;
        }
    }

    /// Whether the partition's state is due to be stored (its interval has passed): then the pipeline makes
    /// its last batch durable before the next one changes the state, so the state can be stored as of it.
    pub fn save_due(&self, ingest_source: &str, partition: i32) -> bool {
        self.enabled
            && self
                .partitions
                .get(&stream_name(ingest_source, partition))
                .is_some_and(|t| t.last_saved.elapsed() >= self.interval)
    }

    /// Stores the partition's state when the interval has passed (or `now`), if anything changed.
    pub async fn save(
        &mut self,
        archive: &Archive,
        engine: &RuleEngine,
        ingest_source: &str,
        partition: i32,
        now: bool,
    ) -> Result<()> {
        let stream = stream_name(ingest_source, partition);
        let Some(t) = self.partitions.get_mut(&stream) else { return Ok(()) };
        if !t.dirty || (!now && t.last_saved.elapsed() < self.interval) {
            return Ok(());
        }
        let stored = StoredState {
            version: STATE_VERSION,
            written_at: vigil_rules::format_time_us(vigil_evidence::now_us()),
            rule_pack_hash: engine.pack_hash().to_string(),
            covered: t.covered,
            engine: engine.snapshot_of(&stream),
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| Error::Internal(e.to_string()))?;
        archive.put_object(&state_path(ingest_source, partition), bytes).await?;
        t.last_saved = Instant::now();
        t.dirty = false;
        Ok(())
    }

    /// Stores the partition's state now and forgets it (the partition is done here).
    pub async fn close(
        &mut self,
        archive: &Archive,
        engine: &mut RuleEngine,
        ingest_source: &str,
        partition: i32,
    ) -> Result<()> {
        self.save(archive, engine, ingest_source, partition, true).await?;
        self.forget(engine, ingest_source, partition);
        Ok(())
    }

    /// Forgets the partition's state without storing it (its assignment was lost: the stored state and
    /// the archive are what its next owner continues from).
    pub fn forget(&mut self, engine: &mut RuleEngine, ingest_source: &str, partition: i32) {
        let stream = stream_name(ingest_source, partition);
        add_counters(&mut self.closed, &engine.stream_counters(&stream));
        self.partitions.remove(&stream);
        engine.drop_stream(&stream);
    }

    /// Counters of every stateful rule over the partitions this store held, closed or open.
    pub fn counters(&self, engine: &RuleEngine) -> BTreeMap<String, StateCounters> {
        let mut total = self.closed.clone();
        add_counters(&mut total, &engine.state_counters());
        total
    }
}

/// The rows of `batches` after offset `after`, sorted by offset (the order they were read in); `None`
/// when there are none.
fn in_offset_order(batches: &[RecordBatch], after: i64) -> Result<Option<RecordBatch>> {
    let Some(first) = batches.first() else { return Ok(None) };
    let all = concat_batches(&first.schema(), batches)?;
    let offsets = all
        .column_by_name(vigil_schema::INGEST_OFFSET)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| Error::Internal("archived events without ingest_offset".into()))?;
    let keep = arrow::compute::kernels::cmp::gt(offsets, &arrow::array::Int64Array::new_scalar(after))?;
    let kept = filter_record_batch(&all, &keep)?;
    if kept.num_rows() == 0 {
        return Ok(None);
    }
    let order =
        sort_to_indices(kept.column_by_name(vigil_schema::INGEST_OFFSET).unwrap_or(kept.column(0)), None, None)?;
    let order = UInt32Array::from(order.values().to_vec());
    Ok(Some(take_record_batch(&kept, &order)?))
}

//! Stateful rules' state per source partition, stored beside the evidence at
//! `{evidence}/state/rules/{ingest_source}/{partition}.json` with the offset it covers, so windows,
//! sequences and first-seen keys survive a restart and move with a Kafka partition to its new owner.
//!
//! ```text
//!  partition opened:  load its state ─> RuleEngine::restore ─> replay from the archive the ranges
//!                     committed after the covered offset (alerts discarded: they were raised and archived then)
//!  after a commit:    note the offset; store every `[rules] state_checkpoint_secs` (default 60)
//!  partition closed:  store now, drop it (end of file, Kafka revocation, end of run)
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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, sort_to_indices, take_record_batch};
use arrow::datatypes::Int64Type;
use serde::{Deserialize, Serialize};
use vigil_evidence::{Archive, ChainHead};
use vigil_rules::stateful::StateCounters;
use vigil_rules::{EngineSnapshot, PartitionState, RuleEngine};
use vigil_schema::PartitionId;

use crate::{Error, Result};

/// Format version of [`StoredState`].
const STATE_VERSION: u32 = 1;

/// Where a partition's state lives, relative to the archive root.
pub fn state_path(partition: &PartitionId) -> String {
    format!("state/rules/{}/{}.json", partition.source(), partition.partition)
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

/// The rule state one partition owns: its stateful rules' state, the offset it includes, and when it
/// was last stored.
#[derive(Debug)]
pub struct PartitionRules {
    /// The engine's state of this partition (handed to every [`RuleEngine`] call on its events).
    pub state: PartitionState,
    covered: i64,
    last_saved: Instant,
    dirty: bool,
}

impl PartitionRules {
    /// Notes that the partition's events up to `last_offset` went through the rules.
    pub fn covered(&mut self, last_offset: i64) {
        self.covered = last_offset;
        self.dirty = true;
    }

    /// The state changed without new records (silence rules alerting on an idle partition).
    pub fn changed(&mut self) {
        self.dirty = true;
    }
}

/// Loads and stores the rule state of the partitions one pipeline holds (each [`PartitionRules`] is
/// owned by its partition), and sums the counters of those already closed.
#[derive(Debug)]
pub struct RuleStateStore {
    enabled: bool,
    interval: Duration,
    replay_rows: usize,
    /// Counters of the partitions already closed.
    closed: BTreeMap<String, StateCounters>,
}

impl RuleStateStore {
    /// A store for `engine` (which stores nothing when it has no stateful rule).
    pub fn new(engine: &RuleEngine, interval: Duration, replay_rows: usize) -> Self {
        RuleStateStore { enabled: engine.has_stateful(), interval, replay_rows, closed: BTreeMap::new() }
    }

    /// A partition's rule state made whole: its stored state, then what the archive holds after it.
    /// `head` is the partition's chain head as the pipeline just resumed it.
    pub async fn open(
        &self,
        archive: &Archive,
        engine: &mut RuleEngine,
        partition: &PartitionId,
        head: Option<&ChainHead>,
    ) -> Result<(PartitionRules, Loaded)> {
        let mut loaded = Loaded::default();
        let mut rules =
            PartitionRules { state: engine.new_state(), covered: i64::MIN, last_saved: Instant::now(), dirty: false };
        if !self.enabled {
            return Ok((rules, loaded));
        }
        let path = state_path(partition);
        let Some(bytes) = archive.get_object(&path).await? else {
            // First start of these rules on this partition: store the empty state as of the chain head,
            // so a crash before the first checkpoint replays from here instead of starting empty again.
            rules.covered = head.map_or(i64::MIN, |h| h.last_offset);
            rules.dirty = true;
            self.save(archive, engine, partition, &mut rules, true).await?;
            return Ok((rules, loaded));
        };
        let stored: StoredState = serde_json::from_slice(&bytes).map_err(|e| Error::Config {
            origin: format!("{}/{path}", archive.location()),
            reason: format!("stored rule state is unreadable ({e}); move it away to start the rules empty"),
        })?;
        loaded.restored = true;
        loaded.discarded = engine.restore(&mut rules.state, stored.engine);
        for rule in &loaded.discarded {
            tracing::warn!(rule, %partition, "the rule's kind or key changed since its state was stored: it starts empty");
        }
        let mut covered = stored.covered;
        for entry in archive.chain(partition).await? {
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
                    engine.evaluate(&mut rules.state, &[events.slice(start, len)]).await?;
                    start += len;
                }
            }
            covered = entry.last_offset;
        }
        if loaded.replayed > 0 {
            tracing::info!(%partition, events = loaded.replayed, "rule state caught up with the archive");
        }
        rules.covered = covered;
        rules.dirty = loaded.replayed > 0;
        Ok((rules, loaded))
    }

    /// Whether the partition's state is due to be stored (its interval has passed): then the pipeline makes
    /// its last batch durable before the next one changes the state, so the state can be stored as of it.
    pub fn save_due(&self, rules: &PartitionRules) -> bool {
        self.enabled && rules.last_saved.elapsed() >= self.interval
    }

    /// Stores the partition's state when the interval has passed (or `now`), if anything changed.
    pub async fn save(
        &self,
        archive: &Archive,
        engine: &RuleEngine,
        partition: &PartitionId,
        rules: &mut PartitionRules,
        now: bool,
    ) -> Result<()> {
        if !self.enabled || !rules.dirty || (!now && rules.last_saved.elapsed() < self.interval) {
            return Ok(());
        }
        let stored = StoredState {
            version: STATE_VERSION,
            written_at: vigil_rules::format_time_us(vigil_evidence::now_us()),
            rule_pack_hash: engine.pack_hash().to_string(),
            covered: rules.covered,
            engine: engine.snapshot(&rules.state),
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| Error::Internal(e.to_string()))?;
        archive.put_object(&state_path(partition), bytes).await?;
        rules.last_saved = Instant::now();
        rules.dirty = false;
        Ok(())
    }

    /// Stores the partition's state now; it is done here (end of file, revocation, end of run).
    pub async fn close(
        &mut self,
        archive: &Archive,
        engine: &RuleEngine,
        partition: &PartitionId,
        mut rules: PartitionRules,
    ) -> Result<()> {
        self.save(archive, engine, partition, &mut rules, true).await?;
        self.forget(engine, rules);
        Ok(())
    }

    /// Drops the partition's state without storing it (its assignment was lost: the stored state and
    /// the archive are what its next owner continues from); its counters still count.
    pub fn forget(&mut self, engine: &RuleEngine, rules: PartitionRules) {
        StateCounters::add_into(&mut self.closed, &engine.counters(&rules.state));
    }

    /// Counters of every stateful rule over the partitions this store held: those closed and `open`.
    pub fn counters<'a>(
        &self,
        engine: &RuleEngine,
        open: impl IntoIterator<Item = &'a PartitionRules>,
    ) -> BTreeMap<String, StateCounters> {
        let mut total = self.closed.clone();
        for rules in open {
            StateCounters::add_into(&mut total, &engine.counters(&rules.state));
        }
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

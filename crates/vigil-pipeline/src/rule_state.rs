//! Stateful rules' state, stored beside the evidence at `{evidence}/state/rules.json` with the offsets it
//! covers, so windows, sequences and first-seen keys survive a restart.
//!
//! ```text
//!  start:   load rules.json ─> RuleEngine::restore ─> replay from the archive every committed range
//!           after the offsets the snapshot covers (alerts discarded: they were raised and archived then)
//!  running: after each commit, note the partition's last offset; store a snapshot every
//!           `[rules] state_checkpoint_secs` (default 60) and when the run ends
//! ```
//!
//! The archive is the source of truth: a crash between two snapshots costs a replay of the events
//! archived since, never a wrong or missing alert. The first start stores an empty snapshot as of the
//! archive's chain heads (an existing archive is not replayed from its beginning). A rule whose kind or key columns changed starts
//! empty (with a warning); one whose other text changed keeps its state. The snapshot is replaced in
//! place: on an Object Lock bucket each replacement is kept as a version until its retention ends, so a
//! longer checkpoint interval keeps that small. How big the state can get is bounded per rule (see
//! `vigil_rules::stateful`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, sort_to_indices, take_record_batch};
use arrow::datatypes::Int64Type;
use serde::{Deserialize, Serialize};
use vigil_evidence::Archive;
use vigil_rules::{EngineSnapshot, RuleEngine};

use crate::{Error, Result};

/// Where the state lives, relative to the archive root.
pub const STATE_PATH: &str = "state/rules.json";

/// Format version of [`StoredState`].
const STATE_VERSION: u32 = 1;

/// The stored state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// When it was stored (RFC 3339).
    pub written_at: String,
    /// The rule pack it was taken with.
    pub rule_pack_hash: String,
    /// Per chain (`ingest_source/partition`), the last offset whose events the state includes.
    pub covered: BTreeMap<String, i64>,
    /// The engine's state.
    pub engine: EngineSnapshot,
}

/// Loads, tracks and stores the rule state of one pipeline.
#[derive(Debug)]
pub struct RuleStateStore {
    enabled: bool,
    covered: BTreeMap<String, i64>,
    interval: Duration,
    last_saved: Instant,
    dirty: bool,
}

/// What loading found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// A stored snapshot was found.
    pub restored: bool,
    /// Rules whose stored state no longer fit (kind or key changed) and started empty.
    pub discarded: Vec<String>,
    /// Events replayed from the archive to catch up with it.
    pub replayed: u64,
}

fn chain_key(ingest_source: &str, partition: i32) -> String {
    format!("{ingest_source}/{partition}")
}

impl RuleStateStore {
    /// Restores the engine's state from `archive` and replays what was archived after it. A store for an
    /// engine without stateful rules does nothing.
    pub async fn load(
        archive: &Archive,
        engine: &mut RuleEngine,
        interval: Duration,
        replay_rows: usize,
    ) -> Result<(Self, Loaded)> {
        let mut store = RuleStateStore {
            enabled: engine.has_stateful(),
            covered: BTreeMap::new(),
            interval,
            last_saved: Instant::now(),
            dirty: false,
        };
        let mut loaded = Loaded::default();
        if !store.enabled {
            return Ok((store, loaded));
        }
        let Some(bytes) = archive.get_object(STATE_PATH).await? else {
            // First start of these rules: store the empty state as of what the archive already holds, so
            // a crash before the first checkpoint replays from here instead of starting empty again.
            for (source, partition) in archive.chains().await? {
                if let Some(head) = archive.chain_head(&source, partition).await? {
                    store.covered.insert(chain_key(&source, partition), head.last_offset);
                }
            }
            store.dirty = true;
            store.save(archive, engine, true).await?;
            return Ok((store, loaded));
        };
        let stored: StoredState = serde_json::from_slice(&bytes).map_err(|e| Error::Config {
            origin: format!("{}/{STATE_PATH}", archive.location()),
            reason: format!("stored rule state is unreadable ({e}); move it away to start the rules empty"),
        })?;
        loaded.restored = true;
        loaded.discarded = engine.restore(stored.engine);
        for rule in &loaded.discarded {
            tracing::warn!(rule, "the rule's kind or key changed since its state was stored: it starts empty");
        }
        store.covered = stored.covered;
        for (source, partition) in archive.chains().await? {
            let key = chain_key(&source, partition);
            let after = store.covered.get(&key).copied().unwrap_or(i64::MIN);
            let entries = archive.chain(&source, partition).await?;
            for entry in entries.iter().filter(|e| e.has_data() && e.last_offset > after) {
                let batches = archive.read_events(entry).await?;
                let Some(events) = in_offset_order(&batches, after)? else { continue };
                loaded.replayed += events.num_rows() as u64;
                let mut start = 0;
                while start < events.num_rows() {
                    let len = replay_rows.max(1).min(events.num_rows() - start);
                    engine.evaluate(&[events.slice(start, len)]).await?;
                    start += len;
                }
            }
            if let Some(last) = entries.last() {
                store.covered.insert(key, last.last_offset.max(after));
            }
        }
        if loaded.replayed > 0 {
            tracing::info!(events = loaded.replayed, "rule state caught up with the archive");
            store.dirty = true;
        }
        Ok((store, loaded))
    }

    /// Notes that the events of `ingest_source/partition` up to `last_offset` went through the rules.
    pub fn covered(&mut self, ingest_source: &str, partition: i32, last_offset: i64) {
        if self.enabled {
            self.covered.insert(chain_key(ingest_source, partition), last_offset);
            self.dirty = true;
        }
    }

    /// Stores the state when the interval has passed (or `now`), if anything changed.
    pub async fn save(&mut self, archive: &Archive, engine: &RuleEngine, now: bool) -> Result<()> {
        if !self.enabled || !self.dirty || (!now && self.last_saved.elapsed() < self.interval) {
            return Ok(());
        }
        let stored = StoredState {
            version: STATE_VERSION,
            written_at: vigil_rules::format_time_us(vigil_evidence::now_us()),
            rule_pack_hash: engine.pack_hash().to_string(),
            covered: self.covered.clone(),
            engine: engine.snapshot(),
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| Error::Internal(e.to_string()))?;
        archive.put_object(STATE_PATH, bytes).await?;
        self.last_saved = Instant::now();
        self.dirty = false;
        Ok(())
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

//! Whether a running pipeline is alive and ready: what `/healthz` and `/readyz` answer.
//!
//! **Alive** (`/healthz`): the pipeline's loop ticks (it returns to waiting for input at least every few
//! seconds) and no partition is stuck. A partition is stuck when records of it have been waiting (an
//! open batch past its close deadline, or a closed batch whose archive write has not settled) and
//! nothing of it became durable for longer than `stuck_after` (`[pipeline] stuck_after_secs`). The
//! clock of an open batch starts at its close deadline (`batch_ms` after its first record), so a long
//! `batch_ms` is not taken for a stall; the clock restarts whenever a write of the partition settles, so
//! a partition with a steady backlog that keeps settling is not stuck either.
//!
//! **Ready** (`/readyz`): the config is loaded, the rules are compiled, the evidence store was reached
//! (at start, then after each durable write: a failed write, or a store that keeps failing while a write
//! waits it out, makes it not ready), Kafka inputs have joined their consumer group (an assignment
//! arrived, even an empty one), and no shutdown is under way: from the moment SIGTERM starts the drain,
//! `/readyz` answers 503.
//!
//! Updates happen once per batch, per input chunk or per loop tick, never per record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use vigil_schema::PartitionId;

/// What the evidence store's retry loop reports (see `vigil_evidence::retry`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// Failed attempts of store operations so far (each one retried); counted in
    /// `vigil_errors_total{stage="archive"}`.
    pub failed_attempts: u64,
    /// Since when some operation has been failing and is still being retried; `None` when none is.
    pub failing_since: Option<SystemTime>,
    /// The last error seen.
    pub last_error: Option<String>,
}

/// Asks the evidence store's retry loop how it is doing.
pub type StoreProbe = Arc<dyn Fn() -> StoreStatus + Send + Sync>;

/// The default of `[pipeline] stuck_after_secs`.
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Store {
    /// Not reached yet.
    Unchecked,
    Reachable,
    /// The last write failed.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kafka {
    /// No Kafka input is being read.
    NotUsed,
    /// The consumer is joining its group: no assignment yet.
    Joining(Instant),
    /// An assignment arrived.
    Joined,
}

/// One source partition, as liveness and the shutdown report see it.
#[derive(Debug, Clone)]
struct Part {
    input: String,
    /// Offsets up to here are durable in the archive.
    durable_through: i64,
    /// Offsets up to here are in closed batches (their archive write may not have settled).
    closed_through: i64,
    /// Offsets up to here were read (reported per input chunk).
    read_through: i64,
    /// First offset of the open batch.
    open_from: Option<i64>,
    /// When records started waiting (an open batch: its close deadline); `None` when nothing waits.
    waiting_since: Option<Instant>,
    /// When a write of this partition last settled (or the partition was opened).
    last_progress: Instant,
}

impl Part {
    fn waiting(&self) -> bool {
        self.open_from.is_some() || self.closed_through > self.durable_through
    }

    /// How long records have waited without progress, and since when.
    fn stalled(&self, now: Instant) -> Option<(Instant, Duration)> {
        let since = self.waiting_since?.max(self.last_progress);
        self.waiting().then(|| (since, now.saturating_duration_since(since)))
    }

    fn last_read(&self) -> i64 {
        self.read_through.max(self.closed_through)
    }
}

#[derive(Debug)]
struct State {
    stuck_after: Duration,
    config_loaded: bool,
    rules_compiled: bool,
    store: Store,
    kafka: Kafka,
    draining_since: Option<SystemTime>,
    stopped: bool,
    last_tick: Instant,
    partitions: BTreeMap<PartitionId, Part>,
}

/// Liveness and readiness of one pipeline; shared by the pipeline (which reports) and the HTTP endpoint
/// (which asks). Cheap to query.
pub struct Health {
    state: Mutex<State>,
    probe: Mutex<Option<StoreProbe>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").field("state", &*self.lock()).finish_non_exhaustive()
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Nothing loaded yet: alive (the loop's clock starts now), not ready.
    pub fn new() -> Self {
        Health {
            state: Mutex::new(State {
                stuck_after: DEFAULT_STUCK_AFTER,
                config_loaded: false,
                rules_compiled: false,
                store: Store::Unchecked,
                kafka: Kafka::NotUsed,
                draining_since: None,
                stopped: false,
                last_tick: Instant::now(),
                partitions: BTreeMap::new(),
            }),
            probe: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long records may wait without progress before the pipeline counts as stuck.
    pub fn set_stuck_after(&self, limit: Duration) {
        self.lock().stuck_after = limit.max(Duration::from_millis(1));
    }

    /// The stuck limit.
    pub fn stuck_after(&self) -> Duration {
        self.lock().stuck_after
    }

    /// How often the loop should tick: often enough that a quarter of the stuck limit never passes
    /// without one (at most every 5 s, at least every 10 ms).
    pub fn tick_interval(&self) -> Duration {
        (self.stuck_after() / 4).clamp(Duration::from_millis(10), Duration::from_secs(5))
    }

    /// The config was loaded and checked.
    pub fn config_loaded(&self) {
        self.lock().config_loaded = true;
    }

    /// The rules were compiled.
    pub fn rules_compiled(&self) {
        self.lock().rules_compiled = true;
    }

    /// The evidence store answered (at start, or a write became durable).
    pub fn store_reachable(&self) {
        self.lock().store = Store::Reachable;
    }

    /// A write to the evidence store failed.
    pub fn store_failed(&self, reason: &str) {
        self.lock().store = Store::Failed(reason.to_string());
    }

    /// Where to ask whether store operations are failing right now (they are retried meanwhile).
    pub fn set_store_probe(&self, probe: StoreProbe) {
        *self.probe.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(probe);
    }

    /// What the store probe says (zeros without one).
    pub fn store_status(&self) -> StoreStatus {
        let probe = self.probe.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        probe.map(|p| p()).unwrap_or_default()
    }

    /// The Kafka inputs start: not ready until the consumer group gives an assignment.
    pub fn kafka_joining(&self) {
        self.lock().kafka = Kafka::Joining(Instant::now());
    }

    /// The consumer group gave this member an assignment (possibly empty).
    pub fn kafka_joined(&self) {
        self.lock().kafka = Kafka::Joined;
    }

    /// A shutdown was requested: not ready from now on.
    pub fn draining(&self) {
        let mut state = self.lock();
        if state.draining_since.is_none() {
            state.draining_since = Some(SystemTime::now());
        }
    }

    /// Whether a shutdown was requested.
    pub fn is_draining(&self) -> bool {
        self.lock().draining_since.is_some()
    }

    /// The pipeline returned.
    pub fn stopped(&self) {
        self.lock().stopped = true;
    }

    /// The loop came round.
    pub fn tick(&self) {
        self.lock().last_tick = Instant::now();
    }

    /// A source partition is opened; offsets up to `durable_through` are in the archive already.
    pub fn partition_opened(&self, id: &PartitionId, input: &str, durable_through: i64) {
        self.lock().partitions.insert(
            id.clone(),
            Part {
                input: input.to_string(),
                durable_through,
                closed_through: durable_through,
                read_through: durable_through,
                open_from: None,
                waiting_since: None,
                last_progress: Instant::now(),
            },
        );
    }

    /// A partition is done here (its file ended, it was revoked).
    pub fn partition_closed(&self, id: &PartitionId) {
        self.lock().partitions.remove(id);
    }

    /// A batch of the partition opened at offset `first`; it closes within `closes_in`.
    pub fn batch_opened(&self, id: &PartitionId, first: i64, closes_in: Duration) {
        let mut state = self.lock();
        let Some(part) = state.partitions.get_mut(id) else { return };
        if !part.waiting() {
            part.waiting_since = Some(Instant::now() + closes_in);
        }
        part.open_from = Some(first);
        part.read_through = part.read_through.max(first);
    }

    /// Records of the partition were read up to `last` (once per input chunk).
    pub fn read_through(&self, id: &PartitionId, last: i64) {
        if let Some(part) = self.lock().partitions.get_mut(id) {
            part.read_through = part.read_through.max(last);
        }
    }

    /// The partition's open batch closed at offset `last` and goes down the stages to the archive.
    pub fn batch_closed(&self, id: &PartitionId, last: i64) {
        let mut state = self.lock();
        let Some(part) = state.partitions.get_mut(id) else { return };
        part.open_from = None;
        part.closed_through = part.closed_through.max(last);
        part.read_through = part.read_through.max(last);
        // Closed before its deadline (full): its write waits from now.
        let now = Instant::now();
        part.waiting_since = part.waiting_since.map(|since| since.min(now)).or(Some(now));
    }

    /// The partition is durable in the archive up to `through`.
    pub fn durable(&self, id: &PartitionId, through: i64) {
        let mut state = self.lock();
        let Some(part) = state.partitions.get_mut(id) else { return };
        part.durable_through = part.durable_through.max(through);
        part.closed_through = part.closed_through.max(through);
        part.read_through = part.read_through.max(through);
        part.last_progress = Instant::now();
        if !part.waiting() {
            part.waiting_since = None;
        }
    }

    /// `Ok(text)` while alive, `Err(text)` naming what is stuck and since when.
    pub fn liveness(&self) -> Result<String, String> {
        let state = self.lock();
        let now = Instant::now();
        let limit = state.stuck_after;
        let mut stuck = Vec::new();
        let quiet = now.saturating_duration_since(state.last_tick);
        if quiet > limit && !state.stopped {
            stuck.push(format!(
                "stuck: the pipeline loop has not come round since {} ({} s)",
                wall(state.last_tick, now),
                quiet.as_secs()
            ));
        }
        for (id, part) in &state.partitions {
            let Some((since, waited)) = part.stalled(now) else { continue };
            if waited > limit {
                stuck.push(format!(
                    "stuck: {id} ({}): records waiting without progress since {} ({} s): {}",
                    part.input,
                    wall(since, now),
                    waited.as_secs(),
                    not_durable_text(part)
                ));
            }
        }
        if stuck.is_empty() {
            let waiting = state.partitions.values().filter(|p| p.waiting()).count();
            Ok(format!(
                "ok: the loop came round {} ms ago; {} partition(s) open, {waiting} with records not yet durable, \
                 none waiting longer than {} s\n",
                quiet.as_millis(),
                state.partitions.len(),
                limit.as_secs_f64()
            ))
        } else {
            Err(format!("{}\n(stuck_after_secs = {})\n", stuck.join("\n"), limit.as_secs_f64()))
        }
    }

    /// `Ok(text)` when ready, `Err(text)` with every reason it is not.
    pub fn readiness(&self) -> Result<String, String> {
        let store = self.store_status();
        let state = self.lock();
        let now = Instant::now();
        let mut not = Vec::new();
        if let Some(since) = state.draining_since {
            not.push(format!("draining since {}: shutting down, finishing the open batches", rfc3339(since)));
        }
        if state.stopped {
            not.push("stopped: the pipeline returned".to_string());
        }
        if !state.config_loaded {
            not.push("the config is not loaded yet".to_string());
        }
        if !state.rules_compiled {
            not.push("the rules are not compiled yet".to_string());
        }
        match &state.store {
            Store::Unchecked => not.push("the evidence store has not been reached yet".to_string()),
            Store::Failed(reason) => not.push(format!("the last write to the evidence store failed: {reason}")),
            Store::Reachable => {}
        }
        if let Some(since) = store.failing_since {
            not.push(format!(
                "the evidence store has been failing since {} (writes are retried, input is paused): {}",
                rfc3339(since),
                store.last_error.as_deref().unwrap_or("unknown error")
            ));
        }
        if let Kafka::Joining(since) = state.kafka {
            not.push(format!(
                "the Kafka consumer has not joined its group yet (waiting {} s for an assignment)",
                now.saturating_duration_since(since).as_secs()
            ));
        }
        if !not.is_empty() {
            return Err(format!("not ready: {}\n", not.join("; ")));
        }
        Ok(match state.kafka {
            Kafka::Joined => {
                format!("ready: consumer group joined; {} partition(s) open\n", state.partitions.len())
            }
            _ => "ready\n".to_string(),
        })
    }

    /// What was read but is not durable, one line per partition (for the shutdown time limit's report).
    pub fn not_durable(&self) -> Vec<String> {
        let state = self.lock();
        state
            .partitions
            .iter()
            .filter(|(_, p)| p.last_read() > p.durable_through || p.open_from.is_some())
            .map(|(id, p)| format!("{id} ({}): {}", p.input, not_durable_text(p)))
            .collect()
    }
}

fn not_durable_text(part: &Part) -> String {
    let first = part.durable_through + 1;
    let last = part.last_read().max(part.open_from.unwrap_or(first));
    let open = match part.open_from {
        Some(from) => format!("; in the open batch from offset {from}"),
        None => String::new(),
    };
    format!("offsets {first}-{last} not durable (durable through {}){open}", part.durable_through)
}

/// The wall-clock time of `at`, seen from `now`.
fn wall(at: Instant, now: Instant) -> String {
    let ago = now.saturating_duration_since(at);
    rfc3339(SystemTime::now().checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH))
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(150);

    fn ready_health() -> Health {
        let h = Health::new();
        h.set_stuck_after(LIMIT);
        h.config_loaded();
        h.rules_compiled();
        h.store_reachable();
        h
    }

    fn pause(d: Duration) {
        std::thread::sleep(d);
    }

    #[test]
    fn a_partition_whose_write_does_not_settle_is_stuck_after_the_limit_and_named() {
        let h = ready_health();
        h.partition_opened(&PartitionId::new("logs", 2), "kafka://b/logs/2", 99);
        h.batch_opened(&PartitionId::new("logs", 2), 100, Duration::ZERO);
        h.read_through(&PartitionId::new("logs", 2), 140);
        h.batch_closed(&PartitionId::new("logs", 2), 150);
        h.tick();
        assert!(h.liveness().is_ok(), "{:?}", h.liveness());
        pause(LIMIT + Duration::from_millis(50));
        h.tick();
        let text = h.liveness().expect_err("stuck");
        assert!(text.contains("stuck: logs/2 (kafka://b/logs/2)"), "{text}");
        assert!(text.contains("offsets 100-150 not durable (durable through 99)"), "{text}");
        assert!(text.contains("records waiting without progress since 20"), "an RFC 3339 time: {text}");
        // The write settles: progress, nothing waits, alive again.
        h.durable(&PartitionId::new("logs", 2), 150);
        assert!(h.liveness().is_ok());
        assert!(h.not_durable().is_empty());
    }

    #[test]
    fn an_open_batch_counts_from_its_deadline_and_settling_writes_are_progress() {
        let h = ready_health();
        h.partition_opened(&PartitionId::new("file-ab", 0), "app.log", 0);
        // A batch that closes only after 10 limits: waiting for its deadline is not a stall.
        h.batch_opened(&PartitionId::new("file-ab", 0), 1, LIMIT * 10);
        pause(LIMIT + Duration::from_millis(50));
        h.tick();
        assert!(h.liveness().is_ok(), "{:?}", h.liveness());
        assert_eq!(
            h.not_durable(),
            vec!["file-ab/0 (app.log): offsets 1-1 not durable (durable through 0); in the open batch from offset 1"]
        );
        // A steady backlog: each write settles within the limit while the next batch waits.
        h.batch_closed(&PartitionId::new("file-ab", 0), 10);
        for round in 1..=4 {
            h.batch_opened(&PartitionId::new("file-ab", 0), 10 * round + 1, Duration::ZERO);
            pause(LIMIT / 2);
            h.durable(&PartitionId::new("file-ab", 0), 10 * round);
            h.batch_closed(&PartitionId::new("file-ab", 0), 10 * round + 10);
            h.tick();
            assert!(h.liveness().is_ok(), "round {round}: {:?}", h.liveness());
        }
        // Then the writes stop settling.
        pause(LIMIT + Duration::from_millis(50));
        h.tick();
        let text = h.liveness().expect_err("stuck");
        assert!(text.contains("file-ab/0 (app.log)") && text.contains("offsets 41-50"), "{text}");
        h.partition_closed(&PartitionId::new("file-ab", 0));
        assert!(h.liveness().is_ok());
    }

    #[test]
    fn a_loop_that_does_not_come_round_is_stuck() {
        let h = ready_health();
        h.tick();
        pause(LIMIT + Duration::from_millis(50));
        let text = h.liveness().expect_err("stuck");
        assert!(text.contains("the pipeline loop has not come round since"), "{text}");
        h.tick();
        assert!(h.liveness().is_ok());
    }

    #[test]
    fn readiness_wants_config_rules_store_and_a_group_and_ends_with_the_drain() {
        let h = Health::new();
        let text = h.readiness().expect_err("nothing loaded");
        for reason in ["config is not loaded", "rules are not compiled", "evidence store has not been reached"] {
            assert!(text.contains(reason), "{text}");
        }
        h.config_loaded();
        h.rules_compiled();
        h.store_reachable();
        assert_eq!(h.readiness(), Ok("ready\n".to_string()));
        h.kafka_joining();
        assert!(h.readiness().expect_err("joining").contains("has not joined its group"));
        h.kafka_joined();
        h.partition_opened(&PartitionId::new("logs", 0), "kafka://b/logs/0", -1);
        assert!(h.readiness().expect("ready").contains("1 partition(s) open"));
        h.store_failed("disk full");
        assert!(h.readiness().expect_err("failed write").contains("disk full"));
        h.store_reachable();
        h.set_store_probe(Arc::new(|| StoreStatus {
            failed_attempts: 3,
            failing_since: Some(SystemTime::now()),
            last_error: Some("503 SlowDown".into()),
        }));
        assert!(h.readiness().expect_err("store failing").contains("503 SlowDown"));
        h.set_store_probe(Arc::new(StoreStatus::default));
        assert!(h.readiness().is_ok());
        h.draining();
        assert!(h.readiness().expect_err("draining").starts_with("not ready: draining since 20"));
        assert!(h.liveness().is_ok(), "a drain is alive");
    }
}

//! What one rule may use on one micro-batch, and what happens when it uses more.
//!
//! Rules are written by people and run unattended, so a mistake in one (a join that multiplies rows, a
//! cast that fails on one value, a regex that never ends on one line) must not stop, blind or crash the
//! pipeline. Each rule evaluation runs:
//!
//! - with its own DataFusion memory pool of [`RuleBudget::memory_bytes`] (no spilling to disk), and its
//!   result held to the same size;
//! - within [`RuleBudget::time`] of wall-clock time per batch: every operator of its plan checks the
//!   clock before each batch it produces, so an operator that never waits is cut too;
//! - until a stop is requested (SIGTERM): then it has [`STOP_GRACE`] to finish;
//! - with panics caught.
//!
//! A rule that goes over, fails or panics is **quarantined** for the rest of the run: it is no longer
//! evaluated, and one `rule_failed` alert (severity high, the rule's criteria) names the rule, the reason
//! and the batch. The other rules' alerts, the evidence and the offsets are not touched by it. Rules
//! that can only be mistakes are refused before they ever run ([`crate::validate`]).
//!
//! Event time is guarded too: the stateful rules' event time (their watermark) never moves past the wall
//! clock, or one record dated 2099 would make every later event late. An event dated ahead, but within
//! [`EngineOptions::max_future_skew`] (clocks a little off), is evaluated and moves event time to now; one
//! dated further is archived as it is but does not move event time and does not enter any rule's state;
//! it is counted and named by one `event_time_in_future` alert per batch. A stored state whose watermark
//! lies past that limit (written before this guard) is not trusted: event time starts again.
//!
//! [`EngineOptions::max_future_skew`]: crate::EngineOptions::max_future_skew

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{FutureExt, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::alert::{Alert, alert_id, format_time_us};
use crate::rule::Rule;

/// Once a stop is requested, how long a rule still running on a batch may take before it is cut.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Rule id of the alert raised when a rule is quarantined.
pub const RULE_FAILED: &str = "rule_failed";

/// Rule id of the alert that names a batch's events dated too far in the future.
pub const EVENT_TIME_IN_FUTURE: &str = "event_time_in_future";

/// Most event ids one `event_time_in_future` alert lists (its `count` field has the total).
pub const MAX_NAMED_EVENTS: usize = 1000;

/// What one rule may use on one micro-batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleBudget {
    /// Memory of the rule's operators (a DataFusion pool of its own, no spilling) and of its result.
    pub memory_bytes: usize,
    /// Wall-clock time to plan, run and collect the rule over one batch.
    pub time: Duration,
}

impl Default for RuleBudget {
    fn default() -> Self {
        RuleBudget { memory_bytes: 256 << 20, time: Duration::from_secs(30) }
    }
}

/// Why a rule was quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    /// The rule's id.
    pub rule_id: String,
    /// What happened, in a sentence (the first line of the engine's error, or the limit passed).
    pub reason: String,
}

/// A rule's own execution context: its memory pool, no spill files.
pub(crate) fn task_context(state: &SessionState, budget: &RuleBudget) -> datafusion::error::Result<Arc<TaskContext>> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(GreedyMemoryPool::new(budget.memory_bytes)))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
        .build_arc()?;
    Ok(Arc::new(TaskContext::from(state).with_runtime(runtime)))
}

/// The clock of one rule evaluation: when it must end, and whether a stop moved that earlier. Every
/// operator of the rule's plan looks at it before each batch it produces ([`Guarded`]), so even an
/// operator that never waits (a cross join multiplying rows) is cut on time, without tokio timers.
/// The stop request is read here too (not by a task waiting on it): an operator that never waits keeps
/// its task from ever looking at anything else.
#[derive(Debug)]
struct Watchdog {
    started: Instant,
    /// Microseconds after `started` at which the evaluation is cut.
    limit_us: AtomicU64,
    /// `true` once a stop is requested.
    stop: Option<watch::Receiver<bool>>,
    /// A stop request was seen and moved the limit.
    stopped: AtomicBool,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Watchdog {
    fn new(time: Duration, stop: Option<watch::Receiver<bool>>) -> Self {
        Watchdog {
            started: Instant::now(),
            limit_us: AtomicU64::new(micros(time)),
            stop,
            stopped: AtomicBool::new(false),
        }
    }

    fn expired(&self) -> bool {
        let elapsed = micros(self.started.elapsed());
        if !self.stopped.load(Ordering::Relaxed) && self.stop.as_ref().is_some_and(|s| *s.borrow()) {
            self.limit_us.fetch_min(elapsed.saturating_add(micros(STOP_GRACE)), Ordering::Relaxed);
            self.stopped.store(true, Ordering::Relaxed);
        }
        elapsed > self.limit_us.load(Ordering::Relaxed)
    }

    /// Why the evaluation was cut.
    fn reason(&self, budget: &RuleBudget) -> String {
        if self.stopped.load(Ordering::Relaxed) {
            format!(
                "it was still running {:.1} s after the batch started and {} s after shutdown was requested",
                self.started.elapsed().as_secs_f64(),
                STOP_GRACE.as_secs()
            )
        } else {
            format!(
                "it ran longer than the time limit of {} s on one batch ([rules] time_limit_secs)",
                budget.time.as_secs_f64()
            )
        }
    }
}

/// Marks the error a [`Guarded`] operator raises when its watchdog expired.
const CUT: &str = "vigil rule watchdog: evaluation cut";

/// A plan node that runs its inner node, checking the watchdog before each batch. It is transparent:
/// the same children, properties and display as the node it wraps.
#[derive(Debug)]
struct Guarded {
    inner: Arc<dyn ExecutionPlan>,
    watchdog: Arc<Watchdog>,
}

impl DisplayAs for Guarded {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.inner.fmt_as(t, f)
    }
}

#[allow(deprecated)] // `with_new_children` is still a required method in DataFusion 55
impl ExecutionPlan for Guarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn downcast_delegate(&self) -> Option<&dyn ExecutionPlan> {
        Some(self.inner.as_ref())
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inner.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let inner = self.inner.clone().with_new_children(children)?;
        Ok(Arc::new(Guarded { inner, watchdog: self.watchdog.clone() }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        let schema = self.inner.schema();
        let inner = self.inner.execute(partition, context)?;
        let guarded = GuardedStream { inner, watchdog: self.watchdog.clone() };
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, guarded)))
    }
}

/// The stream of a [`Guarded`] node: ends with an error once the watchdog expired, and spends tokio's
/// cooperative budget per batch, so a worker held by an operator that never waits still gets back to
/// its timers and signal handlers (SIGTERM) every so often.
struct GuardedStream {
    inner: SendableRecordBatchStream,
    watchdog: Arc<Watchdog>,
}

impl futures::Stream for GuardedStream {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Option<Self::Item>> {
        if self.watchdog.expired() {
            return Poll::Ready(Some(Err(DataFusionError::ResourcesExhausted(CUT.into()))));
        }
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let polled = self.inner.poll_next_unpin(cx);
        if polled.is_ready() {
            coop.made_progress();
        }
        polled
    }
}

/// Every node of `plan` guarded by `watchdog`.
fn guard(plan: Arc<dyn ExecutionPlan>, watchdog: &Arc<Watchdog>) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    let guarded = plan.transform_up(|node| {
        let node: Arc<dyn ExecutionPlan> = Arc::new(Guarded { inner: node, watchdog: watchdog.clone() });
        Ok(Transformed::yes(node))
    })?;
    Ok(guarded.data)
}

/// Plans and runs one rule's `plan` within `budget`; the result batches, or why the rule must stop.
pub(crate) async fn run_rule(
    state: &SessionState,
    plan: &LogicalPlan,
    task: Arc<TaskContext>,
    budget: RuleBudget,
    stop: Option<watch::Receiver<bool>>,
) -> Result<Vec<RecordBatch>, String> {
    let watchdog = Arc::new(Watchdog::new(budget.time, stop));
    let error = |e: DataFusionError| {
        if watchdog.expired() || e.to_string().contains(CUT) { watchdog.reason(&budget) } else { first_line(&e) }
    };
    let work = async {
        let physical = state.create_physical_plan(plan).await.map_err(error)?;
        let physical = guard(physical, &watchdog).map_err(error)?;
        let mut stream = datafusion::physical_plan::execute_stream(physical, task).map_err(error)?;
        let mut out = Vec::new();
        let mut held = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(error)?;
            held += batch_bytes(&batch);
            if held > budget.memory_bytes {
                return Err(format!(
                    "its result passed the memory limit of {} MiB ([rules] memory_limit_mb)",
                    budget.memory_bytes >> 20
                ));
            }
            if watchdog.expired() {
                return Err(watchdog.reason(&budget));
            }
            out.push(batch);
        }
        Ok(out)
    };
    let work = AssertUnwindSafe(work).catch_unwind().map(|r| match r {
        Ok(result) => result,
        Err(panic) => {
            Err(format!("it panicked (a bug in vigil or DataFusion; please report it): {}", panic_text(&panic)))
        }
    });
    work.await
}

/// Bytes a batch holds, counting only the slices it uses of shared buffers.
fn batch_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or_else(|_| c.get_array_memory_size()))
        .sum()
}

fn first_line(e: &DataFusionError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Where a batch came from, for the alerts that name it: ingest source, partition, first and last offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BatchOrigin {
    ingest_source: String,
    partition: i32,
    first_offset: i64,
    last_offset: i64,
    newest_us: Option<i64>,
}

impl BatchOrigin {
    pub(crate) fn of(batches: &[RecordBatch]) -> Self {
        let mut origin = BatchOrigin { first_offset: i64::MAX, last_offset: i64::MIN, ..BatchOrigin::default() };
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            if origin.ingest_source.is_empty()
                && let Some(src) =
                    batch.column_by_name(vigil_schema::INGEST_SOURCE).and_then(|c| c.as_string_opt::<i32>())
            {
                origin.ingest_source = src.value(0).to_string();
            }
            if let Some(p) =
                batch.column_by_name(vigil_schema::INGEST_PARTITION).and_then(|c| c.as_primitive_opt::<Int32Type>())
            {
                origin.partition = p.value(0);
            }
            if let Some(o) =
                batch.column_by_name(vigil_schema::INGEST_OFFSET).and_then(|c| c.as_primitive_opt::<Int64Type>())
            {
                origin.first_offset = origin.first_offset.min(arrow::compute::min(o).unwrap_or(i64::MAX));
                origin.last_offset = origin.last_offset.max(arrow::compute::max(o).unwrap_or(i64::MIN));
            }
            if let Some(t) =
                batch.column_by_name(vigil_schema::TIME).and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
                && let Some(max) = arrow::compute::max(t)
            {
                origin.newest_us = Some(origin.newest_us.map_or(max, |n| n.max(max)));
            }
        }
        origin
    }

    pub(crate) fn describe(&self) -> String {
        format!("{}/{} offsets {}..={}", self.ingest_source, self.partition, self.first_offset, self.last_offset)
    }

    fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("ingest_source".into(), Value::from(self.ingest_source.clone()));
        fields.insert("ingest_partition".into(), Value::from(self.partition));
        fields.insert("first_offset".into(), Value::from(self.first_offset));
        fields.insert("last_offset".into(), Value::from(self.last_offset));
        fields
    }
}

/// The `rule_failed` alert of `rule`, quarantined on the batch `origin` for `reason`. Its id is fixed by
/// the rule version and the batch, so a replay of the same batch gives the same id.
pub(crate) fn rule_failed_alert(rule: &Rule, reason: &str, origin: &BatchOrigin, now_us: i64) -> Alert {
    let batch = origin.describe();
    let mut fields = origin.fields();
    fields.insert("rule".into(), Value::from(rule.id.clone()));
    fields.insert("reason".into(), Value::from(reason.to_string()));
    fields.insert("batch".into(), Value::from(batch.clone()));
    let time_us = origin.newest_us.unwrap_or(now_us);
    Alert {
        alert_id: alert_id(RULE_FAILED, &[rule.id.clone(), rule.hash.clone(), batch]),
        rule_id: RULE_FAILED.into(),
        rule_title: format!("Rule {} failed and is quarantined for the rest of the run", rule.id),
        severity: "high",
        criteria: rule.criteria.clone(),
        rule_hash: rule.hash.clone(),
        time_us,
        time: format_time_us(time_us),
        fields,
        event_ids: Vec::new(),
        source_rule: rule.source_rule.clone(),
    }
}

/// The `event_time_in_future` alert (at `now_us`) of a batch whose events `ids`, the newest at
/// `newest_us`, are dated after `limit_us`. Its id is fixed by the events it names.
pub(crate) fn future_events_alert(
    origin: &BatchOrigin,
    ids: Vec<String>,
    newest_us: i64,
    limit_us: i64,
    now_us: i64,
) -> Alert {
    let count = ids.len();
    let mut event_ids = ids;
    event_ids.sort();
    event_ids.dedup();
    event_ids.truncate(MAX_NAMED_EVENTS);
    let mut fields = origin.fields();
    fields.insert("count".into(), Value::from(count));
    fields.insert("newest_time".into(), Value::from(format_time_us(newest_us)));
    fields.insert("accepted_until".into(), Value::from(format_time_us(limit_us)));
    Alert {
        alert_id: alert_id(EVENT_TIME_IN_FUTURE, &event_ids),
        rule_id: EVENT_TIME_IN_FUTURE.into(),
        rule_title: "Events dated in the future: archived, but they do not move the rules' event time".into(),
        severity: "medium",
        criteria: vec!["CC7.2".into()],
        rule_hash: String::new(),
        time_us: now_us,
        time: format_time_us(now_us),
        fields,
        event_ids,
        source_rule: None,
    }
}

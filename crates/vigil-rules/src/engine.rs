//! The rule engine: every rule planned once against the `events` table, then run over each micro-batch.
//!
//! The `events` table is a provider whose batches are swapped per micro-batch, so the SQL of a rule is
//! parsed, checked and optimized once at start, and only the physical plan is made per batch. Rules run
//! concurrently on the tokio runtime; each uses DataFusion's partitions (one per normalized chunk).
//!
//! Calls such as `json_get_str(attrs, 'requestParameters', 'policyArn')` are planned as columns of a
//! widened `events` table, filled once per micro-batch for all rules ([`crate::attr_columns`]).
//!
//! Each rule runs on a budget (memory, time, a stop request) and is quarantined for the rest of the run
//! when it goes over or fails; events dated too far ahead do not move event time ([`crate::budget`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::datasource::provider_as_source;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::TaskContext;
use datafusion::execution::context::{SQLOptions, SessionState};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionConfig;
use rayon::prelude::*;
use vigil_schema::event_schema;

use crate::alert::Alert;
use crate::attr_columns::AttrColumns;
use crate::budget::{
    BatchOrigin, RuleBudget, RuleFailure, future_events_alert, rule_failed_alert, run_rule, task_context,
};
use crate::events_table::EventsTable;
pub use crate::pack::{RulePack, TABLES, load_rules, rule_files};
use crate::rows::{Arrivals, Shape, alerts_from_batch, first_line, shape_of, signals_from_batch};
use crate::rule::{Rule, RuleKind};
use crate::stateful::{RuleSnapshot, RuleState, Signal, StateCounters};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

struct CompiledRule {
    rule: Rule,
    plan: LogicalPlan,
    shape: Shape,
    /// The rule's own execution context: its memory pool.
    task: Arc<TaskContext>,
    /// Stateful rules: their empty state, cloned for each new stream.
    state: Option<RuleState>,
    /// The event sources the rule can match, when its plan says (a batch without them skips the rule).
    sources: Option<std::collections::BTreeSet<String>>,
}

/// The state of the stateful rules over one stream of events (a source partition).
/// The stateful rules' state of one stream of events: one source partition (a file, a Kafka topic
/// partition). The reader of the partition owns it and hands it to every [`RuleEngine`] call, so the
/// state moves with the partition (stored, restored, dropped) and no partition sees another's events.
/// Made by [`RuleEngine::new_state`]; stateless rules keep nothing in it.
#[derive(Debug, Clone)]
pub struct PartitionState {
    /// Newest event time seen in the stream.
    newest_us: i64,
    /// Per compiled rule (same order), its state; `None` for stateless rules.
    states: Vec<Option<RuleState>>,
}

impl PartitionState {
    /// The partition is a finite input (a file): correlation rules judge their windows at its end, so
    /// what they report does not depend on the order of its records ([`RuleState::hold`]).
    pub fn finite_input(&mut self) {
        for state in self.states.iter_mut().flatten() {
            state.hold();
        }
    }
}

/// The rule engine's state as stored between runs: the newest event time seen and every stateful rule's
/// [`RuleSnapshot`], by rule id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    /// Newest event time seen (UTC microseconds); `i64::MIN` before any.
    pub newest_us: i64,
    /// Stateful rules' state, by rule id.
    pub rules: BTreeMap<String, RuleSnapshot>,
}

/// How the engine plans and runs rules.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Plan `json_get_*(attrs, literal path)` calls as columns filled once per batch (default). Off, each
    /// call parses `attrs` per row: the reference the attribute columns are tested against.
    pub attr_columns: bool,
    /// What each rule may use on each batch ([`crate::budget`]).
    pub budget: RuleBudget,
    /// Events dated more than this ahead of the wall clock do not move event time (default 15 min).
    pub max_future_skew: std::time::Duration,
}

/// Default of [`EngineOptions::max_future_skew`]: clocks and time zones that are off by a few minutes
/// pass; a record dated hours or years ahead does not.
pub const DEFAULT_MAX_FUTURE_SKEW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { attr_columns: true, budget: RuleBudget::default(), max_future_skew: DEFAULT_MAX_FUTURE_SKEW }
    }
}

/// The wall clock, UTC microseconds.
fn now_us() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// Compiled rules, ready to run over micro-batches.
pub struct RuleEngine {
    state: SessionState,
    table: Arc<EventsTable>,
    /// `events` widened by the attribute columns, and what fills them.
    widened: Arc<EventsTable>,
    attr_columns: AttrColumns,
    /// Some rule scans `widened`.
    uses_widened: bool,
    rules: Vec<CompiledRule>,
    pack_hash: String,
    budget: RuleBudget,
    max_future_skew_us: i64,
    /// Per compiled rule (same order): why it is quarantined, once it is.
    quarantined: Vec<Option<String>>,
    /// Events seen dated past the future-skew limit.
    future_events: u64,
    /// Set to `true` when the run is asked to stop: rules still running get a short grace, then are cut.
    stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl fmt::Debug for RuleEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleEngine").field("rules", &self.rules.len()).field("pack_hash", &self.pack_hash).finish()
    }
}

impl RuleEngine {
    /// Plans every rule of `pack` against the `events` table; all problems are returned.
    pub async fn new(pack: &RulePack, threads: usize) -> std::result::Result<Self, Vec<Error>> {
        Self::with_options(pack, threads, EngineOptions::default()).await
    }

    /// [`RuleEngine::new`] with `options`.
    pub async fn with_options(
        pack: &RulePack,
        threads: usize,
        options: EngineOptions,
    ) -> std::result::Result<Self, Vec<Error>> {
        let config = SessionConfig::new()
            .with_target_partitions(threads.max(1))
            .with_information_schema(false)
            .set_bool("datafusion.sql_parser.enable_ident_normalization", true)
            // refused at load too (crate::validate); this keeps it off whatever the SQL's spelling
            .set_bool("datafusion.execution.enable_recursive_ctes", false);
        let mut state = SessionStateBuilder::new().with_config(config).with_default_features().build();
        if let Err(e) = datafusion_functions_json::register_all(&mut state) {
            return Err(vec![Error::Eval { rule: "(engine set-up)".into(), source: e }]);
        }
        let table = Arc::new(EventsTable::new(event_schema()));
        let ctx = datafusion::prelude::SessionContext::new_with_state(state.clone());
        if let Err(e) = ctx.register_table("events", table.clone()) {
            return Err(vec![Error::Eval { rule: "(engine set-up)".into(), source: e }]);
        }
        let state = ctx.state();
        let sql_options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let mut planned = Vec::new();
        let mut errors = Vec::new();
        for rule in &pack.rules {
            let plan = async {
                let plan = state.create_logical_plan(&rule.sql).await?;
                sql_options.verify_plan(&plan)?;
                Ok::<_, DataFusionError>(plan)
            };
            // A panic while planning (DataFusion folding a constant the size of memory, say) refuses the rule.
            let plan = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(plan)).await;
            match plan {
                Ok(Ok(plan)) => planned.push((rule, plan)),
                Ok(Err(e)) => errors.push(Error::rule(
                    &rule.path,
                    rule.query_line,
                    format!("the query does not plan: {}", first_line(&e)),
                )),
                Err(_) => errors.push(Error::rule(
                    &rule.path,
                    rule.query_line,
                    "planning the query panicked (a bug in vigil or DataFusion; please report it with this rule)",
                )),
            }
        }
        let attr_columns = AttrColumns::collect(planned.iter().map(|(_, plan)| plan));
        let widened = Arc::new(EventsTable::new(attr_columns.widened_schema()));
        let widened_source = provider_as_source(widened.clone());
        let mut uses_widened = false;
        let mut rules = Vec::new();
        for (rule, plan) in planned {
            let rewritten =
                if options.attr_columns { attr_columns.rewrite(&plan, widened_source.clone()) } else { None };
            let plan = match rewritten {
                Some(rewritten) => {
                    uses_widened = true;
                    rewritten
                }
                None => plan,
            };
            let optimized = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.optimize(&plan)))
                .unwrap_or_else(|_| {
                    Err(DataFusionError::Internal(
                        "optimizing the query panicked (a bug in vigil or DataFusion; please report it with this rule)"
                            .into(),
                    ))
                });
            match optimized {
                Ok(plan) => match (shape_of(rule, plan.schema().as_arrow()), task_context(&state, &options.budget)) {
                    (Ok(shape), Ok(task)) => {
                        let state = rule.stateful.clone().map(|spec| RuleState::new(rule.kind, spec));
                        let sources = crate::source_filter::required_sources(&plan);
                        rules.push(CompiledRule { rule: rule.clone(), plan, shape, state, task, sources })
                    }
                    (Err(e), _) => errors.push(e),
                    (_, Err(e)) => errors.push(Error::Eval { rule: rule.id.clone(), source: e }),
                },
                Err(e) => errors.push(Error::rule(
                    &rule.path,
                    rule.query_line,
                    format!("the query does not plan: {}", first_line(&e)),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let quarantined = vec![None; rules.len()];
        Ok(RuleEngine {
            state,
            table,
            widened,
            attr_columns,
            uses_widened,
            rules,
            pack_hash: pack.hash.clone(),
            budget: options.budget,
            max_future_skew_us: i64::try_from(options.max_future_skew.as_micros()).unwrap_or(i64::MAX),
            quarantined,
            future_events: 0,
            stop: None,
        })
    }

    /// Rules still running when `stop` turns `true` get [`crate::budget::STOP_GRACE`] more, then are cut
    /// (and quarantined), so a shutdown is not held up by a rule.
    pub fn set_stop_signal(&mut self, stop: tokio::sync::watch::Receiver<bool>) {
        self.stop = Some(stop);
    }

    /// The rules quarantined so far in this run, with the reason: (rule id, reason).
    pub fn quarantined(&self) -> Vec<RuleFailure> {
        self.rules
            .iter()
            .zip(&self.quarantined)
            .filter_map(|(c, q)| Some(RuleFailure { rule_id: c.rule.id.clone(), reason: q.clone()? }))
            .collect()
    }

    /// Events seen so far dated more than the future-skew limit ahead of the wall clock.
    pub fn future_events(&self) -> u64 {
        self.future_events
    }

    /// The newest event time the engine accepts now: the wall clock plus the future-skew limit.
    fn accepted_until(&self) -> i64 {
        now_us().saturating_add(self.max_future_skew_us)
    }

    /// Ids of the rules that still call a JSON function on `attrs` with a literal path per row (the rewrite
    /// into attribute columns could not place the call; see [`crate::attr_columns`]).
    pub fn rules_parsing_attrs_per_call(&self) -> Vec<&str> {
        self.rules.iter().filter(|c| !AttrColumns::collect([&c.plan]).is_empty()).map(|c| c.rule.id.as_str()).collect()
    }

    /// Ids of the rules whose sources the plan does not tell: they run on every micro-batch, whatever
    /// sources it holds (see [`crate::source_filter`]).
    pub fn rules_for_any_source(&self) -> Vec<&str> {
        self.rules.iter().filter(|c| c.sources.is_none()).map(|c| c.rule.id.as_str()).collect()
    }

    /// The compiled rules, in pack order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|c| &c.rule)
    }

    /// The hash of the active rule pack.
    pub fn pack_hash(&self) -> &str {
        &self.pack_hash
    }

    /// Whether any rule keeps state between batches.
    pub fn has_stateful(&self) -> bool {
        self.rules.iter().any(|c| c.state.is_some())
    }

    /// A new, empty state for one stream of events (a source partition): every stateful rule starts
    /// with nothing held and event time before any event.
    pub fn new_state(&self) -> PartitionState {
        PartitionState { newest_us: i64::MIN, states: self.rules.iter().map(|c| c.state.clone()).collect() }
    }

    /// Counters of every stateful rule in one partition's state, by rule id.
    pub fn counters(&self, state: &PartitionState) -> BTreeMap<String, StateCounters> {
        self.rules
            .iter()
            .zip(&state.states)
            .filter_map(|(c, state)| Some((c.rule.id.clone(), state.as_ref()?.counters())))
            .collect()
    }

    /// The state of every stateful rule in `state`, to store beside the evidence.
    pub fn snapshot(&self, state: &PartitionState) -> EngineSnapshot {
        EngineSnapshot {
            // never a watermark past the wall clock (see crate::budget)
            newest_us: state.newest_us.min(now_us()),
            rules: self
                .rules
                .iter()
                .zip(&state.states)
                .filter_map(|(c, state)| Some((c.rule.id.clone(), state.as_ref()?.snapshot())))
                .collect(),
        }
    }

    /// Continues a partition from a stored snapshot. Returns the ids of rules whose stored state was
    /// discarded (the rule's kind or key changed); rules not in the snapshot start empty.
    pub fn restore(&self, state: &mut PartitionState, snapshot: EngineSnapshot) -> Vec<String> {
        // A state stored before the future-skew guard existed may carry a future watermark (one record
        // dated 2099): its true value is unknown, so event time starts again from the events that come.
        state.newest_us = if snapshot.newest_us > self.accepted_until() { i64::MIN } else { snapshot.newest_us };
        let mut stored = snapshot.rules;
        let mut discarded = Vec::new();
        for (compiled, rule_state) in self.rules.iter().zip(state.states.iter_mut()) {
            let (Some(rule_state), Some(saved)) = (rule_state.as_mut(), stored.remove(&compiled.rule.id)) else {
                continue;
            };
            if !rule_state.restore(saved) {
                discarded.push(compiled.rule.id.clone());
            }
        }
        discarded
    }

    /// Runs every rule over `batches` (one micro-batch, any number of partitions, rows in arrival order).
    /// Stateless rules alert on the batch alone; stateful ones take its signals into their state and alert
    /// as event time passes (see [`crate::stateful`]). Alerts come in rule order, then by time and id,
    /// whatever the partitioning.
    ///
    /// Stateful rules keep their state in `state`, the partition's own: one per source partition (a file,
    /// a Kafka topic partition), so state moves with a partition between the instances of a consumer group.
    pub async fn evaluate(&mut self, state: &mut PartitionState, batches: &[RecordBatch]) -> Result<Vec<Alert>> {
        let partitions: Vec<Vec<RecordBatch>> =
            batches.iter().filter(|b| b.num_rows() > 0).map(|b| vec![b.clone()]).collect();
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        if self.uses_widened {
            let widened_schema = self.widened.schema.clone();
            // one walk per row, on the rayon pool: partitions in parallel
            let extended = partitions
                .par_iter()
                .map(|p| p.iter().map(|b| self.attr_columns.extend(b, &widened_schema)).collect())
                .collect::<datafusion::error::Result<Vec<Vec<RecordBatch>>>>()
                .map_err(|source| Error::Eval { rule: "(attribute columns)".into(), source })?;
            self.widened.set(extended)?;
        }
        self.table.set(partitions)?;
        let budget = self.budget;
        let session = &self.state;
        let present = crate::source_filter::present(batches);
        let runs = self.rules.iter().zip(&self.quarantined).map(|(compiled, quarantined)| {
            let stop = self.stop.clone();
            // a rule for sources the batch does not hold has nothing to find (see source_filter)
            let absent = match (&compiled.sources, &present) {
                (Some(wanted), Some(present)) => wanted.is_disjoint(present),
                _ => false,
            };
            async move {
                match quarantined {
                    Some(_) => None,
                    None if absent => Some(Ok(Vec::new())),
                    None => Some(run_rule(session, &compiled.plan, compiled.task.clone(), budget, stop).await),
                }
            }
        });
        let outputs: Vec<Option<std::result::Result<Vec<RecordBatch>, String>>> = futures::future::join_all(runs).await;
        self.table.set(Vec::new())?;
        self.widened.set(Vec::new())?;
        let now = now_us();
        let accepted_until = now.saturating_add(self.max_future_skew_us);
        let has_stateful = self.has_stateful();
        let newest_before = state.newest_us;
        let arrivals = Arrivals::of(batches, newest_before, (now, accepted_until), has_stateful)?;
        let origin = BatchOrigin::of(batches);
        let states = &mut state.states;
        let mut all = Vec::new();
        let mut failed = Vec::new();
        for (i, ((compiled, output), state)) in self.rules.iter().zip(outputs).zip(states.iter_mut()).enumerate() {
            let Some(output) = output else { continue }; // quarantined earlier in the run
            let alerts = output.and_then(|output| match state {
                Some(state) => {
                    let mut signals = Vec::new();
                    for batch in &output {
                        signals_from_batch(&compiled.rule, &compiled.shape, batch, &mut signals)
                            .map_err(|e| first_line(&e))?;
                    }
                    let mut ordered: Vec<(usize, Signal)> = {
                        let mut seen: HashMap<String, usize> = HashMap::new();
                        signals
                            .into_iter()
                            // a signal dated past the limit would sit pending until that date: not taken
                            .filter(|s| s.time_us <= accepted_until)
                            .map(|s| {
                                let n = seen.entry(s.event_id.clone()).or_default();
                                *n += 1;
                                (arrivals.nth(&s.event_id, *n - 1), s)
                            })
                            .collect()
                    };
                    ordered.sort_by(|(a, x), (b, y)| (a, &x.event_id).cmp(&(b, &y.event_id)));
                    for (index, signal) in ordered {
                        state.push(signal, arrivals.newest_at(index));
                    }
                    Ok(state.advance(&compiled.rule, arrivals.newest))
                }
                None => {
                    let mut alerts = Vec::new();
                    for batch in &output {
                        alerts_from_batch(&compiled.rule, &compiled.shape, batch, &mut alerts)
                            .map_err(|e| first_line(&e))?;
                    }
                    Ok(alerts)
                }
            });
            match alerts {
                Ok(mut alerts) => {
                    alerts.sort_by(|a, b| (a.time_us, &a.alert_id).cmp(&(b.time_us, &b.alert_id)));
                    alerts.dedup_by(|a, b| a.alert_id == b.alert_id);
                    all.extend(alerts);
                }
                Err(reason) => {
                    tracing::error!(
                        rule = %compiled.rule.id,
                        reason = %reason,
                        batch = %origin.describe(),
                        "rule quarantined for the rest of the run: it is no longer evaluated"
                    );
                    all.push(rule_failed_alert(&compiled.rule, &reason, &origin, now_us()));
                    failed.push((i, reason));
                }
            }
        }
        for (i, reason) in failed {
            if let Some(q) = self.quarantined.get_mut(i) {
                *q = Some(reason);
            }
        }
        if !arrivals.future.is_empty() {
            self.future_events += arrivals.future.len() as u64;
            tracing::warn!(
                batch = %origin.describe(),
                events = arrivals.future.len(),
                "events dated more than the future-skew limit ahead of the wall clock: archived, but event time \
                 does not move to them"
            );
            all.push(future_events_alert(&origin, arrivals.future, arrivals.future_newest, accepted_until, now));
        }
        state.newest_us = arrivals.newest;
        Ok(all)
    }

    /// The end of a finite input (a file): the partition's stateful rules release what they hold pending
    /// and alert on it.
    pub fn finish(&self, state: &mut PartitionState) -> Vec<Alert> {
        let mut all = Vec::new();
        for (compiled, rule_state) in self.rules.iter().zip(state.states.iter_mut()) {
            if let Some(rule_state) = rule_state {
                let mut alerts = rule_state.finish(&compiled.rule);
                alerts.sort_by(|a, b| (a.time_us, &a.alert_id).cmp(&(b.time_us, &b.alert_id)));
                alerts.dedup_by(|a, b| a.alert_id == b.alert_id);
                all.extend(alerts);
            }
        }
        all
    }

    /// A live stream (a Kafka partition) has received nothing for `idle_us` of wall-clock time: its
    /// silence rules count that quiet as event time and alert on keys quiet past their window
    /// ([`RuleState::idle`]); other rules wait for events.
    pub fn idle(&self, state: &mut PartitionState, idle_us: i64) -> Vec<Alert> {
        let newest_us = state.newest_us;
        let mut all = Vec::new();
        for (compiled, rule_state) in self.rules.iter().zip(state.states.iter_mut()) {
            if let Some(rule_state) = rule_state {
                all.extend(rule_state.idle(&compiled.rule, newest_us, idle_us));
            }
        }
        all.sort_by(|a, b| (a.time_us, &a.alert_id).cmp(&(b.time_us, &b.alert_id)));
        all
    }

    /// Whether any rule acts on [`RuleEngine::idle`]: silence rules, grouped rules (`suppress`), whose
    /// open groups close when their window ends by the wall clock on a quiet stream, and correlations,
    /// whose last matches are judged once the quiet passes their lateness.
    pub fn has_silence(&self) -> bool {
        self.rules.iter().any(|c| matches!(c.rule.kind, RuleKind::Silence | RuleKind::Group | RuleKind::Correlation))
    }
}

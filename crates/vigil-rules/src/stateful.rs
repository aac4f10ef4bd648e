//! State of the stateful rule kinds (threshold, sequence, first_seen, silence, and grouped rules: a
//! stateless rule with `suppress`), kept between micro-batches.
//!
//! A stateful rule's query runs over each micro-batch like any rule; each result row is a *signal*
//! (`time`, `event_id`, the `key` columns, `step` for sequences, the `distinct` column for distinct
//! thresholds, every other column as alert fields). Signals then go through event time:
//!
//! ```text
//!  signal (arrival order) ── late? (time < watermark) ──yes──> counted in `late`, not evaluated
//!        │ no                                                  (the event itself is archived as always)
//!        ▼
//!  pending, sorted by (time, step, event_id) ── released once time < watermark ──> kind's state machine ──> alerts
//! ```
//!
//! The **watermark** of a rule is the newest event time the engine has seen (over every event, in arrival
//! order) minus the rule's `lateness`. An event is late when its time is below the watermark at its
//! arrival; the rest are released in event-time order. So the sequence a state machine sees, and the
//! alerts, depend only on the order events arrive in, never on how they were cut into batches, on thread
//! count, or on a restart in between (the state, pending signals included, is a [`RuleSnapshot`]). At the
//! end of a finite input (files) [`RuleState::finish`] releases what is pending.
//!
//! The state machines, on each released signal at time `t` for key `k`:
//! - **threshold**: the window `(t - window, t]` of `k`'s signals (with `distinct`, the newest signal per
//!   distinct value); at `threshold` of them an alert names them all, and the window starts empty again.
//!   With `windowing: tumbling` the windows are fixed, aligned to the Unix epoch, and each key alerts at most
//!   once per window (the `threshold` signals that reached it), as SQL's `GROUP BY date_bin(window, time)
//!   HAVING count(*) >= threshold` would.
//! - **sequence**: `k`'s partial match advances when the signal's step is the one being filled (a step
//!   written `failed*5` needs five signals), and restarts at a newer first step while only a single first
//!   step has matched; a partial older than `window` is dropped; completing the last step raises an alert
//!   naming every event of the match.
//! - **first_seen**: a key not seen before (or not for `ttl`) raises an alert, except during the first
//!   `baseline` of event time the rule sees (learning).
//! - **silence**: before `t` is applied, every key whose last signal is older than `t - window` raises one
//!   alert (time = last signal + window, naming that last event); the key is re-armed by its next signal.
//!   A live stream that receives nothing at all cannot show `t`: there [`RuleState::idle`] lets the
//!   wall-clock time it has been quiet count as event time.
//! - **group** (`suppress` and `group_by` on a stateless rule): the first signal of group `k` opens a
//!   window `[t, t + suppress)`; every signal of `k` in it is counted (the first [`GROUP_EVENT_IDS`] event
//!   ids kept, in event-time order), and no alert is raised meanwhile. When event time (the watermark)
//!   reaches the window's end, or a signal of `k` at or after it is released, or the input ends, the
//!   group raises one alert: at its first time, naming the kept ids, with the fields of its first
//!   signal and `event_count`, `first_time`, `last_time`, `suppress` (and `event_ids_capped` when ids were
//!   left out). Its id is the rule id and the kept ids, like every alert's. A signal after the window
//!   opens the next one. On a live stream that goes quiet, [`RuleState::idle`] closes groups as their
//!   window ends by the wall clock, like silence rules. A match that arrives late (below the watermark)
//!   is not grouped but not lost either: it alerts alone (`event_count` 1, `late`), as the rule would
//!   without `suppress`.
//! - **correlation** (Sigma correlations): `k`'s matches of one timespan back are kept; once every
//!   released signal up to the watermark is in, each new match time `t` ends a window `[t - window, t]`
//!   that alerts when its measure meets the condition (see [`crate::correlation`]). The alert is at `t`,
//!   names the window's evidence and carries `correlation`, `condition`, `measure`, `window_start`,
//!   `timespan`, `event_count` and the key columns of the group's newest match. With `suppress`, a
//!   group's windows ending within that long after one that alerted do not alert; the next alert says
//!   how many were left out (`suppressed_windows`).
//!
//! **Bounds.** Per rule at most `max_keys` keys (default 100,000): beyond it the least recently seen keys
//! are forgotten (counted in `evicted`). A threshold window holds fewer than `threshold` signals, a
//! sequence one per step, first_seen and silence one time per key. Pending signals are those within
//! `lateness` of the newest event, capped at [`MAX_PENDING`] per rule (beyond, the oldest are released
//! early and counted in `forced`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::alert::{Alert, alert_id, format_time_us};
use crate::correlation::{self, Match};
use crate::rule::{Rule, RuleKind, StatefulSpec};

/// Most pending signals a rule holds before releasing the oldest early.
pub const MAX_PENDING: usize = 1_000_000;

/// Event ids a group alert names (the rest are counted in `event_count`).
pub const GROUP_EVENT_IDS: usize = 100;

/// Released signals between two sweeps of expired keys.
const SWEEP_EVERY: u64 = 4096;

/// One candidate event of a stateful rule: a row of its query's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Event time, UTC microseconds.
    pub time_us: i64,
    /// The event's id.
    pub event_id: String,
    /// The key columns' values, joined by U+001F.
    pub key: String,
    /// Sequence step index (0 for other kinds).
    pub step: usize,
    /// The `distinct` column's value.
    pub distinct: Option<String>,
    /// Every column but `time` and `event_id`.
    pub fields: Map<String, Value>,
    /// Arrival number within the rule (orders identical events).
    pub arrival: u64,
}

type PendingKey = (i64, usize, String, u64);

fn pending_key(s: &Signal) -> PendingKey {
    (s.time_us, s.step, s.event_id.clone(), s.arrival)
}

/// What is kept per key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyState {
    /// Time of the key's newest released signal.
    pub last_us: i64,
    /// Threshold: the window's signals as (time, event id, distinct value).
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub window: VecDeque<(i64, String, Option<String>)>,
    /// Sequence: start time of the partial match; tumbling threshold: start of the current window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_us: Option<i64>,
    /// Sequence: event ids matched so far, one per step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// Silence: the newest event's id and fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<(String, Map<String, Value>)>,
    /// Silence: already alerted for the current quiet spell; tumbling threshold: for the current window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alerted: bool,
    /// Group: signals counted in the current window.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// Correlation: the matches that windows still to be evaluated can hold, in time order.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub matches: VecDeque<Match>,
    /// Correlation: the end of the newest window evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_us: Option<i64>,
    /// Correlation with `suppress`: windows ending before this time do not alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_until: Option<i64>,
    /// Correlation with `suppress`: windows left out since the group's last alert.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suppressed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Counters of one stateful rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounters {
    /// Signals released to the state machine.
    pub released: u64,
    /// Signals that arrived below the watermark: not evaluated (their events are archived as always).
    pub late: u64,
    /// Keys forgotten because of `max_keys`.
    pub evicted: u64,
    /// Pending signals released before the watermark passed them, because of [`MAX_PENDING`].
    pub forced: u64,
}

impl StateCounters {
    /// Adds `more`, by rule id, into `total` (counters of several partitions into one).
    pub fn add_into(total: &mut BTreeMap<String, StateCounters>, more: &BTreeMap<String, StateCounters>) {
        for (rule, c) in more {
            let t = total.entry(rule.clone()).or_default();
            t.released += c.released;
            t.late += c.late;
            t.evicted += c.evicted;
            t.forced += c.forced;
        }
    }
}

/// The state of one stateful rule.
#[derive(Debug, Clone)]
pub struct RuleState {
    spec: StatefulSpec,
    kind: RuleKind,
    pending: BTreeMap<PendingKey, Signal>,
    keys: BTreeMap<String, KeyState>,
    /// Silence: (deadline, key) of every armed key.
    deadlines: BTreeSet<(i64, String)>,
    first_us: Option<i64>,
    next_arrival: u64,
    counters: StateCounters,
    /// Group: matches that arrived late, alerted alone by the next [`RuleState::advance`] (never stored:
    /// the engine advances right after pushing).
    late_matches: Vec<Signal>,
    /// Correlation: keys with matches released since their last evaluation (empty between advances).
    unevaluated: BTreeSet<String>,
    /// Correlation on a finite input: signals wait for its end (never late), see [`RuleState::hold`].
    held: bool,
}

/// A rule's state as stored: everything needed to continue exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSnapshot {
    /// The rule's kind.
    pub kind: RuleKind,
    /// Its key columns (state is discarded when they change).
    pub key: Vec<String>,
    /// Signals not yet released, in release order.
    pub pending: Vec<Signal>,
    /// State per key, by key.
    pub keys: BTreeMap<String, KeyState>,
    /// First seen: the first event time the rule saw (start of the baseline).
    pub first_us: Option<i64>,
    /// The next arrival number.
    pub next_arrival: u64,
    /// Counters.
    pub counters: StateCounters,
}

impl RuleState {
    /// Empty state for a rule of `kind` declared by `spec`.
    pub fn new(kind: RuleKind, spec: StatefulSpec) -> Self {
        RuleState {
            spec,
            kind,
            pending: BTreeMap::new(),
            keys: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            first_us: None,
            next_arrival: 0,
            counters: StateCounters::default(),
            late_matches: Vec::new(),
            unevaluated: BTreeSet::new(),
            held: false,
        }
    }

    /// The rule's counters.
    pub fn counters(&self) -> StateCounters {
        self.counters
    }

    /// Keys held.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The state as stored.
    pub fn snapshot(&self) -> RuleSnapshot {
        RuleSnapshot {
            kind: self.kind,
            key: self.spec.key.clone(),
            pending: self.pending.values().cloned().collect(),
            keys: self.keys.clone(),
            first_us: self.first_us,
            next_arrival: self.next_arrival,
            counters: self.counters,
        }
    }

    /// Continues from `snapshot`; `false` (and nothing changed) when it was taken of a rule with another
    /// kind or key.
    pub fn restore(&mut self, snapshot: RuleSnapshot) -> bool {
        if snapshot.kind != self.kind || snapshot.key != self.spec.key {
            return false;
        }
        self.pending = snapshot.pending.into_iter().map(|s| (pending_key(&s), s)).collect();
        self.deadlines.clear();
        if self.kind == RuleKind::Silence {
            for (key, state) in &snapshot.keys {
                if !state.alerted {
                    self.deadlines.insert((state.last_us + self.spec.window_us, key.clone()));
                }
            }
        }
        if self.kind == RuleKind::Group {
            for (key, state) in &snapshot.keys {
                if let Some(start) = state.started_us {
                    self.deadlines.insert((start.saturating_add(self.spec.window_us), key.clone()));
                }
            }
        }
        self.keys = snapshot.keys;
        self.first_us = snapshot.first_us;
        self.next_arrival = snapshot.next_arrival;
        self.counters = snapshot.counters;
        true
    }

    /// A correlation reading a finite input (a file): its signals are never late and wait for the end of
    /// the input ([`RuleState::finish`], or [`MAX_PENDING`] of them), so its windows, like Sigma's over a
    /// whole collection, do not depend on the order of the records. Other kinds are not affected.
    pub fn hold(&mut self) {
        self.held = self.kind == RuleKind::Correlation;
    }

    /// Takes one signal that arrived when the newest event time seen was `newest_us`: pending, or late.
    pub fn push(&mut self, mut signal: Signal, newest_us: i64) {
        if !self.held && signal.time_us < newest_us.saturating_sub(self.spec.lateness_us) {
            self.counters.late += 1;
            if self.kind == RuleKind::Group {
                // Grouping never loses a match: a late one alerts alone at the next advance.
                self.late_matches.push(signal);
            }
            return;
        }
        signal.arrival = self.next_arrival;
        self.next_arrival += 1;
        self.pending.insert(pending_key(&signal), signal);
    }

    /// Releases every pending signal below the watermark of `newest_us` (and the oldest beyond
    /// [`MAX_PENDING`]) to the state machine; returns the alerts raised.
    pub fn advance(&mut self, rule: &Rule, newest_us: i64) -> Vec<Alert> {
        let watermark = match self.held && newest_us != i64::MAX {
            true => i64::MIN, // held until finish
            false => newest_us.saturating_sub(self.spec.lateness_us),
        };
        let mut alerts = Vec::new();
        for signal in std::mem::take(&mut self.late_matches) {
            let mut fields = signal.fields;
            fields.insert("event_count".into(), Value::from(1));
            fields.insert("late".into(), Value::from(true));
            alerts.push(Alert::new(rule, signal.time_us, vec![signal.event_id], fields));
        }
        loop {
            let over = self.pending.len() > MAX_PENDING;
            let Some(entry) = self.pending.first_entry() else { break };
            let due = entry.key().0 < watermark;
            if !due && !over {
                break;
            }
            let signal = entry.remove();
            if !due {
                self.counters.forced += 1;
            }
            self.release(rule, signal, &mut alerts);
        }
        if self.kind == RuleKind::Group {
            // Every signal before the watermark is released: groups whose window ended are complete.
            self.close_groups(rule, watermark, &mut alerts);
        }
        if self.kind == RuleKind::Correlation {
            // Every signal before the watermark is released: the windows ending there are complete.
            self.close_windows(rule, &mut alerts);
        }
        alerts
    }

    /// End of a finite input: releases everything pending.
    pub fn finish(&mut self, rule: &Rule) -> Vec<Alert> {
        self.advance(rule, i64::MAX)
    }

    fn release(&mut self, rule: &Rule, signal: Signal, alerts: &mut Vec<Alert>) {
        self.counters.released += 1;
        let t = signal.time_us;
        match self.kind {
            RuleKind::Threshold => self.threshold(rule, signal, alerts),
            RuleKind::Sequence => self.sequence(rule, signal, alerts),
            RuleKind::FirstSeen => self.first_seen(rule, signal, alerts),
            RuleKind::Silence => self.silence(rule, signal, alerts),
            RuleKind::Group => self.group(rule, signal, alerts),
            RuleKind::Correlation => self.correlate(signal),
            RuleKind::Stateless => {}
        }
        if self.counters.released.is_multiple_of(SWEEP_EVERY) {
            self.sweep(t);
        }
        if self.kind == RuleKind::Group {
            // Over max_keys, the oldest groups close early: an alert is raised, never lost.
            while self.keys.len() > self.spec.max_keys.max(1) {
                let Some((_, key)) = self.deadlines.first().cloned() else { break };
                self.close_group(rule, &key, alerts);
                self.counters.evicted += 1;
            }
        } else {
            self.bound_keys();
        }
    }

    fn threshold(&mut self, rule: &Rule, signal: Signal, alerts: &mut Vec<Alert>) {
        let (window_us, threshold) = (self.spec.window_us, self.spec.threshold as usize);
        let state = self.keys.entry(signal.key.clone()).or_default();
        state.last_us = signal.time_us;
        if self.spec.tumbling {
            let start = signal.time_us.div_euclid(window_us) * window_us;
            if state.started_us != Some(start) {
                state.started_us = Some(start);
                state.window.clear();
                state.alerted = false;
            }
            if state.alerted {
                return; // this key and window already alerted
            }
        } else {
            while state.window.front().is_some_and(|(t, _, _)| *t <= signal.time_us - window_us) {
                state.window.pop_front();
            }
        }
        if let Some(value) = &signal.distinct {
            state.window.retain(|(_, _, d)| d.as_ref() != Some(value));
        }
        state.window.push_back((signal.time_us, signal.event_id.clone(), signal.distinct.clone()));
        if state.window.len() >= threshold {
            let ids: Vec<String> = state.window.drain(..).map(|(_, id, _)| id).collect();
            let mut fields = signal.fields;
            let counted = if self.spec.distinct.is_some() { "distinct_count" } else { "count" };
            fields.insert(counted.into(), Value::from(ids.len()));
            fields.insert("window".into(), Value::from(duration_text(window_us)));
            if let Some(start) = state.started_us.filter(|_| self.spec.tumbling) {
                fields.insert("window_start".into(), Value::from(format_time_us(start)));
                state.alerted = true;
            }
            alerts.push(Alert::new(rule, signal.time_us, ids, fields));
        }
    }

    fn sequence(&mut self, rule: &Rule, signal: Signal, alerts: &mut Vec<Alert>) {
        let window_us = self.spec.window_us;
        let repeats = &self.spec.repeats;
        let state = self.keys.entry(signal.key.clone()).or_default();
        state.last_us = signal.time_us;
        if state.started_us.is_some_and(|s| signal.time_us - s > window_us) {
            state.started_us = None;
            state.matched.clear();
        }
        // Where the partial match is: the step being filled and how many signals it has.
        let (mut step, mut have) = (0usize, state.matched.len() as u32);
        while step < repeats.len() && have >= repeats[step] {
            have -= repeats[step];
            step += 1;
        }
        let only_first_step_done = step == 1 && have == 0 && repeats[0] == 1;
        if state.matched.is_empty() || (signal.step == 0 && only_first_step_done) {
            if signal.step == 0 {
                // A new partial (or a newer start while only a single first step matched).
                state.started_us = Some(signal.time_us);
                state.matched = vec![signal.event_id];
            }
        } else if signal.step == step {
            state.matched.push(signal.event_id);
        }
        let needed: u32 = repeats.iter().sum();
        if state.matched.len() as u32 == needed {
            let ids = std::mem::take(&mut state.matched);
            let started = state.started_us.take().unwrap_or(signal.time_us);
            let mut fields = signal.fields;
            fields.insert("steps".into(), Value::from(self.spec.steps.clone()));
            fields.insert("sequence_started".into(), Value::from(format_time_us(started)));
            alerts.push(Alert::new(rule, signal.time_us, ids, fields));
        }
    }

    fn first_seen(&mut self, rule: &Rule, signal: Signal, alerts: &mut Vec<Alert>) {
        let first = *self.first_us.get_or_insert(signal.time_us);
        let ttl = self.spec.ttl_us;
        let known = self.keys.get(&signal.key).is_some_and(|s| s.last_us >= signal.time_us.saturating_sub(ttl));
        let state = self.keys.entry(signal.key.clone()).or_default();
        state.last_us = state.last_us.max(signal.time_us);
        if !known && signal.time_us >= first.saturating_add(self.spec.baseline_us) {
            let mut fields = signal.fields;
            fields.insert("first_seen".into(), Value::from(true));
            alerts.push(Alert::new(rule, signal.time_us, vec![signal.event_id], fields));
        }
    }

    /// A live stream that has received nothing for `idle_us` of wall-clock time since its newest event at
    /// `newest_us`: for a silence rule, that quiet counts as event time, so a key quiet past its deadline
    /// alerts although no later event arrives to show it (a source or partition that stopped altogether).
    /// What is pending is released first; so grouped rules close their groups and correlations judge the
    /// windows of their last matches (a burst that ends a quiet topic alerts without waiting for the next
    /// event). Other kinds wait for events: nothing happens.
    pub fn idle(&mut self, rule: &Rule, newest_us: i64, idle_us: i64) -> Vec<Alert> {
        if !matches!(self.kind, RuleKind::Silence | RuleKind::Group | RuleKind::Correlation) || newest_us == i64::MIN {
            return Vec::new();
        }
        let clock = newest_us.saturating_add(idle_us.max(0));
        let mut alerts = self.advance(rule, clock);
        if self.kind == RuleKind::Silence {
            self.alert_quiet_keys(rule, clock.saturating_sub(self.spec.lateness_us), &mut alerts);
        }
        alerts
    }

    /// Group: counts `signal` in its group's window, first closing the group if the window has ended.
    fn group(&mut self, rule: &Rule, signal: Signal, alerts: &mut Vec<Alert>) {
        let window_us = self.spec.window_us;
        let ended = self
            .keys
            .get(&signal.key)
            .and_then(|s| s.started_us)
            .is_some_and(|start| signal.time_us >= start.saturating_add(window_us));
        if ended {
            self.close_group(rule, &signal.key, alerts);
        }
        let state = self.keys.entry(signal.key.clone()).or_default();
        if state.started_us.is_none() {
            state.started_us = Some(signal.time_us);
            state.last = Some((signal.event_id.clone(), signal.fields));
            self.deadlines.insert((signal.time_us.saturating_add(window_us), signal.key.clone()));
        }
        state.count += 1;
        state.last_us = state.last_us.max(signal.time_us);
        if state.window.len() < GROUP_EVENT_IDS {
            state.window.push_back((signal.time_us, signal.event_id, None));
        }
    }

    /// Correlation: adds `signal` to its group's window; the group is evaluated at the end of the advance.
    fn correlate(&mut self, signal: Signal) {
        let state = self.keys.entry(signal.key.clone()).or_default();
        state.last_us = state.last_us.max(signal.time_us);
        if signal.time_us >= state.last_us {
            // the group's fields, as its newest match shows them
            let shown = self.spec.key.iter().filter_map(|k| signal.fields.get(k).map(|v| (k.clone(), v.clone())));
            state.last = Some((signal.event_id.clone(), shown.collect()));
        }
        let step = signal.step;
        self.counters.evicted +=
            correlation::add(&mut state.matches, (signal.time_us, signal.event_id, step, signal.distinct));
        self.unevaluated.insert(signal.key);
    }

    /// Correlation: the windows of every group with new matches that meet the condition, as alerts.
    fn close_windows(&mut self, rule: &Rule, alerts: &mut Vec<Alert>) {
        let Some(spec) = self.spec.correlation else { return };
        let steps = self.spec.steps.len();
        for key in std::mem::take(&mut self.unevaluated) {
            let Some(state) = self.keys.get_mut(&key) else { continue };
            let windows =
                correlation::windows(&spec, steps, self.spec.window_us, &mut state.matches, &mut state.evaluated_us);
            for window in windows {
                if state.suppressed_until.is_some_and(|until| window.end_us < until) {
                    state.suppressed += 1;
                    continue;
                }
                let mut fields = state.last.as_ref().map(|(_, f)| f.clone()).unwrap_or_default();
                fields.insert("correlation".into(), Value::from(spec.measure.as_str()));
                fields.insert("condition".into(), Value::from(format!("{} {}", spec.op.as_str(), spec.count)));
                fields.insert("measure".into(), Value::from(window.measure));
                fields.insert("window_start".into(), Value::from(format_time_us(window.start_us)));
                fields.insert("timespan".into(), Value::from(duration_text(self.spec.window_us)));
                fields.insert("event_count".into(), Value::from(window.events));
                if let Some(suppress) = self.spec.suppress_us {
                    fields.insert("suppress".into(), Value::from(duration_text(suppress)));
                    fields.insert("suppressed_windows".into(), Value::from(std::mem::take(&mut state.suppressed)));
                    state.suppressed_until = Some(window.end_us.saturating_add(suppress));
                }
                let ids = window.event_ids;
                if window.capped {
                    fields.insert("event_ids_capped".into(), Value::from(true));
                }
                let mut alert = Alert::new(rule, window.end_us, ids, fields);
                // two windows may hold the same events: the window's end is part of its id
                alert.alert_id = alert_id(&format!("{}@{}", rule.id, window.end_us), &alert.event_ids);
                alerts.push(alert);
            }
        }
    }

    /// Group: closes every group whose window ends at or before `until_us`.
    fn close_groups(&mut self, rule: &Rule, until_us: i64, alerts: &mut Vec<Alert>) {
        while let Some((deadline, key)) = self.deadlines.first().cloned() {
            if deadline > until_us {
                break;
            }
            self.close_group(rule, &key, alerts);
        }
    }

    /// Group: the one alert of `key`'s window; the key is forgotten until its next signal.
    fn close_group(&mut self, rule: &Rule, key: &str, alerts: &mut Vec<Alert>) {
        let Some(state) = self.keys.remove(key) else { return };
        let Some(start) = state.started_us else { return };
        self.deadlines.remove(&(start.saturating_add(self.spec.window_us), key.to_string()));
        let (_, mut fields) = state.last.unwrap_or_default();
        let ids: Vec<String> = state.window.into_iter().map(|(_, id, _)| id).collect();
        fields.insert("event_count".into(), Value::from(state.count));
        fields.insert("first_time".into(), Value::from(format_time_us(start)));
        fields.insert("last_time".into(), Value::from(format_time_us(state.last_us)));
        fields.insert("suppress".into(), Value::from(duration_text(self.spec.window_us)));
        if state.count > ids.len() as u64 {
            fields.insert("event_ids_capped".into(), Value::from(true));
        }
        alerts.push(Alert::new(rule, start, ids, fields));
    }

    fn silence(&mut self, rule: &Rule, signal: Signal, alerts: &mut Vec<Alert>) {
        let window_us = self.spec.window_us;
        self.alert_quiet_keys(rule, signal.time_us, alerts);
        let state = self.keys.entry(signal.key.clone()).or_default();
        if !state.alerted && state.last.is_some() {
            self.deadlines.remove(&(state.last_us + window_us, signal.key.clone()));
        }
        if signal.time_us >= state.last_us || state.last.is_none() {
            state.last_us = signal.time_us;
            state.last = Some((signal.event_id, signal.fields));
        }
        state.alerted = false;
        self.deadlines.insert((state.last_us + window_us, signal.key));
    }

    /// Alerts once for every key whose deadline (last signal + window) lies before `before_us`.
    fn alert_quiet_keys(&mut self, rule: &Rule, before_us: i64, alerts: &mut Vec<Alert>) {
        let window_us = self.spec.window_us;
        while let Some((deadline, key)) = self.deadlines.first().cloned() {
            if deadline >= before_us {
                break;
            }
            self.deadlines.pop_first();
            let Some(state) = self.keys.get_mut(&key) else { continue };
            state.alerted = true;
            let Some((id, last_fields)) = state.last.clone() else { continue };
            let mut fields = last_fields;
            fields.insert("last_event".into(), Value::from(format_time_us(state.last_us)));
            fields.insert("silent_for".into(), Value::from(duration_text(window_us)));
            alerts.push(Alert::new(rule, deadline, vec![id], fields));
        }
    }

    /// Forgets keys that can no longer matter at time `t`.
    fn sweep(&mut self, t: i64) {
        let (window_us, ttl_us) = (self.spec.window_us, self.spec.ttl_us);
        match self.kind {
            RuleKind::Threshold | RuleKind::Sequence => {
                self.keys.retain(|_, s| s.last_us > t.saturating_sub(window_us));
            }
            // a window ending at t or later holds nothing older than t - window
            RuleKind::Correlation => {
                let unevaluated = &self.unevaluated;
                self.keys.retain(|k, s| {
                    s.last_us >= t.saturating_sub(window_us)
                        || unevaluated.contains(k)
                        || s.suppressed_until.is_some_and(|until| until > t)
                });
            }
            RuleKind::FirstSeen => self.keys.retain(|_, s| s.last_us >= t.saturating_sub(ttl_us)),
            // Groups are closed (and forgotten) by the watermark, never swept unreported.
            RuleKind::Silence | RuleKind::Group | RuleKind::Stateless => {}
        }
    }

    /// Keeps at most `max_keys` keys, forgetting the least recently seen (a tenth at a time).
    fn bound_keys(&mut self) {
        let max = self.spec.max_keys.max(1);
        if self.keys.len() <= max {
            return;
        }
        let mut by_age: Vec<(i64, String)> = self.keys.iter().map(|(k, s)| (s.last_us, k.clone())).collect();
        by_age.sort();
        let excess = self.keys.len() - max + max / 10;
        for (last, key) in by_age.into_iter().take(excess) {
            if let Some(state) = self.keys.remove(&key) {
                if self.kind == RuleKind::Silence && !state.alerted {
                    self.deadlines.remove(&(last + self.spec.window_us, key));
                }
                self.counters.evicted += 1;
            }
        }
    }
}

/// `90s`, `10m`, `2h`, `7d`: the largest whole unit.
pub fn duration_text(us: i64) -> String {
    const UNITS: [(i64, &str); 4] = [(86_400_000_000, "d"), (3_600_000_000, "h"), (60_000_000, "m"), (1_000_000, "s")];
    for (size, unit) in UNITS {
        if us >= size && us % size == 0 {
            return format!("{}{unit}", us / size);
        }
    }
    format!("{}ms", us / 1000)
}

//! Correlation windows: the state machine of `kind: correlation` rules, which is how Sigma correlation
//! rules run (see `vigil_sigma`), with the semantics of pySigma's SQLite backend, the reference vigil is
//! compared with.
//!
//! A correlation's query returns one signal per event a referenced rule matched: its `step` names the
//! rule, its `key` columns the group (Sigma's `group-by`, compared ASCII case-insensitively; an event whose
//! group field is null takes no part), and for `value_count` its `distinct` column the value counted.
//! Signals are released in event-time order as for every stateful kind (see [`crate::stateful`]). Then,
//! per group, **every distinct time `t` of a match ends a window `[t - timespan, t]`** (both ends
//! included), and the window alerts when its measure meets the condition:
//!
//! | `correlation` | measure of the window | evidence (the alert's event ids) |
//! | --- | --- | --- |
//! | `event_count` | distinct events | every event in the window |
//! | `value_count` | distinct non-null values of `distinct` | every event in the window |
//! | `temporal` | distinct steps (rules) that matched | every event in the window |
//! | `temporal_ordered` | distinct steps, where the steps present must have happened in order | the events that make the ordered chain |
//!
//! **Order** (`temporal_ordered`): the chain takes, step by step in the order `steps` lists them, the
//! earliest match of that step in the window that is later than the chain's previous time (a step with no
//! match in the window is skipped). With `gte N` or `gt N` the condition asks for `N` (or `N + 1`)
//! steps in order: every choice of that many steps is tried, in the listed order, and the window alerts
//! when one of them forms a chain (the evidence joins all that do). With `lt`, `lte`, `eq` and `neq`
//! every step present must take its place in one chain over all steps.
//!
//! So one burst alerts once per matching event time once the condition holds, exactly as Sigma's
//! correlation semantics report every window that meets it. Windows are evaluated when event time (the
//! watermark) has passed their end, so every match of the window is in, whatever the batch size.
//!
//! **Bounds.** A group keeps the matches of one timespan back from its newest window, at most
//! [`MAX_WINDOW_MATCHES`] (beyond it the oldest are forgotten and counted as evicted); an alert names at
//! most [`ALERT_EVENT_IDS`] event ids, the window's newest (`event_count` has the number behind it,
//! `event_ids_capped` says when some were left out). The window slides over a group's matches keeping
//! counts, so a burst of n matches costs O(n) to measure, not O(n x window); only a `temporal_ordered`
//! window whose steps are all present walks its matches to find the chain.

use std::collections::{BTreeSet, VecDeque};

use crate::rule::{CompareOp, CorrelationSpec, Measure};

/// Matches one group holds in its window at most.
pub const MAX_WINDOW_MATCHES: usize = 100_000;

/// Event ids a correlation alert names at most.
pub const ALERT_EVENT_IDS: usize = 1_000;

/// One released match: event time (UTC microseconds), event id, step index, counted value.
pub type Match = (i64, String, usize, Option<String>);

/// A window that met its condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Start of the window (its end minus the timespan), UTC microseconds.
    pub start_us: i64,
    /// End of the window: the time of the match that closes it.
    pub end_us: i64,
    /// The measure (events, values or steps).
    pub measure: i64,
    /// The evidence's event ids, sorted: all of them, or the newest [`ALERT_EVENT_IDS`] when there are
    /// more (`capped`).
    pub event_ids: Vec<String>,
    /// How many distinct events the evidence holds.
    pub events: usize,
    /// Whether `event_ids` leaves some out.
    pub capped: bool,
}

/// Adds a released match to a group's window (kept in time order); returns how many old matches it
/// pushed out (more than [`MAX_WINDOW_MATCHES`]).
pub fn add(matches: &mut VecDeque<Match>, m: Match) -> u64 {
    let at = matches.partition_point(|x| x.0 <= m.0);
    matches.insert(at, m);
    let mut evicted = 0;
    while matches.len() > MAX_WINDOW_MATCHES {
        matches.pop_front();
        evicted += 1;
    }
    evicted
}

/// The windows that end at the group's match times after `evaluated_us` and meet the condition, oldest
/// first. `evaluated_us` moves to the newest of those times, and matches no later window can hold are
/// forgotten.
pub fn windows(
    spec: &CorrelationSpec,
    steps: usize,
    window_us: i64,
    matches: &mut VecDeque<Match>,
    evaluated_us: &mut Option<i64>,
) -> Vec<Window> {
    let mut ends: Vec<i64> = matches.iter().map(|m| m.0).filter(|t| evaluated_us.is_none_or(|e| *t > e)).collect();
    ends.dedup();
    let mut out = Vec::new();
    {
        // The window slides forward over the sorted matches: what it holds is counted as matches enter and
        // leave, so a burst of n matches in one group costs O(n), not O(n * window).
        let mut held = Held::default();
        let (mut from, mut to) = (0, 0);
        for &end in &ends {
            let start = end.saturating_sub(window_us);
            while to < matches.len() && matches[to].0 <= end {
                held.add(&matches[to]);
                to += 1;
            }
            while from < to && matches[from].0 < start {
                held.remove(&matches[from]);
                from += 1;
            }
            let present = held.slots.len();
            let measure = match spec.measure {
                Measure::EventCount => held.ids.len(),
                Measure::ValueCount => held.values.len(),
                Measure::Temporal | Measure::TemporalOrdered => present,
            };
            if !spec.op.holds(measure as i64, spec.count) {
                continue;
            }
            if spec.measure == Measure::TemporalOrdered {
                let window: Vec<&Match> = matches.range(from..to).collect();
                if let Some((measure, event_ids)) = ordered(spec, steps, &window) {
                    let events = event_ids.len();
                    out.push(Window { start_us: start, end_us: end, measure, event_ids, events, capped: false });
                }
                continue;
            }
            let events = held.ids.len();
            let (event_ids, capped) = if events <= ALERT_EVENT_IDS {
                (ids(matches.range(from..to)), false)
            } else {
                // the newest ALERT_EVENT_IDS events of the window
                let mut newest: Vec<String> = Vec::with_capacity(ALERT_EVENT_IDS);
                let mut seen = std::collections::HashSet::new();
                for m in matches.range(from..to).rev() {
                    if seen.insert(m.1.as_str()) {
                        newest.push(m.1.clone());
                        if newest.len() == ALERT_EVENT_IDS {
                            break;
                        }
                    }
                }
                (ids_of(newest), true)
            };
            out.push(Window { start_us: start, end_us: end, measure: measure as i64, event_ids, events, capped });
        }
    }
    if let Some(&newest) = ends.last() {
        *evaluated_us = Some(newest);
        let keep_from = newest.saturating_sub(window_us);
        while matches.front().is_some_and(|m| m.0 < keep_from) {
            matches.pop_front();
        }
    }
    out
}

/// What a sliding window holds: its distinct events, counted values and steps, each with a count.
#[derive(Default)]
struct Held<'a> {
    ids: std::collections::HashMap<&'a str, u32>,
    values: std::collections::HashMap<&'a str, u32>,
    slots: std::collections::HashMap<usize, u32>,
}

impl<'a> Held<'a> {
    fn add(&mut self, m: &'a Match) {
        *self.ids.entry(m.1.as_str()).or_default() += 1;
        if let Some(v) = m.3.as_deref() {
            *self.values.entry(v).or_default() += 1;
        }
        *self.slots.entry(m.2).or_default() += 1;
    }

    fn remove(&mut self, m: &'a Match) {
        fn take<K: std::hash::Hash + Eq>(map: &mut std::collections::HashMap<K, u32>, key: K) {
            if let std::collections::hash_map::Entry::Occupied(mut e) = map.entry(key) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
        take(&mut self.ids, m.1.as_str());
        if let Some(v) = m.3.as_deref() {
            take(&mut self.values, v);
        }
        take(&mut self.slots, m.2);
    }
}

/// `temporal_ordered`: the steps present, and the chains in order (see the module docs).
fn ordered(spec: &CorrelationSpec, steps: usize, window: &[&Match]) -> Option<(i64, Vec<String>)> {
    let present: BTreeSet<usize> = window.iter().map(|m| m.2).collect();
    let measure = present.len() as i64;
    if !spec.op.holds(measure, spec.count) {
        return None;
    }
    let on_chain = |slots: &[usize], times: &[Option<i64>], m: &Match| {
        slots.iter().zip(times).any(|(slot, time)| m.2 == *slot && Some(m.0) == *time)
    };
    match spec.op {
        CompareOp::Gt | CompareOp::Gte => {
            // asking for N steps in order: any N of them, in the listed order, will do
            let needed = if spec.op == CompareOp::Gt { spec.count.saturating_add(1) } else { spec.count };
            let needed = usize::try_from(needed.max(0)).unwrap_or(usize::MAX);
            let mut evidence: Option<Vec<String>> = None;
            for slots in combinations(steps, needed) {
                if !slots.iter().all(|s| present.contains(s)) {
                    continue;
                }
                let times = chain(window, &slots);
                if times.iter().all(Option::is_some) {
                    let chosen = window.iter().copied().filter(|m| slots.is_empty() || on_chain(&slots, &times, m));
                    evidence.get_or_insert_with(Vec::new).extend(chosen.map(|m| m.1.clone()));
                }
            }
            evidence.map(|e| (measure, ids_of(e)))
        }
        _ => {
            let slots: Vec<usize> = (0..steps).collect();
            let times = chain(window, &slots);
            if slots.iter().zip(&times).any(|(slot, time)| present.contains(slot) && time.is_none()) {
                return None;
            }
            Some((measure, ids(window.iter().copied().filter(|m| on_chain(&slots, &times, m)))))
        }
    }
}

/// For each step of `slots` in turn, the earliest time of its matches in the window after the previous
/// step's chosen time (a step without a time is passed over).
fn chain(window: &[&Match], slots: &[usize]) -> Vec<Option<i64>> {
    let mut previous: Option<i64> = None;
    slots
        .iter()
        .map(|&slot| {
            let time = window.iter().filter(|m| m.2 == slot && previous.is_none_or(|p| m.0 > p)).map(|m| m.0).min();
            if time.is_some() {
                previous = time;
            }
            time
        })
        .collect()
}

/// Every choice of `k` of the indices `0..n`, each in increasing order, in lexicographic order.
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    fn extend(start: usize, n: usize, k: usize, current: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if current.len() == k {
            out.push(current.clone());
            return;
        }
        for i in start..n {
            current.push(i);
            extend(i + 1, n, k, current, out);
            current.pop();
        }
    }
    let mut out = Vec::new();
    if k <= n {
        extend(0, n, k, &mut Vec::new(), &mut out);
    }
    out
}

fn ids<'a>(matches: impl Iterator<Item = &'a Match>) -> Vec<String> {
    ids_of(matches.map(|m| m.1.clone()).collect())
}

fn ids_of(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn spec(measure: Measure, op: CompareOp, count: i64) -> CorrelationSpec {
        CorrelationSpec { measure, op, count }
    }

    fn run(spec: &CorrelationSpec, steps: usize, span: i64, input: &[(i64, &str, usize, Option<&str>)]) -> Vec<Window> {
        let mut matches = VecDeque::new();
        let mut evaluated = None;
        let mut out = Vec::new();
        for (t, id, step, v) in input {
            add(&mut matches, (t * S, (*id).to_string(), *step, v.map(str::to_string)));
            out.extend(windows(spec, steps, span * S, &mut matches, &mut evaluated));
        }
        out
    }

    fn ends(windows: &[Window]) -> Vec<(i64, i64)> {
        windows.iter().map(|w| (w.end_us / S, w.measure)).collect()
    }

    #[test]
    fn event_count_alerts_every_window_and_bounds_are_inclusive() {
        let gte3 = spec(Measure::EventCount, CompareOp::Gte, 3);
        let input = [(0, "a", 0, None), (5, "b", 0, None), (10, "c", 0, None), (11, "d", 0, None), (30, "e", 0, None)];
        let w = run(&gte3, 1, 10, &input);
        // at 10: [0, 10] holds a, b, c; at 11: [1, 11] holds b, c, d; at 30: only e
        assert_eq!(ends(&w), vec![(10, 3), (11, 3)]);
        assert_eq!(w[1].event_ids, vec!["b", "c", "d"]);
        assert_eq!(w[1].start_us, S);
        // one batch or one event at a time: the same windows
        let mut matches = VecDeque::new();
        for (t, id, step, _) in input {
            add(&mut matches, (t * S, id.to_string(), step, None));
        }
        assert_eq!(windows(&gte3, 1, 10 * S, &mut matches, &mut None), w);
        let lt2 = spec(Measure::EventCount, CompareOp::Lt, 2);
        assert_eq!(ends(&run(&lt2, 1, 10, &input)), vec![(0, 1), (30, 1)]);
    }

    #[test]
    fn a_flood_in_one_group_is_measured_sliding_and_names_its_newest_events() {
        // 20,000 matches a second apart in one group, a window of a day: every window from the third on
        // alerts; measured by sliding counts (a window walk per match would be 20,000 x 20,000)
        let gte3 = spec(Measure::EventCount, CompareOp::Gte, 3);
        let mut matches = VecDeque::new();
        for i in 0..20_000i64 {
            add(&mut matches, (i * S, format!("e{i:05}"), 0, None));
        }
        let w = windows(&gte3, 1, 86_400 * S, &mut matches, &mut None);
        assert_eq!(w.len(), 19_998);
        let last = w.last().unwrap();
        assert_eq!(
            (last.measure, last.events, last.capped, last.event_ids.len()),
            (20_000, 20_000, true, ALERT_EVENT_IDS)
        );
        assert_eq!(last.event_ids.first().map(String::as_str), Some("e19000"), "the newest 1,000");
        assert!(!w[0].capped && w[0].event_ids == ["e00000", "e00001", "e00002"]);
    }

    #[test]
    fn value_count_counts_distinct_non_null_values() {
        let gte2 = spec(Measure::ValueCount, CompareOp::Gte, 2);
        let input = [(0, "a", 0, Some("x")), (1, "b", 0, Some("x")), (2, "c", 0, None), (3, "d", 0, Some("y"))];
        let w = run(&gte2, 1, 60, &input);
        assert_eq!(ends(&w), vec![(3, 2)]);
        assert_eq!(w[0].event_ids, vec!["a", "b", "c", "d"], "every event of the window is evidence");
    }

    #[test]
    fn temporal_ordered_chains_and_partial_orders() {
        let all = spec(Measure::TemporalOrdered, CompareOp::Gte, 3);
        // b before a: no chain a < b < c until a second b comes after a
        let input =
            [(0, "b1", 1, None), (1, "a1", 0, None), (2, "c1", 2, None), (3, "b2", 1, None), (4, "c2", 2, None)];
        let w = run(&all, 3, 60, &input);
        assert_eq!(ends(&w), vec![(4, 3)]);
        assert_eq!(w[0].event_ids, vec!["a1", "b2", "c2"]);
        let unordered = spec(Measure::Temporal, CompareOp::Gte, 3);
        assert_eq!(ends(&run(&unordered, 3, 60, &input)), vec![(2, 3), (3, 3), (4, 3)]);
        // two of three in order: (a, c) at 2 already
        let two = spec(Measure::TemporalOrdered, CompareOp::Gte, 2);
        let w = run(&two, 3, 60, &input);
        // at 1 (b, a) is no chain; at 2 both (a, c) and (b, c) are, and the evidence joins them
        assert_eq!(ends(&w), vec![(2, 3), (3, 3), (4, 3)]);
        assert_eq!(w[0].event_ids, vec!["a1", "b1", "c1"]);
        assert_eq!(combinations(3, 2), vec![vec![0, 1], vec![0, 2], vec![1, 2]]);
        assert!(combinations(2, 3).is_empty());
    }
}

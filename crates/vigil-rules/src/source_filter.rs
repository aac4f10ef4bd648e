//! Which event sources a rule can match at all, read from its plan, so that a micro-batch holding none of
//! them skips the rule instead of scanning it (issue 22: the pack's cost must not grow with rules for
//! sources a stream does not carry: on a CloudTrail topic, the Kubernetes, Okta, GitHub, web and syslog
//! rules of the SOC 2 pack cost nothing).
//!
//! A rule's sources are known when **every** scan of `events` in its plan sits below a filter that
//! requires `source = 'x'`, `source IN ('x', ...)`, or an `OR` of those, as one of the filter's `AND`ed
//! conditions; then the rule's sources are the union over its scans. Anything the walk does not follow
//! (a join, an aggregate or window between the filter and the scan, a projection that does not pass
//! `source` through unchanged) leaves that scan unknown, and a rule with any unknown scan always runs.
//!
//! Skipping is exact: a plan whose every scan is empty returns no row with a time and an event id (a global
//! aggregate over nothing gives one row of nulls, which raises no alert), and a stateful rule still moves
//! its event time forward, as with an empty result.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};

/// The column rules select sources by.
const SOURCE: &str = "source";

/// The sources `plan` can match, or `None` when that is not known (the rule always runs).
pub fn required_sources(plan: &LogicalPlan) -> Option<BTreeSet<String>> {
    let mut scans: Vec<Option<BTreeSet<String>>> = Vec::new();
    walk(plan, None, &mut scans);
    let mut all = BTreeSet::new();
    for scan in scans {
        all.extend(scan?);
    }
    Some(all)
}

/// Every scan below `plan`, with the sources the filters above it (down to `plan`) require.
fn walk(plan: &LogicalPlan, required: Option<BTreeSet<String>>, scans: &mut Vec<Option<BTreeSet<String>>>) {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let mut required = required;
            for filter in &scan.filters {
                required = intersect(required, sources_of(filter));
            }
            scans.push(required);
        }
        LogicalPlan::Filter(filter) => {
            let required = intersect(required, sources_of(&filter.predicate));
            walk(&filter.input, required, scans);
        }
        LogicalPlan::Projection(projection) => {
            // `source` must reach the filter above as the column itself, and no other column take its name
            let renamed = projection.expr.iter().any(|e| matches!(e, Expr::Alias(a) if a.name == SOURCE));
            let passes = !renamed && projection.expr.iter().any(is_source_column);
            walk(&projection.input, required.filter(|_| passes), scans);
        }
        LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Distinct(_)
        | LogicalPlan::Union(_) => {
            for input in plan.inputs() {
                walk(input, required.clone(), scans);
            }
        }
        // a join, an aggregate, a window...: the filters above do not simply apply to the rows scanned
        _ => {
            for input in plan.inputs() {
                walk(input, None, scans);
            }
        }
    }
}

fn intersect(a: Option<BTreeSet<String>>, b: Option<BTreeSet<String>>) -> Option<BTreeSet<String>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The sources a predicate requires, when one of its `AND`ed conditions names them.
fn sources_of(predicate: &Expr) -> Option<BTreeSet<String>> {
    match predicate {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            intersect(sources_of(left), sources_of(right))
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            let (l, r) = (sources_of(left)?, sources_of(right)?);
            Some(l.union(&r).cloned().collect())
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
            match (is_source_column(left), is_source_column(right)) {
                (true, false) => text(right).map(|t| BTreeSet::from([t])),
                (false, true) => text(left).map(|t| BTreeSet::from([t])),
                _ => None,
            }
        }
        Expr::InList(list) if !list.negated && is_source_column(&list.expr) => {
            list.list.iter().map(text).collect::<Option<BTreeSet<String>>>()
        }
        _ => None,
    }
}

fn is_source_column(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == SOURCE)
}

fn text(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(value, _) => value.try_as_str().flatten().map(str::to_string),
        _ => None,
    }
}

/// The sources the events of `batches` come from; `None` when a batch does not say (every rule runs).
pub fn present(batches: &[RecordBatch]) -> Option<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    for batch in batches {
        let column = batch.column_by_name(SOURCE)?;
        if !matches!(column.data_type(), DataType::Utf8) {
            return None;
        }
        let values = column.as_string::<i32>();
        let mut last: Option<&str> = None;
        for row in 0..values.len() {
            if values.is_null(row) {
                continue;
            }
            let value = values.value(row);
            if last != Some(value) {
                if !found.contains(value) {
                    found.insert(value.to_string());
                }
                last = Some(value);
            }
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;
    use std::sync::Arc;

    async fn sources(sql: &str) -> Option<BTreeSet<String>> {
        let ctx = SessionContext::new();
        let empty = RecordBatch::new_empty(vigil_schema::event_schema());
        let table = datafusion::datasource::MemTable::try_new(vigil_schema::event_schema(), vec![vec![empty]]).unwrap();
        ctx.register_table("events", Arc::new(table)).unwrap();
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        required_sources(&ctx.state().optimize(&plan).unwrap())
    }

    fn set(items: &[&str]) -> Option<BTreeSet<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[tokio::test]
    async fn sources_are_read_from_filters_above_every_scan() {
        let cases = [
            (
                "SELECT time, event_id FROM events WHERE source = 'aws.cloudtrail' AND activity = 'X'",
                set(&["aws.cloudtrail"]),
            ),
            ("SELECT time, event_id FROM events WHERE 'okta.system_log' = source", set(&["okta.system_log"])),
            (
                "SELECT time, event_id FROM events WHERE source IN ('a', 'b') AND (activity = 'x' OR activity = 'y')",
                set(&["a", "b"]),
            ),
            (
                "SELECT time, event_id FROM events WHERE (source = 'a' AND outcome = 'failure') OR source = 'b'",
                set(&["a", "b"]),
            ),
            (
                "SELECT time, event_id FROM events WHERE source = 'a' UNION ALL SELECT time, event_id FROM events WHERE source = 'b'",
                set(&["a", "b"]),
            ),
            (
                "SELECT max(time) AS time, array_agg(event_id) AS event_ids FROM events WHERE source = 'a' GROUP BY src_ip",
                set(&["a"]),
            ),
            // not known: the rule always runs
            ("SELECT time, event_id, source FROM events", None),
            ("SELECT time, event_id FROM events WHERE source = 'a' OR activity = 'x'", None),
            ("SELECT time, event_id FROM events WHERE source <> 'a'", None),
            ("SELECT time, event_id FROM events WHERE source NOT IN ('a')", None),
            ("SELECT time, event_id FROM events WHERE source = 'a' UNION ALL SELECT time, event_id FROM events", None),
            ("SELECT e.time, e.event_id FROM events e JOIN events f ON e.src_ip = f.src_ip WHERE e.source = 'a'", None),
            (
                "SELECT time, event_id FROM (SELECT time, event_id, upper(source) AS source FROM events) WHERE source = 'A'",
                None,
            ),
            (
                "SELECT time, event_id FROM (SELECT time, event_id, activity AS source FROM events) WHERE source = 'A'",
                None,
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(sources(sql).await, expected, "{sql}");
        }
    }
}

//! A rule's result rows: where their columns are ([`Shape`]), what they become (alerts of a stateless rule,
//! signals of a stateful one), and where each event of a micro-batch arrived in event time ([`Arrivals`]).

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimestampMicrosecondType, UInt32Type, UInt64Type};
use datafusion::error::DataFusionError;
use vigil_schema::timestamp_type;

use crate::alert::Alert;
use crate::rule::{Rule, RuleKind};
use crate::stateful::Signal;
use crate::{Error, Result};

/// Where a rule's result puts the columns an alert needs.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub(crate) time: usize,
    pub(crate) event_ids: EventIds,
    pub(crate) fields: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum EventIds {
    One(usize),
    Many(usize),
}

pub(crate) fn shape_of(rule: &Rule, schema: &arrow::datatypes::Schema) -> Result<Shape> {
    let at = |name: &str| schema.fields().iter().position(|f| f.name() == name);
    let line = rule.query_line;
    let time = at("time").ok_or_else(|| {
        Error::rule(&rule.path, line, "the query must return a `time` column (the event time, or max(time) AS time)")
    })?;
    if !matches!(schema.field(time).data_type(), DataType::Timestamp(_, _)) {
        return Err(Error::rule(
            &rule.path,
            line,
            "`time` must be a timestamp (select the events' time column or an aggregate of it)",
        ));
    }
    let event_ids = match (at("event_id"), at("event_ids")) {
        (Some(i), None) if schema.field(i).data_type() == &DataType::Utf8 => EventIds::One(i),
        (None, Some(i)) if matches!(schema.field(i).data_type(), DataType::List(f) if f.data_type() == &DataType::Utf8) => {
            EventIds::Many(i)
        }
        _ => {
            return Err(Error::rule(
                &rule.path,
                line,
                "the query must return `event_id` (one alert per row) or `array_agg(event_id) AS event_ids` (one alert per group), not both",
            ));
        }
    };
    let id_col = match event_ids {
        EventIds::One(i) | EventIds::Many(i) => i,
    };
    if let Some(spec) = &rule.stateful {
        if matches!(event_ids, EventIds::Many(_)) {
            return Err(Error::rule(
                &rule.path,
                line,
                match rule.kind {
                    RuleKind::Group => {
                        "a rule with `suppress` returns one row per event (`event_id`), not `event_ids`: \
                                        the groups gather them"
                            .to_string()
                    }
                    kind => format!("a {} rule returns one row per event (`event_id`), not `event_ids`", kind.as_str()),
                },
            ));
        }
        let mut needed: Vec<&str> = spec.key.iter().map(String::as_str).collect();
        if matches!(rule.kind, RuleKind::Sequence | RuleKind::Correlation) {
            needed.push("step");
        }
        needed.extend(spec.distinct.as_deref());
        if let Some(missing) = needed.iter().find(|c| at(c).is_none()) {
            return Err(Error::rule(
                &rule.path,
                line,
                format!("the query must return the column `{missing}` that the header names"),
            ));
        }
    }
    let fields = (0..schema.fields().len()).filter(|&i| i != time && i != id_col).collect();
    Ok(Shape { time, event_ids, fields })
}

/// Where each event of a micro-batch arrived, and the newest event time seen up to it. Event time never
/// moves past the wall clock: an event dated a little ahead (within the skew limit) moves it to now, and
/// one dated further is set apart as `future` and does not move it at all.
pub(crate) struct Arrivals {
    /// Arrival indices of each event id, in order (an id repeats when a record does).
    pub(crate) index: HashMap<String, Vec<usize>>,
    /// Newest event time seen up to and including each arrival.
    pub(crate) newest_at: Vec<i64>,
    /// Newest event time after the batch.
    pub(crate) newest: i64,
    /// Ids of the events dated past the limit, and the newest of their times.
    pub(crate) future: Vec<String>,
    pub(crate) future_newest: i64,
}

impl Arrivals {
    /// With `indexed` (stateful rules need it), also where each event arrived.
    pub(crate) fn of(
        batches: &[RecordBatch],
        mut newest: i64,
        (now, accepted_until): (i64, i64),
        indexed: bool,
    ) -> Result<Self> {
        let rows: usize = if indexed { batches.iter().map(RecordBatch::num_rows).sum() } else { 0 };
        let mut index: HashMap<String, Vec<usize>> = HashMap::with_capacity(rows);
        let mut newest_at = Vec::with_capacity(rows);
        let mut future = Vec::new();
        let mut future_newest = i64::MIN;
        let missing = || Error::Eval {
            rule: "(engine)".into(),
            source: DataFusionError::Internal("events batch without time or event_id".into()),
        };
        for batch in batches {
            let times = batch
                .column_by_name(vigil_schema::TIME)
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
                .ok_or_else(missing)?;
            let ids = batch
                .column_by_name(vigil_schema::EVENT_ID)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(missing)?;
            for row in 0..batch.num_rows() {
                if times.is_valid(row) {
                    let time = times.value(row);
                    if time > accepted_until {
                        future.push(ids.value(row).to_string());
                        future_newest = future_newest.max(time);
                    } else {
                        newest = newest.max(time.min(now));
                    }
                }
                if indexed {
                    index.entry(ids.value(row).to_string()).or_default().push(newest_at.len());
                    newest_at.push(newest);
                }
            }
        }
        Ok(Arrivals { index, newest_at, newest, future, future_newest })
    }

    /// The arrival index of the `n`-th signal of `event_id` (a record that repeats arrives more than once).
    pub(crate) fn nth(&self, event_id: &str, n: usize) -> usize {
        match self.index.get(event_id) {
            Some(at) => at.get(n).or(at.last()).copied().unwrap_or(self.newest_at.len()),
            None => self.newest_at.len(),
        }
    }

    pub(crate) fn newest_at(&self, index: usize) -> i64 {
        self.newest_at.get(index).copied().unwrap_or(self.newest)
    }
}

/// The result rows of a stateful rule as signals.
pub(crate) fn signals_from_batch(
    rule: &Rule,
    shape: &Shape,
    batch: &RecordBatch,
    out: &mut Vec<Signal>,
) -> datafusion::error::Result<()> {
    let Some(spec) = &rule.stateful else { return Ok(()) };
    if batch.num_rows() == 0 {
        return Ok(());
    }
    let times = cast(batch.column(shape.time), &timestamp_type())?;
    let times = times.as_primitive::<TimestampMicrosecondType>();
    let EventIds::One(id_col) = shape.event_ids else { return Ok(()) };
    let ids = batch.column(id_col).as_string::<i32>();
    let fields = field_rows(shape, batch)?;
    for (row, fields) in fields.into_iter().enumerate() {
        if times.is_null(row) || ids.is_null(row) {
            continue;
        }
        let text = |column: &str| match fields.get(column) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let step = match rule.kind {
            RuleKind::Sequence | RuleKind::Correlation => match spec.steps.iter().position(|s| *s == text("step")) {
                Some(i) => i,
                None => continue, // a row that is no step of the sequence
            },
            _ => 0,
        };
        let (key, distinct) = if rule.kind == RuleKind::Correlation {
            // Sigma compares group keys and counted values case-insensitively (pySigma's SQLite: ASCII
            // only), and a null value is not counted
            let key = spec.key.iter().map(|k| text(k).to_ascii_lowercase()).collect::<Vec<_>>().join("\u{1f}");
            let distinct = spec
                .distinct
                .as_deref()
                .filter(|c| !matches!(fields.get(*c), None | Some(serde_json::Value::Null)))
                .map(|c| text(c).to_ascii_lowercase());
            (key, distinct)
        } else {
            (spec.key.iter().map(|k| text(k)).collect::<Vec<_>>().join("\u{1f}"), spec.distinct.as_deref().map(text))
        };
        out.push(Signal {
            time_us: times.value(row),
            event_id: ids.value(row).to_string(),
            key,
            step,
            distinct,
            fields,
            arrival: 0,
        });
    }
    Ok(())
}

/// Every column but `time` and the event ids, per row, as JSON objects.
pub(crate) fn field_rows(
    shape: &Shape,
    batch: &RecordBatch,
) -> datafusion::error::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    use serde_json::Value;
    let rows_n = batch.num_rows();
    let mut rows: Vec<serde_json::Map<String, serde_json::Value>> = vec![serde_json::Map::new(); rows_n];
    // Text, whole numbers and booleans become JSON values directly (every signal of a stateful rule goes
    // through here); other types through Arrow's JSON writer. Nulls are left out, as the writer does.
    let mut through_writer = Vec::new();
    let schema = batch.schema();
    for &i in &shape.fields {
        let name = schema.field(i).name();
        let column = batch.column(i);
        let mut put = |row: usize, value: Value| {
            rows[row].insert(name.clone(), value);
        };
        macro_rules! each {
            ($array:expr, $to:expr) => {{
                let array = $array;
                for row in 0..rows_n {
                    if array.is_valid(row) {
                        put(row, $to(array.value(row)));
                    }
                }
            }};
        }
        match column.data_type() {
            DataType::Utf8 => each!(column.as_string::<i32>(), |v: &str| Value::String(v.to_string())),
            DataType::LargeUtf8 => each!(column.as_string::<i64>(), |v: &str| Value::String(v.to_string())),
            DataType::Utf8View => each!(column.as_string_view(), |v: &str| Value::String(v.to_string())),
            DataType::Boolean => each!(column.as_boolean(), Value::Bool),
            DataType::Int64 => each!(column.as_primitive::<Int64Type>(), Value::from),
            DataType::Int32 => each!(column.as_primitive::<Int32Type>(), Value::from),
            DataType::UInt64 => each!(column.as_primitive::<UInt64Type>(), Value::from),
            DataType::UInt32 => each!(column.as_primitive::<UInt32Type>(), Value::from),
            _ => through_writer.push(i),
        }
    }
    if !through_writer.is_empty() {
        let field_batch = batch.project(&through_writer)?;
        let mut buf = Vec::new();
        {
            let mut writer = arrow::json::ArrayWriter::new(&mut buf);
            writer.write(&field_batch)?;
            writer.finish()?;
        }
        let written: Vec<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_slice(&buf).map_err(|e| DataFusionError::External(Box::new(e)))?;
        for (row, fields) in rows.iter_mut().zip(written) {
            row.extend(fields);
        }
    }
    Ok(rows)
}

pub(crate) fn first_line(e: &DataFusionError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

pub(crate) fn alerts_from_batch(
    rule: &Rule,
    shape: &Shape,
    batch: &RecordBatch,
    out: &mut Vec<Alert>,
) -> datafusion::error::Result<()> {
    if batch.num_rows() == 0 {
        return Ok(());
    }
    let times = cast(batch.column(shape.time), &timestamp_type())?;
    let times = times.as_primitive::<TimestampMicrosecondType>();
    for (row, fields) in field_rows(shape, batch)?.into_iter().enumerate() {
        let event_ids: Vec<String> = match shape.event_ids {
            EventIds::One(i) => {
                let col = batch.column(i).as_string::<i32>();
                if col.is_null(row) { Vec::new() } else { vec![col.value(row).to_string()] }
            }
            EventIds::Many(i) => {
                let list = batch.column(i).as_list::<i32>();
                if list.is_null(row) {
                    Vec::new()
                } else {
                    let values = list.value(row);
                    let values = values.as_string::<i32>();
                    values.iter().flatten().map(str::to_string).collect()
                }
            }
        };
        if event_ids.is_empty() || times.is_null(row) {
            continue;
        }
        out.push(Alert::new(rule, times.value(row), event_ids, fields));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray, StringViewArray};
    use arrow::array::{TimestampMicrosecondArray, UInt64Array};

    use super::*;

    /// What the fields were before the direct conversion: every column through Arrow's JSON writer.
    fn through_writer(batch: &RecordBatch) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let mut buf = Vec::new();
        let mut writer = arrow::json::ArrayWriter::new(&mut buf);
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        serde_json::from_slice(&buf).unwrap()
    }

    #[test]
    fn fields_are_what_the_json_writer_gives() {
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("text", Arc::new(StringArray::from(vec![Some("a \"q\" \\ é \u{1}"), None, Some("")]))),
            (
                "view",
                Arc::new(StringViewArray::from(vec![
                    None,
                    Some("long enough to leave the view's inline bytes"),
                    Some("x"),
                ])),
            ),
            ("n", Arc::new(Int64Array::from(vec![Some(i64::MIN), Some(0), None]))),
            ("m", Arc::new(Int32Array::from(vec![Some(-1), None, Some(7)]))),
            ("u", Arc::new(UInt64Array::from(vec![Some(u64::MAX), Some(1), None]))),
            ("b", Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)]))),
            ("f", Arc::new(Float64Array::from(vec![Some(1.5), None, Some(1e300)]))),
            ("t", Arc::new(TimestampMicrosecondArray::from(vec![Some(1), None, Some(1_722_588_804_000_000)]))),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let shape = Shape { time: 0, event_ids: EventIds::One(0), fields: (0..batch.num_columns()).collect() };
        assert_eq!(field_rows(&shape, &batch).unwrap(), through_writer(&batch));
    }
}

//! Attribute columns: `json_get_*(attrs, 'a', 'b')` with a literal path, computed once per micro-batch.
//!
//! Rules reach the source fields a normalizer does not map through `attrs`, the JSON text of every
//! unmapped member. Called per row, each `json_get_str(attrs, ...)` parses that text again from its start,
//! so a pack of 50 rules parsed every event's `attrs` 90 times: half of the pipeline's time.
//!
//! At planning, [`AttrColumns::collect`] finds every call of `json_get_str`, `json_get_json`,
//! `json_as_text` or `json_get_bool` whose first argument is the `attrs` column and whose path is made of
//! literals, across all rules; [`AttrColumns::rewrite`] points the rule's scan at the `events` table
//! widened by one column per distinct (function, path), and replaces each call by a reference to its
//! column (output names are kept). Per micro-batch, [`AttrColumns::extend`] fills all of them with one
//! walk over each row's `attrs`.
//!
//! The same holds for the record itself: `json_*(TRY_CAST(raw AS VARCHAR), ...)`, which Sigma rules use to
//! read the record's own fields ([`crate::sigma`]), is planned as a column filled by a walk over `raw` (a
//! record that is not UTF-8 gives nulls, as `TRY_CAST` does).
//!
//! The values are the functions' own: the first of repeated keys wins, a text step reaching an array is
//! an index, a negative index counts from the end, a value of another JSON type is null (`json_get_bool`
//! also reads `"true"`/`"false"` strings). One difference exists only for malformed `attrs`, which the
//! normalizers never write: a member whose value is malformed yields null here, where the function may
//! still find a path that ends before the malformation. A call the rewrite cannot place (over a derived
//! table's `attrs`, or with a computed path) stays a function call: slower, same answer.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::{ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScanBuilder, TableSource};
use jiter::{Jiter, Peek};
use vigil_schema::json_scan::members;
use vigil_schema::{ATTRS, RAW, event_schema};

/// Prefix of the attribute columns' names; rules never see them (`SELECT *` lists the base columns).
const PREFIX: &str = "__vigil_attr_";

/// The JSON function a column stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Getter {
    /// `json_get_str`: a JSON string, decoded.
    Str,
    /// `json_get_json`: the value's JSON text.
    Json,
    /// `json_as_text` (`->>`): a string decoded, any other value but `null` as its JSON text.
    Text,
    /// `json_get_bool`: `true`/`false`, or a string spelling one.
    Bool,
}

impl Getter {
    fn of(function: &str) -> Option<Self> {
        match function {
            "json_get_str" => Some(Getter::Str),
            "json_get_json" => Some(Getter::Json),
            "json_as_text" => Some(Getter::Text),
            "json_get_bool" => Some(Getter::Bool),
            _ => None,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Getter::Bool => DataType::Boolean,
            _ => DataType::Utf8,
        }
    }
}

/// One step of a path: an object key, or an array index (negative from the end).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    Key(String),
    Index(i64),
}

/// One attribute column: a function and a path whose first step is a key of `attrs` (or of `raw`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AttrColumn {
    /// Over `TRY_CAST(raw AS VARCHAR)` instead of `attrs`.
    raw: bool,
    getter: Getter,
    first: String,
    rest: Vec<Step>,
}

/// The attribute columns of a rule pack, and the widened `events` schema that carries them.
#[derive(Debug, Clone)]
pub(crate) struct AttrColumns {
    columns: Vec<AttrColumn>,
    index: HashMap<AttrColumn, usize>,
    /// Column indexes by (over `raw`, first key), in column order. A handful of keys: a scan beats hashing
    /// each key.
    by_first: Vec<((bool, String), Vec<usize>)>,
}

/// The column a call stands for, if it is `getter(<table>.attrs, literal, ...)` with a key first.
fn attr_call(expr: &Expr) -> Option<(&Column, AttrColumn)> {
    let Expr::ScalarFunction(ScalarFunction { func, args }) = expr else { return None };
    let getter = Getter::of(func.name())?;
    let (base, path) = args.split_first()?;
    let (attrs, raw) = match base {
        Expr::Column(attrs) if attrs.name == ATTRS => (attrs, false),
        Expr::TryCast(TryCast { expr, field }) if field.data_type() == &DataType::Utf8 => match expr.as_ref() {
            Expr::Column(raw) if raw.name == RAW => (raw, true),
            _ => return None,
        },
        _ => return None,
    };
    let mut steps = path.iter().map(|arg| match arg {
        Expr::Literal(
            ScalarValue::Utf8(Some(k)) | ScalarValue::Utf8View(Some(k)) | ScalarValue::LargeUtf8(Some(k)),
            _,
        ) => Some(Step::Key(k.clone())),
        Expr::Literal(ScalarValue::Int64(Some(i)), _) => Some(Step::Index(*i)),
        // `-1` before constant folding
        Expr::Negative(inner) => match inner.as_ref() {
            Expr::Literal(ScalarValue::Int64(Some(i)), _) => Some(Step::Index(-*i)),
            _ => None,
        },
        _ => None,
    });
    let Some(Some(Step::Key(first))) = steps.next() else { return None };
    let rest = steps.collect::<Option<Vec<_>>>()?;
    Some((attrs, AttrColumn { raw, getter, first, rest }))
}

impl AttrColumns {
    /// Finds the attribute calls of every plan (subqueries included).
    pub(crate) fn collect<'p>(plans: impl IntoIterator<Item = &'p LogicalPlan>) -> Self {
        let mut found = AttrColumns { columns: Vec::new(), index: HashMap::new(), by_first: Vec::new() };
        for plan in plans {
            let _ = plan.apply_with_subqueries(|node| {
                node.apply_expressions(|expr| {
                    expr.apply(|e| {
                        if let Some((_, column)) = attr_call(e) {
                            found.add(column);
                        }
                        Ok(TreeNodeRecursion::Continue)
                    })
                })?;
                Ok(TreeNodeRecursion::Continue)
            });
        }
        found
    }

    fn add(&mut self, column: AttrColumn) {
        if self.index.contains_key(&column) {
            return;
        }
        let i = self.columns.len();
        match self.by_first.iter_mut().find(|((raw, first), _)| *raw == column.raw && *first == column.first) {
            Some((_, columns)) => columns.push(i),
            None => self.by_first.push(((column.raw, column.first.clone()), vec![i])),
        }
        self.index.insert(column.clone(), i);
        self.columns.push(column);
    }

    /// No rule reads `attrs` through a literal path.
    pub(crate) fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The `events` schema followed by the attribute columns (all nullable).
    pub(crate) fn widened_schema(&self) -> SchemaRef {
        let base = event_schema();
        let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
        for (i, column) in self.columns.iter().enumerate() {
            fields.push(Field::new(format!("{PREFIX}{i}"), column.getter.data_type(), true));
        }
        Arc::new(Schema::new_with_metadata(fields, base.metadata().clone()))
    }

    /// Points `plan`'s full scans of `events` at `widened` and replaces each attribute call by its column.
    /// Returns `None` when the result does not plan to the same output (the caller keeps the original).
    pub(crate) fn rewrite(&self, plan: &LogicalPlan, widened: Arc<dyn TableSource>) -> Option<LogicalPlan> {
        if self.is_empty() {
            return None;
        }
        let rewritten = plan
            .clone()
            .transform_up_with_subqueries(|node| {
                if let LogicalPlan::TableScan(scan) = &node
                    && scan.table_name.table() == "events"
                    && scan.projection.is_none()
                {
                    let widened = TableScanBuilder::new(scan.table_name.clone(), widened.clone())
                        .with_filters(scan.filters.clone())
                        .with_fetch(scan.fetch)
                        .build()?;
                    return Ok(Transformed::yes(LogicalPlan::TableScan(widened)));
                }
                let names = NamePreserver::new(&node);
                let node = node.map_expressions(|expr| {
                    let saved = names.save(&expr);
                    let replaced = expr.transform_up(|e| match attr_call(&e) {
                        Some((attrs, column)) => {
                            let i = self.index[&column];
                            let col = Column::new(attrs.relation.clone(), format!("{PREFIX}{i}"));
                            Ok(Transformed::yes(Expr::Column(col)))
                        }
                        None => Ok(Transformed::no(e)),
                    })?;
                    Ok(if replaced.transformed { replaced.update_data(|e| saved.restore(e)) } else { replaced })
                })?;
                // always: a child's schema may have widened even where this node's expressions did not change
                node.map_data(LogicalPlan::recompute_schema)
            })
            .ok()?
            .data;
        // names and types; a function's result field may carry metadata (JSON-ness) a column does not
        let shape = |p: &LogicalPlan| -> Vec<(String, DataType)> {
            p.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect()
        };
        let same_output = shape(&rewritten) == shape(plan);
        let resolves = rewritten.apply_with_subqueries(check_columns).is_ok();
        (same_output && resolves).then_some(rewritten)
    }

    /// `batch` (in the `events` schema) followed by the attribute columns, from one walk over each row's
    /// `attrs`.
    pub(crate) fn extend(&self, batch: &RecordBatch, widened: &SchemaRef) -> Result<RecordBatch> {
        let attrs = batch.column_by_name(ATTRS).ok_or_else(|| DataFusionError::Internal("no attrs column".into()))?;
        let attrs =
            attrs.as_string_opt::<i32>().ok_or_else(|| DataFusionError::Internal("attrs is not Utf8".into()))?;
        let raw = batch.column_by_name(RAW).ok_or_else(|| DataFusionError::Internal("no raw column".into()))?;
        let raw = raw.as_binary_opt::<i32>().ok_or_else(|| DataFusionError::Internal("raw is not Binary".into()))?;
        let (over_attrs, over_raw) =
            (self.columns.iter().filter(|c| !c.raw).count(), self.columns.iter().filter(|c| c.raw).count());
        let rows = batch.num_rows();
        let mut builders: Vec<ColumnBuilder> = self
            .columns
            .iter()
            .map(|c| match c.getter {
                Getter::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(rows)),
                _ => ColumnBuilder::Text(StringBuilder::with_capacity(rows, rows * 16)),
            })
            .collect();
        let mut filled = vec![false; self.columns.len()];
        for row in 0..rows {
            filled.fill(false);
            if over_attrs > 0 && attrs.is_valid(row) {
                self.walk(false, over_attrs, attrs.value(row), &mut builders, &mut filled);
            }
            if over_raw > 0
                && raw.is_valid(row)
                && let Ok(text) = std::str::from_utf8(raw.value(row))
            {
                self.walk(true, over_raw, text, &mut builders, &mut filled);
            }
            for (builder, done) in builders.iter_mut().zip(&filled) {
                if !done {
                    builder.append_null();
                }
            }
        }
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.extend(builders.into_iter().map(ColumnBuilder::finish));
        Ok(RecordBatch::try_new(widened.clone(), columns)?)
    }

    /// Fills the columns whose first key `json` has (first occurrence); `filled` marks them.
    ///
    /// The top level is cut with the normalizers' own structural scanner, which jumps over the values no
    /// column wants (most of the text) without decoding them; only the wanted values are parsed.
    fn walk(&self, raw: bool, wanted: usize, json: &str, builders: &mut [ColumnBuilder], filled: &mut [bool]) {
        let mut remaining = wanted;
        for member in members(json.as_bytes()) {
            let Ok(member) = member else { return };
            let Some(columns) = self.columns_of(raw, json, member.key) else { continue };
            if filled[columns[0]] {
                continue;
            }
            let Some(value) = json.get(member.value) else { return };
            for &i in columns {
                let column = &self.columns[i];
                append_value(column.getter, value, &column.rest, &mut builders[i]);
                filled[i] = true;
                remaining -= 1;
            }
            if remaining == 0 {
                return;
            }
        }
    }

    /// The columns whose first key is the member key at `key` (the text inside its quotes).
    fn columns_of(&self, over_raw: bool, json: &str, key: Range<usize>) -> Option<&[usize]> {
        let raw = &json.as_bytes()[key.clone()];
        let decoded;
        let key: &[u8] = if raw.contains(&b'\\') {
            // an escaped key: compare its decoded text
            let quoted = json.get(key.start - 1..key.end + 1)?;
            decoded = Jiter::new(quoted.as_bytes()).next_str().ok()?.to_string();
            decoded.as_bytes()
        } else {
            raw
        };
        self.by_first
            .iter()
            .find(|((raw, first), _)| *raw == over_raw && first.as_bytes() == key)
            .map(|(_, columns)| columns.as_slice())
    }
}

/// Every column a node's expressions name is in its inputs' schemas (a rewrite may not place a column
/// where it does not flow, e.g. above a projection that drops it).
fn check_columns(node: &LogicalPlan) -> Result<TreeNodeRecursion> {
    let inputs = node.inputs();
    if inputs.is_empty() {
        return Ok(TreeNodeRecursion::Continue);
    }
    let mut schema = DFSchema::empty();
    for input in inputs {
        schema.merge(input.schema());
    }
    node.apply_expressions(|expr| {
        expr.apply(|e| {
            if let Expr::Column(c) = e
                && c.name.starts_with(PREFIX)
                && !schema.has_column(c)
            {
                return Err(DataFusionError::Plan(format!("{c} does not reach this node")));
            }
            Ok(TreeNodeRecursion::Continue)
        })
    })?;
    Ok(TreeNodeRecursion::Continue)
}

enum ColumnBuilder {
    Text(StringBuilder),
    Bool(BooleanBuilder),
}

impl ColumnBuilder {
    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Text(b) => b.append_null(),
            ColumnBuilder::Bool(b) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Appends what `getter` returns for `rest` inside `value` (the JSON text of the first key's value).
fn append_value(getter: Getter, value: &str, rest: &[Step], builder: &mut ColumnBuilder) {
    let Some((mut jiter, peek)) = find(value, rest) else {
        builder.append_null();
        return;
    };
    match (getter, builder) {
        (Getter::Str, ColumnBuilder::Text(b)) => match peek {
            Peek::String => b.append_option(jiter.known_str().ok()),
            _ => b.append_null(),
        },
        (Getter::Json, ColumnBuilder::Text(b)) => b.append_option(skip_text(value, &mut jiter, peek)),
        (Getter::Text, ColumnBuilder::Text(b)) => match peek {
            Peek::Null => b.append_null(),
            Peek::String => b.append_option(jiter.known_str().ok()),
            _ => b.append_option(skip_text(value, &mut jiter, peek)),
        },
        (Getter::Bool, ColumnBuilder::Bool(b)) => match peek {
            Peek::True | Peek::False => b.append_option(jiter.known_bool(peek).ok()),
            Peek::String => b.append_option(jiter.known_str().ok().and_then(|s| s.parse::<bool>().ok())),
            _ => b.append_null(),
        },
        (_, builder) => builder.append_null(),
    }
}

/// The value's raw JSON text.
fn skip_text<'j>(json: &'j str, jiter: &mut Jiter<'j>, peek: Peek) -> Option<&'j str> {
    let start = jiter.current_index();
    jiter.known_skip(peek).ok()?;
    json.get(start..jiter.current_index())
}

/// Walks `steps` into `json`, as `datafusion-functions-json` does.
fn find<'j>(json: &'j str, steps: &[Step]) -> Option<(Jiter<'j>, Peek)> {
    let mut jiter = Jiter::new(json.as_bytes());
    let mut peek = jiter.peek().ok()?;
    for step in steps {
        match (step, peek) {
            (Step::Key(key), Peek::Object) => {
                let mut next = jiter.known_object().ok()??;
                while next != key {
                    jiter.next_skip().ok()?;
                    next = jiter.next_key().ok()??;
                }
                peek = jiter.peek().ok()?;
            }
            (Step::Index(index), Peek::Array) => peek = array_step(&mut jiter, *index)?,
            (Step::Key(key), Peek::Array) => peek = array_step(&mut jiter, key.parse().ok()?)?,
            _ => return None,
        }
    }
    Some((jiter, peek))
}

fn array_step(jiter: &mut Jiter, index: i64) -> Option<Peek> {
    let index = match usize::try_from(index) {
        Ok(index) => index,
        Err(_) => {
            let mut counter = jiter.clone();
            let mut len = 0usize;
            let mut item = counter.known_array().ok()?;
            while let Some(peek) = item {
                counter.known_skip(peek).ok()?;
                len += 1;
                item = counter.array_step().ok()?;
            }
            len.checked_add_signed(isize::try_from(index).ok()?)?
        }
    };
    let mut item = jiter.known_array().ok()??;
    for _ in 0..index {
        jiter.known_skip(item).ok()?;
        item = jiter.array_step().ok()??;
    }
    Some(item)
}

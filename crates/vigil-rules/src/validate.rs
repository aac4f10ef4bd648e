//! Read-only checks on a rule's SQL before DataFusion ever plans it.
//!
//! A rule is refused unless it is exactly one query (`SELECT`/`WITH`/`VALUES`) whose tables are all known
//! (`events`, or names its own `WITH` clause defines). Refused with file and line: DDL and DML, `COPY`,
//! `SET`, `EXPLAIN` (so `EXPLAIN ANALYZE`, which executes), `CREATE EXTERNAL TABLE`, table functions
//! (`read_parquet('...')`, `generate_series`), quoted paths used as tables, and functions that read files.
//! Also refused, because they can only be mistakes in a rule that runs unattended on every micro-batch:
//! `WITH RECURSIVE` (unbounded iteration), and `range`/`generate_series`/`repeat`/`lpad`/`rpad`/
//! `array_repeat` whose size is not an integer literal within [`MAX_GENERATED`] (a series or string
//! the size of memory). DataFusion itself is then asked to plan the query with DDL, DML and statements
//! disallowed; at run time each rule is held to its budget (see [`crate::engine`]).

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName, Query, SetExpr, Spanned, Statement, TableFactor,
    UnaryOperator, Value, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::{Error, Result};

/// Functions that read or list files in some SQL engine; never allowed in a rule, whatever the engine has.
const FILE_FUNCTIONS: [&str; 12] = [
    "read_parquet",
    "read_csv",
    "read_csv_auto",
    "read_json",
    "read_json_auto",
    "read_ndjson",
    "read_text",
    "read_blob",
    "parquet_metadata",
    "parquet_scan",
    "glob",
    "sniff_csv",
];

/// Most elements a rule may generate with one call of a function in [`SIZED_FUNCTIONS`]: a series of
/// `range`/`generate_series`, the characters of `repeat`/`lpad`/`rpad`, the elements of `array_repeat`.
pub const MAX_GENERATED: i128 = 10_000;

/// Functions whose output size is set by an argument, and which arguments set it (0-based).
const SIZED_FUNCTIONS: [(&str, &[usize]); 6] = [
    ("range", &[0, 1, 2]),
    ("generate_series", &[0, 1, 2]),
    ("repeat", &[1]),
    ("lpad", &[1]),
    ("rpad", &[1]),
    ("array_repeat", &[1]),
];

/// The value of an integer literal (`42`, `-3`), else `None`.
fn integer_literal(expr: &Expr) -> Option<i128> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => integer_literal(expr).map(|n| -n),
        Expr::UnaryOp { op: UnaryOperator::Plus, expr } | Expr::Nested(expr) => integer_literal(expr),
        _ => None,
    }
}

/// Why a call of a sized function (`name`, its positional `args`) is refused, or `None` when its size
/// is literal and within [`MAX_GENERATED`].
fn oversized_call(name: &str, args: &[Option<&Expr>]) -> Option<String> {
    let (_, size_args) = SIZED_FUNCTIONS.iter().find(|(f, _)| *f == name)?;
    let values: Vec<Option<i128>> = args.iter().map(|a| a.and_then(integer_literal)).collect();
    let unbounded = || {
        Some(format!(
            "`{name}` must be given integer literals that make at most {MAX_GENERATED} elements (a rule runs \
             unattended on every batch; a size taken from data or a huge literal can exhaust memory)"
        ))
    };
    if name == "range" || name == "generate_series" {
        let (start, stop, step) = match values.as_slice() {
            [Some(stop)] => (0, *stop, 1),
            [Some(start), Some(stop)] => (*start, *stop, 1),
            [Some(start), Some(stop), Some(step)] => (*start, *stop, *step),
            _ => return unbounded(),
        };
        if step == 0 {
            return Some(format!("`{name}` with step 0 never ends"));
        }
        let count = (stop - start) / step;
        return (count > MAX_GENERATED).then(unbounded).flatten();
    }
    let ok = size_args.iter().all(|&i| match values.get(i) {
        Some(Some(n)) => *n <= MAX_GENERATED,
        Some(None) => false,
        None => true, // not given: the function's default
    });
    if ok { None } else { unbounded() }
}

/// 1-based line of the first line that is not blank or a `--` comment: where the statement starts.
fn statement_line(sql: &str) -> u64 {
    sql.lines().position(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--")).map_or(1, |i| i as u64 + 1)
}

/// The line a parser error names, else (errors at the end of input) the last non-blank line.
fn line_of_parser_error(message: &str, sql: &str) -> u64 {
    let last = sql.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).last().map_or(1, |(i, _)| i as u64 + 1);
    message
        .split("Line: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(last)
}

struct Checker<'a> {
    path: &'a Path,
    sql: &'a str,
    tables: &'a [&'a str],
    ctes: HashSet<String>,
    error: Option<Error>,
}

impl Checker<'_> {
    /// The span's line, or (for nodes the parser gives no span) the first line holding `needle`.
    fn line(&self, span_line: u64, needle: &str) -> u64 {
        if span_line > 0 {
            return span_line;
        }
        self.sql
            .lines()
            .position(|l| !l.trim_start().starts_with("--") && l.contains(needle))
            .map_or_else(|| statement_line(self.sql), |i| i as u64 + 1)
    }

    fn refuse(&mut self, line: u64, reason: String) -> ControlFlow<()> {
        self.error = Some(Error::rule(self.path, line, reason));
        ControlFlow::Break(())
    }
}

impl Visitor for Checker<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with
            && with.recursive
        {
            let line = self.line(with.with_token.0.span.start.line, "RECURSIVE");
            return self.refuse(
                line,
                "WITH RECURSIVE is not allowed in a rule: its iterations have no bound; use a stateful rule \
                 kind (threshold, sequence) for patterns over time"
                    .into(),
            );
        }
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        if let SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) = query.body.as_ref() {
            return self
                .refuse(query.span().start.line, "rules are read-only: no INSERT, UPDATE, DELETE or MERGE".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let needle = match factor {
            TableFactor::Table { name, .. } => name.to_string(),
            _ => "(".to_string(),
        };
        let line = self.line(factor.span().start.line, &needle);
        match factor {
            TableFactor::Table { args: Some(_), name, .. } => {
                self.refuse(line, format!("table function `{name}` is not allowed in a rule; query the `events` table"))
            }
            TableFactor::TableFunction { .. } | TableFactor::Function { .. } | TableFactor::JsonTable { .. } => {
                self.refuse(line, "table functions are not allowed in a rule; query the `events` table".into())
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let name = relation.to_string();
        let bare = name.trim_matches('"').to_lowercase();
        if self.tables.contains(&bare.as_str()) || self.ctes.contains(&bare) {
            return ControlFlow::Continue(());
        }
        let line = self.line(relation.span().start.line, &name);
        let hint =
            if name.contains('/') || name.contains('.') { " (rules cannot read files or other catalogs)" } else { "" };
        self.refuse(line, format!("unknown table `{name}`{hint}; a rule may query only: {}", self.tables.join(", ")))
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr {
            let name = function.name.to_string().to_lowercase();
            let name = name.rsplit('.').next().unwrap_or(&name).to_string();
            if FILE_FUNCTIONS.contains(&name.as_str()) || name.starts_with("read_") {
                let line = self.line(expr.span().start.line, &function.name.to_string());
                return self.refuse(line, format!("function `{name}` reads files and is not allowed in a rule"));
            }
            let args: Vec<Option<&Expr>> = match &function.args {
                FunctionArguments::List(list) => list
                    .args
                    .iter()
                    .map(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                        FunctionArg::Named { arg: FunctionArgExpr::Expr(e), .. } => Some(e),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(reason) = oversized_call(&name, &args) {
                let line = self.line(expr.span().start.line, &function.name.to_string());
                return self.refuse(line, reason);
            }
        }
        ControlFlow::Continue(())
    }
}

/// Checks that `sql` (a whole rule file) is one read-only query over `tables`.
pub fn check_read_only(path: &Path, sql: &str, tables: &[&str]) -> Result<()> {
    let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {}).map_err(|e| {
        let message = e.to_string();
        Error::rule(path, line_of_parser_error(&message, sql), format!("SQL does not parse: {message}"))
    })?;
    let mut statements = statements.into_iter();
    let (Some(statement), None) = (statements.next(), statements.next()) else {
        return Err(Error::rule(path, 1, "a rule holds exactly one SELECT query (found none or several statements)"));
    };
    let query = match statement {
        DfStatement::Statement(boxed) => match *boxed {
            Statement::Query(query) => query,
            other => {
                let line = statement_line(sql);
                let kind = other.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ");
                return Err(Error::rule(
                    path,
                    line,
                    format!("rules are read-only queries; `{kind} ...` is not allowed"),
                ));
            }
        },
        DfStatement::CopyTo(_) => {
            return Err(Error::rule(path, statement_line(sql), "rules are read-only queries; COPY is not allowed"));
        }
        DfStatement::CreateExternalTable(_) => {
            return Err(Error::rule(
                path,
                statement_line(sql),
                "rules are read-only queries; CREATE EXTERNAL TABLE is not allowed",
            ));
        }
        DfStatement::Explain(_) => {
            return Err(Error::rule(path, statement_line(sql), "rules are queries; EXPLAIN is not allowed"));
        }
        _ => {
            return Err(Error::rule(path, statement_line(sql), "rules are read-only queries; only SELECT is allowed"));
        }
    };
    let mut checker = Checker { path, sql, tables, ctes: HashSet::new(), error: None };
    let _ = query.visit(&mut checker);
    match checker.error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str) -> std::result::Result<(), String> {
        check_read_only(Path::new("r.sql"), sql, &["events"]).map_err(|e| e.to_string())
    }

    #[test]
    fn plain_queries_pass() {
        check("-- id: x\nSELECT time, event_id FROM events WHERE outcome = 'failure'").unwrap();
        check("WITH f AS (SELECT * FROM events) SELECT time, event_id FROM f JOIN events USING (event_id)").unwrap();
        check("SELECT max(time) AS time, array_agg(event_id) AS event_ids FROM events GROUP BY src_ip HAVING count(*) > 3").unwrap();
        check("SELECT time, event_id, lpad(actor_user, 20), range(1, 100) FROM events").unwrap();
        check("SELECT time, event_id FROM events WHERE http_status IN (SELECT unnest(range(400, 500)))").unwrap();
    }

    #[test]
    fn writes_and_file_access_are_refused_with_line() {
        let cases = [
            ("-- h\nDROP TABLE events", "r.sql:2: rules are read-only"),
            ("-- h\n-- h2\nCOPY (SELECT 1) TO '/tmp/x.csv'", "r.sql:3: rules are read-only queries; COPY"),
            ("SELECT 1;\nSELECT 2", "exactly one"),
            ("INSERT INTO events SELECT * FROM events", "read-only"),
            ("SET datafusion.execution.batch_size = 1", "read-only"),
            ("EXPLAIN ANALYZE SELECT * FROM events", "not allowed"),
            ("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'", "CREATE EXTERNAL TABLE"),
            ("SELECT * FROM\n read_parquet('/etc/x.parquet')", "r.sql:2: table function"),
            ("SELECT * FROM '/etc/passwd'", "unknown table"),
            ("SELECT * FROM other", "unknown table `other`"),
            ("SELECT *\nFROM events WHERE x IN (SELECT * FROM generate_series(1, 3))", "r.sql:2: table function"),
            ("SELECT read_text('/etc/passwd') FROM events", "reads files"),
            ("SELEC * FROM events", "does not parse"),
            ("\n\nSELECT * FROM events WHERE (", "r.sql:3"),
            (
                "-- h\nWITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
                "r.sql:2: WITH RECURSIVE",
            ),
            ("SELECT unnest(range(1, 3000000000)) FROM events", "`range` must be given integer literals"),
            (
                "SELECT time, event_id FROM events WHERE\n 3 IN (SELECT unnest(generate_series(1, length(raw))))",
                "r.sql:2: `generate_series`",
            ),
            ("SELECT range(1, 10, 0) FROM events", "step 0"),
            ("SELECT repeat(actor_user, 100000000) FROM events", "`repeat`"),
            ("SELECT lpad(actor_user, length(raw) * 1000) FROM events", "`lpad`"),
        ];
        for (sql, expected) in cases {
            let err = check(sql).expect_err(sql);
            assert!(err.contains(expected), "`{sql}`: `{err}` should contain `{expected}`");
        }
    }
}

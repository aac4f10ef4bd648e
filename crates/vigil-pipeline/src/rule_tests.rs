//! Rule tests as data: events in, expected alerts out, one `.test` file per rule beside the pack
//! (`pipelines/rules/<pack>/tests/<rule id>.test`), run by `cargo test` and `vigil rules test`.
//!
//! ```text
//! # Comments start with '#'.
//! rule aws_console_login_without_mfa
//!
//! case a console login without MFA fires
//! input cloudtrail
//! {"eventTime":"2024-08-02T08:53:24Z","eventName":"ConsoleLogin", ...}
//! {"eventTime":"2024-08-02T08:54:00Z","eventName":"ConsoleLogin", ...}
//! expect
//! records 1: {"actor_user":"arn:aws:iam::1:user/bob","src_ip":"1.2.3.4"}
//! ----
//! ```
//!
//! A case's input is one record per line in the named format, or `input FORMAT file:PATH` (a file of
//! one record per line, relative to the `.test` file); `input linux_auth year=2017` fixes the year of
//! syslog times (otherwise it follows the clock). Each expected alert is `records N[,M...]:`, the
//! input lines of the events behind it, then the other columns the rule returns as a JSON object; no
//! lines between `expect` and `----` means the rule must stay silent. Alerts are compared as a sorted
//! list. With `update`, failing cases get their `expect` block rewritten from the actual alerts (like
//! DataFusion's `--complete`): review the diff before committing it. Each case runs on a fresh engine and
//! ends its input, so a stateful rule's case holds everything its window, sequence or silence needs, in
//! the order the records arrive.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use vigil_normalize::{Format, FormatOptions, RawRecords, normalize_records};
use vigil_rules::{RuleEngine, RulePack, load_rules};

use crate::{Error, Result};

/// One case of a `.test` file and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The `.test` file.
    pub file: PathBuf,
    /// The rule id.
    pub rule: String,
    /// The case title.
    pub case: String,
    /// Line of the `case` header.
    pub line: usize,
    /// Expected alert lines.
    pub expected: Vec<String>,
    /// Actual alert lines.
    pub actual: Vec<String>,
    /// Records that could not be normalized (a broken test input), as `N: reason`.
    pub dead_letters: Vec<String>,
}

impl CaseResult {
    /// Whether the actual alerts are the expected ones and every input record normalized.
    pub fn passed(&self) -> bool {
        self.expected == self.actual && self.dead_letters.is_empty()
    }
}

struct Case {
    title: String,
    line: usize,
    format: String,
    year: Option<i32>,
    records: Vec<String>,
    expected: Vec<String>,
    expect_range: (usize, usize),
}

fn parse_error(path: &Path, line: usize, reason: &str) -> Error {
    Error::Config { origin: format!("{}:{line}", path.display()), reason: reason.to_string() }
}

fn parse(path: &Path, text: &str) -> Result<(String, Vec<Case>)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut rule = None;
    let mut cases = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        if let Some(id) = line.strip_prefix("rule ") {
            rule = Some(id.trim().to_string());
            i += 1;
            continue;
        }
        let Some(title) = line.strip_prefix("case ") else {
            return Err(parse_error(path, i + 1, "expected `rule ID`, `case TITLE`, a comment or a blank line"));
        };
        let case_line = i + 1;
        i += 1;
        let input = lines
            .get(i)
            .and_then(|l| l.strip_prefix("input "))
            .ok_or_else(|| parse_error(path, i + 1, "expected `input FORMAT` after `case`"))?;
        let (spec, file) = match input.trim().split_once(" file:") {
            Some((f, p)) => (f.trim(), Some(p.trim().to_string())),
            None => (input.trim(), None),
        };
        // `input linux_auth year=2017`: the year of syslog times, so expectations do not move with the clock.
        let mut words = spec.split_whitespace();
        let format = words.next().unwrap_or_default().to_string();
        let mut year = None;
        for word in words {
            match word.strip_prefix("year=").map(str::parse::<i32>) {
                Some(Ok(y)) => year = Some(y),
                _ => {
                    return Err(parse_error(
                        path,
                        i + 1,
                        &format!("`{word}` is not an input option (known: year=YYYY)"),
                    ));
                }
            }
        }
        i += 1;
        let mut records = Vec::new();
        while i < lines.len() && lines[i] != "expect" {
            if !lines[i].trim().is_empty() {
                records.push(lines[i].to_string());
            }
            i += 1;
        }
        if i == lines.len() {
            return Err(parse_error(path, case_line, "case has no `expect` line"));
        }
        if let Some(file) = file {
            let at = path.parent().unwrap_or(Path::new(".")).join(&file);
            let text = std::fs::read_to_string(&at)
                .map_err(|e| parse_error(path, case_line, &format!("cannot read {}: {e}", at.display())))?;
            records.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
        }
        let expect_start = i + 1;
        i += 1;
        let mut expected = Vec::new();
        while i < lines.len() && lines[i] != "----" {
            if !lines[i].trim().is_empty() {
                expected.push(lines[i].trim().to_string());
            }
            i += 1;
        }
        if i == lines.len() {
            return Err(parse_error(path, case_line, "case has no closing `----` line"));
        }
        expected.sort();
        cases.push(Case {
            year,
            title: title.trim().to_string(),
            line: case_line,
            format,
            records,
            expected,
            expect_range: (expect_start, i),
        });
        i += 1;
    }
    let rule = rule.ok_or_else(|| parse_error(path, 1, "no `rule ID` line"))?;
    Ok((rule, cases))
}

/// `.test` files of a rule directory (`DIR/tests/*.test`), sorted.
pub fn test_files(rule_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(rule_dir.join("tests"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "test"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn offsets_by_event_id(batches: &[RecordBatch]) -> HashMap<String, i64> {
    let mut map = HashMap::new();
    for batch in batches {
        let ids = batch.column_by_name(vigil_schema::EVENT_ID).map(|c| c.as_string::<i32>());
        let offsets = batch.column_by_name(vigil_schema::INGEST_OFFSET).map(|c| c.as_primitive::<Int64Type>());
        if let (Some(ids), Some(offsets)) = (ids, offsets) {
            for row in 0..batch.num_rows() {
                map.insert(ids.value(row).to_string(), offsets.value(row));
            }
        }
    }
    map
}

/// Runs every case of one `.test` file against the rule it names, found in `pack`.
pub async fn run_test_file(path: &Path, pack: &RulePack, update: bool) -> Result<Vec<CaseResult>> {
    let text = std::fs::read_to_string(path).map_err(|e| parse_error(path, 1, &format!("cannot read: {e}")))?;
    let (rule_id, cases) = parse(path, &text)?;
    let rule = pack
        .rules
        .iter()
        .find(|r| r.id == rule_id)
        .cloned()
        .ok_or_else(|| parse_error(path, 1, &format!("no rule `{rule_id}` in the rule directories")))?;
    let single = RulePack::new(vec![rule]).map_err(Error::Rules)?;
    let mut results = Vec::new();
    for case in &cases {
        // A fresh engine per case: a stateful rule's windows and keys never carry over between cases.
        let mut engine = RuleEngine::new(&single, 1).await.map_err(Error::Rules)?;
        let format: Format = case
            .format
            .parse()
            .map_err(|e: vigil_normalize::Error| parse_error(path, case.line + 1, &e.to_string()))?;
        let normalizer = format
            .build(&FormatOptions { year: case.year, ..FormatOptions::default() })
            .map_err(|e| parse_error(path, case.line + 1, &e.to_string()))?;
        let mut records = RawRecords::default();
        for (n, record) in case.records.iter().enumerate() {
            records.push(n as i64 + 1, record.as_bytes());
        }
        let normalized = normalize_records(normalizer.as_ref(), records, "rule-test", 0, 0, 1024);
        let offsets = offsets_by_event_id(&normalized.batches);
        let mut state = engine.new_state();
        let mut alerts = engine.evaluate(&mut state, &normalized.batches).await?;
        alerts.extend(engine.finish(&mut state)); // the case's input is the whole input
        if let Some(failure) = engine.quarantined().into_iter().next() {
            // In a run the rule would be quarantined; in its own test that is the test's failure.
            return Err(parse_error(
                path,
                case.line + 1,
                &format!("rule `{}` failed: {}", failure.rule_id, failure.reason),
            ));
        }
        let mut actual: Vec<String> = alerts
            .iter()
            .map(|a| {
                let mut lines: Vec<i64> = a.event_ids.iter().filter_map(|id| offsets.get(id).copied()).collect();
                lines.sort_unstable();
                let lines: Vec<String> = lines.iter().map(i64::to_string).collect();
                format!("records {}: {}", lines.join(","), serde_json::Value::Object(a.fields.clone()))
            })
            .collect();
        actual.sort();
        results.push(CaseResult {
            file: path.to_path_buf(),
            rule: rule_id.clone(),
            case: case.title.clone(),
            line: case.line,
            expected: case.expected.clone(),
            actual,
            dead_letters: normalized.dead_letters.iter().map(|d| format!("{}: {}", d.offset, d.reason)).collect(),
        });
    }
    if update && results.iter().any(|r| r.expected != r.actual) {
        let lines: Vec<&str> = text.lines().collect();
        let mut out = String::new();
        let mut at = 0;
        for (case, result) in cases.iter().zip(&results) {
            let (start, end) = case.expect_range;
            for line in &lines[at..start] {
                let _ = writeln!(out, "{line}");
            }
            for line in &result.actual {
                let _ = writeln!(out, "{line}");
            }
            at = end;
        }
        for line in &lines[at..] {
            let _ = writeln!(out, "{line}");
        }
        std::fs::write(path, out).map_err(|e| parse_error(path, 1, &format!("cannot update: {e}")))?;
        for result in &mut results {
            result.expected = result.actual.clone();
        }
    }
    Ok(results)
}

/// Runs the tests of every rule directory; also reports rules that have no test file.
pub async fn run_rule_tests(dirs: &[PathBuf], update: bool) -> Result<TestReport> {
    let pack = load_rules(dirs).map_err(Error::Rules)?;
    let mut report = TestReport::default();
    for dir in dirs {
        for file in test_files(dir) {
            report.cases.extend(run_test_file(&file, &pack, update).await?);
        }
    }
    report.untested =
        pack.rules.iter().filter(|r| !report.cases.iter().any(|c| c.rule == r.id)).map(|r| r.id.clone()).collect();
    Ok(report)
}

/// Outcome of a rule test run.
#[derive(Debug, Clone, Default)]
pub struct TestReport {
    /// Every case.
    pub cases: Vec<CaseResult>,
    /// Rules without any test case.
    pub untested: Vec<String>,
}

impl TestReport {
    /// Whether every case passed and every rule has a test.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(CaseResult::passed) && self.untested.is_empty()
    }
}

impl std::fmt::Display for TestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for case in &self.cases {
            let status = if case.passed() { "ok  " } else { "FAIL" };
            writeln!(f, "{status} {} :: {} ({}:{})", case.rule, case.case, case.file.display(), case.line)?;
            if !case.passed() {
                for d in &case.dead_letters {
                    writeln!(f, "       input record {d}")?;
                }
                for e in case.expected.iter().filter(|e| !case.actual.contains(e)) {
                    writeln!(f, "       missing: {e}")?;
                }
                for a in case.actual.iter().filter(|a| !case.expected.contains(a)) {
                    writeln!(f, "       extra:   {a}")?;
                }
            }
        }
        for rule in &self.untested {
            writeln!(f, "FAIL {rule} :: has no test case (add tests/{rule}.test)")?;
        }
        let passed = self.cases.iter().filter(|c| c.passed()).count();
        write!(f, "{} passed, {} failed", passed, self.cases.len() - passed + self.untested.len())
    }
}

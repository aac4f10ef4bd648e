//! Rule files: a `-- key: value` header, then one read-only SQL query over `events`.
//!
//! ```sql
//! -- id: aws_console_login_without_mfa
//! -- title: Console login without MFA
//! -- severity: medium
//! -- criteria: CC6.1, CC6.6
//! -- tags: aws, authentication
//! -- description: An IAM user signed in to the console without a second factor.
//! -- remediation: Require MFA for console users (IAM policy condition aws:MultiFactorAuthPresent).
//! SELECT time, event_id, actor_user, src_ip FROM events
//! WHERE source = 'aws.cloudtrail' AND activity = 'ConsoleLogin' AND mfa = false
//! ```
//!
//! The header is SQL comments, so the file stays valid SQL for any tool. Required keys: `id`, `title`,
//! `severity` (`info`, `low`, `medium`, `high`, `critical`) and `criteria` (SOC 2 Trust Services Criteria
//! such as `CC6.1`, `A1.2`, `C1.1`, `PI1.3`, `P4.2`). Optional: `tags`, `description`, `remediation`,
//! `kind` (`stateless`, the default). A repeated `description` or `remediation` line continues the text.
//!
//! The query must return `time` and either `event_id` (one alert per row) or `event_ids`
//! (`array_agg(event_id)`: one alert per group); every other column goes into the alert's `fields`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// How serious an alert of the rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The name as written in rule headers and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// What the engine must keep between batches for a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Evaluated over each micro-batch alone.
    Stateless,
    /// `threshold` events (or distinct values of `distinct`) per key within `window`.
    Threshold,
    /// The `steps` in order per key within `window`.
    Sequence,
    /// The first event of each key (a key tuple never seen before, within `ttl`).
    FirstSeen,
    /// No event of a key for `window`.
    Silence,
    /// A stateless rule with `suppress` (and `group_by`): one alert per group within the suppression
    /// window, carrying the count, first and last time and the event ids (see [`crate::stateful`]).
    Group,
    /// A Sigma correlation (`event_count`, `value_count`, `temporal`, `temporal_ordered`): every window
    /// `[t - window, t]` ending at a matching event's time `t` whose measure meets the `condition` alerts
    /// (see [`crate::correlation`]).
    Correlation,
}

impl RuleKind {
    /// The name as written in rule headers.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Stateless => "stateless",
            RuleKind::Threshold => "threshold",
            RuleKind::Sequence => "sequence",
            RuleKind::FirstSeen => "first_seen",
            RuleKind::Silence => "silence",
            RuleKind::Group => "group",
            RuleKind::Correlation => "correlation",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "stateless" => RuleKind::Stateless,
            "threshold" => RuleKind::Threshold,
            "sequence" => RuleKind::Sequence,
            "first_seen" => RuleKind::FirstSeen,
            "silence" => RuleKind::Silence,
            "correlation" => RuleKind::Correlation,
            _ => return None,
        })
    }
}

/// What a stateful rule's header declares (see [`crate::stateful`] for how the engine uses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatefulSpec {
    /// Columns of the query's result that form the key (state is kept per key).
    pub key: Vec<String>,
    /// Window length in microseconds (threshold, sequence, silence).
    pub window_us: i64,
    /// Allowed lateness in microseconds: events up to this much older than the newest event seen still
    /// count in their window; older ones are late (archived, counted, reported, not evaluated).
    pub lateness_us: i64,
    /// Threshold: alert at this many events (or distinct values) in a window.
    pub threshold: u64,
    /// Threshold: count distinct values of this column instead of events.
    pub distinct: Option<String>,
    /// Threshold: `windowing: tumbling` counts in fixed windows aligned to the Unix epoch (`[k*window,
    /// (k+1)*window)`, one alert per key and window at most, like SQL `GROUP BY date_bin(...)
    /// HAVING count(*) >= threshold`) instead of the default sliding window.
    pub tumbling: bool,
    /// Sequence: the values of the `step` column, in the order they must happen.
    pub steps: Vec<String>,
    /// Sequence: how many signals each step needs (`failed*5` in the header: 5), one per step.
    pub repeats: Vec<u32>,
    /// First seen: a key not seen for this long (event time) is forgotten.
    pub ttl_us: i64,
    /// First seen, threshold, sequence, silence: at most this many keys are held; beyond it the least
    /// recently seen keys are forgotten (counted as evictions).
    pub max_keys: usize,
    /// First seen: the first `baseline` of event time only learns keys, without alerting.
    pub baseline_us: i64,
    /// Correlation: what is measured over each window and the condition it must meet.
    pub correlation: Option<CorrelationSpec>,
    /// Correlation with `suppress`: after a group's window alerts, its windows ending within this long
    /// do not alert (the next alert counts them).
    pub suppress_us: Option<i64>,
}

/// What a correlation rule measures over each window (`-- correlation:`), and the condition the measure
/// must meet (`-- condition:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationSpec {
    /// The measure.
    pub measure: Measure,
    /// The comparison.
    pub op: CompareOp,
    /// The number compared with.
    pub count: i64,
}

/// What a correlation counts in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Events (distinct event ids).
    EventCount,
    /// Distinct values of the `distinct` column (nulls not counted, compared ASCII case-insensitively).
    ValueCount,
    /// Distinct `step` values (the referenced rules that matched).
    Temporal,
    /// Distinct steps, which must also have happened in the order `steps` lists them.
    TemporalOrdered,
}

impl Measure {
    /// The name as written in headers (Sigma's correlation type).
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::EventCount => "event_count",
            Measure::ValueCount => "value_count",
            Measure::Temporal => "temporal",
            Measure::TemporalOrdered => "temporal_ordered",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "event_count" => Measure::EventCount,
            "value_count" => Measure::ValueCount,
            "temporal" => Measure::Temporal,
            "temporal_ordered" => Measure::TemporalOrdered,
            _ => return None,
        })
    }
}

/// A comparison of a correlation's condition, named as Sigma names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `lt`: less than.
    Lt,
    /// `lte`: at most.
    Lte,
    /// `gt`: more than.
    Gt,
    /// `gte`: at least.
    Gte,
    /// `eq`: exactly.
    Eq,
    /// `neq`: anything but.
    Neq,
}

impl CompareOp {
    /// The name as written in headers and in Sigma.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Lt => "lt",
            CompareOp::Lte => "lte",
            CompareOp::Gt => "gt",
            CompareOp::Gte => "gte",
            CompareOp::Eq => "eq",
            CompareOp::Neq => "neq",
        }
    }

    /// Parses a Sigma condition operator name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lt" => CompareOp::Lt,
            "lte" => CompareOp::Lte,
            "gt" => CompareOp::Gt,
            "gte" => CompareOp::Gte,
            "eq" => CompareOp::Eq,
            "neq" => CompareOp::Neq,
            _ => return None,
        })
    }

    /// Whether `value` meets `op count`.
    pub fn holds(self, value: i64, count: i64) -> bool {
        match self {
            CompareOp::Lt => value < count,
            CompareOp::Lte => value <= count,
            CompareOp::Gt => value > count,
            CompareOp::Gte => value >= count,
            CompareOp::Eq => value == count,
            CompareOp::Neq => value != count,
        }
    }
}

/// Default allowed lateness: 5 minutes.
pub const DEFAULT_LATENESS_US: i64 = 5 * 60 * 1_000_000;
/// Default first-seen TTL: 90 days.
pub const DEFAULT_TTL_US: i64 = 90 * 86_400 * 1_000_000;
/// Default key limit per rule.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Parses a duration such as `90s`, `10m`, `1h`, `7d` into microseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let unit_us: i64 = match unit.trim() {
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" | "min" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return None,
    };
    n.checked_mul(unit_us)
}

/// One loaded rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id (`[a-z0-9_.-]+`).
    pub id: String,
    /// One-line title.
    pub title: String,
    /// Severity of its alerts.
    pub severity: Severity,
    /// SOC 2 Trust Services Criteria it serves.
    pub criteria: Vec<String>,
    /// Free tags.
    pub tags: Vec<String>,
    /// What the rule detects and why it matters.
    pub description: String,
    /// What to do about an alert.
    pub remediation: String,
    /// Stateless or stateful.
    pub kind: RuleKind,
    /// The header of a stateful rule; `None` for stateless ones.
    pub stateful: Option<StatefulSpec>,
    /// The whole file text (header included: comments are SQL).
    pub sql: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Hex SHA-256 of the file text: which version of the rule raised an alert.
    pub hash: String,
    /// 1-based line where the query starts.
    pub query_line: u64,
    /// The rule it was converted from (a Sigma rule), carried into its alerts.
    pub source_rule: Option<crate::sigma::SourceRule>,
}

const KNOWN_KEYS: [&str; 22] = [
    "id",
    "title",
    "severity",
    "criteria",
    "tags",
    "description",
    "remediation",
    "kind",
    "key",
    "window",
    "lateness",
    "threshold",
    "distinct",
    "windowing",
    "steps",
    "ttl",
    "max_keys",
    "baseline",
    "group_by",
    "suppress",
    "correlation",
    "condition",
];

/// Header keys that only stateful kinds take.
const STATEFUL_KEYS: [&str; 12] = [
    "key",
    "window",
    "lateness",
    "threshold",
    "distinct",
    "windowing",
    "steps",
    "ttl",
    "max_keys",
    "baseline",
    "correlation",
    "condition",
];

/// Whether `c` is a SOC 2 Trust Services Criterion reference such as `CC6.1` or `A1.2`.
pub fn is_criterion(c: &str) -> bool {
    let prefix_len = c.bytes().take_while(u8::is_ascii_uppercase).count();
    let (prefix, rest) = c.split_at(prefix_len);
    matches!(prefix, "CC" | "A" | "C" | "PI" | "P")
        && !rest.is_empty()
        && rest.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && rest.split('.').count() <= 2
}

fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Parses a rule file's header and keeps its query text; SQL validation is [`crate::validate`]'s job.
pub fn parse_rule(path: &Path, text: &str) -> Result<Rule> {
    let mut fields: Vec<(&str, String, u64)> = Vec::new();
    let mut query_line = 0u64;
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let Some(comment) = trimmed.strip_prefix("--") else {
            query_line = n;
            break;
        };
        let comment = comment.trim();
        let Some((key, value)) = comment.split_once(':') else {
            continue;
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            continue; // free comment
        }
        let Some(&known) = KNOWN_KEYS.iter().find(|k| **k == key) else {
            return Err(Error::rule(
                path,
                n,
                format!("unknown header key `{key}`; known keys: {}", KNOWN_KEYS.join(", ")),
            ));
        };
        let value = value.trim().to_string();
        match fields.iter_mut().find(|(k, _, _)| *k == known) {
            Some((_, existing, _)) if matches!(known, "description" | "remediation") => {
                existing.push(' ');
                existing.push_str(&value);
            }
            Some((_, _, first)) => {
                return Err(Error::rule(path, n, format!("header key `{known}` repeats (first on line {first})")));
            }
            None => fields.push((known, value, n)),
        }
    }
    if query_line == 0 {
        return Err(Error::rule(path, text.lines().count() as u64, "no SQL query after the header"));
    }
    let get = |key: &str| fields.iter().find(|(k, _, _)| *k == key).map(|(_, v, line)| (v.as_str(), *line));
    let required = |key: &str, hint: &str| {
        get(key)
            .filter(|(v, _)| !v.is_empty())
            .ok_or_else(|| Error::rule(path, 1, format!("header has no `-- {key}: ...` line ({hint})")))
    };
    let (id, id_line) = required("id", "a unique id such as aws_root_account_used")?;
    if !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')) {
        return Err(Error::rule(path, id_line, format!("id `{id}` may hold only a-z, 0-9, `_`, `-` and `.`")));
    }
    let (title, _) = required("title", "one line saying what the rule finds")?;
    let (severity_text, severity_line) = required("severity", "info, low, medium, high or critical")?;
    let severity = Severity::parse(severity_text).ok_or_else(|| {
        Error::rule(
            path,
            severity_line,
            format!("severity `{severity_text}` is not one of info, low, medium, high, critical"),
        )
    })?;
    let (criteria_text, criteria_line) = required("criteria", "SOC 2 criteria such as CC6.1, CC7.2")?;
    let criteria = list(criteria_text);
    if let Some(bad) = criteria.iter().find(|c| !is_criterion(c)) {
        return Err(Error::rule(
            path,
            criteria_line,
            format!("`{bad}` is not a SOC 2 Trust Services Criterion (write it like CC6.1, A1.2, C1.1, PI1.3, P4.2)"),
        ));
    }
    let mut kind = match get("kind") {
        None => RuleKind::Stateless,
        Some((text, line)) => RuleKind::parse(text).ok_or_else(|| {
            Error::rule(
                path,
                line,
                format!("kind `{text}` is not one of stateless, threshold, sequence, first_seen, silence, correlation"),
            )
        })?,
    };
    // `suppress` makes a stateless rule a grouped one: one alert per group and suppression window.
    match (get("suppress"), get("group_by")) {
        (Some(_), _) if kind == RuleKind::Stateless => kind = RuleKind::Group,
        // a correlation alerts on every window: `suppress` thins that out per group (its `key`)
        (Some(_), None) if kind == RuleKind::Correlation => {}
        (_, Some((_, line))) if kind == RuleKind::Correlation => {
            return Err(Error::rule(path, line, "a correlation groups by its `key`; `group_by` does not apply"));
        }
        (Some((_, line)), _) => {
            return Err(Error::rule(
                path,
                line,
                format!(
                    "`suppress` applies to stateless rules; a {} rule already alerts once per key and window",
                    kind.as_str()
                ),
            ));
        }
        (None, Some((_, line))) => {
            return Err(Error::rule(
                path,
                line,
                "`group_by` needs `suppress: DURATION` (one alert per group within that long, such as 1h)",
            ));
        }
        (None, None) => {}
    }
    let stateful = stateful_spec(path, kind, &get)?;
    Ok(Rule {
        id: id.to_string(),
        title: title.to_string(),
        severity,
        criteria,
        tags: get("tags").map(|(v, _)| list(v)).unwrap_or_default(),
        description: get("description").map(|(v, _)| v.to_string()).unwrap_or_default(),
        remediation: get("remediation").map(|(v, _)| v.to_string()).unwrap_or_default(),
        kind,
        stateful,
        sql: text.to_string(),
        path: path.to_path_buf(),
        hash: hex::encode(Sha256::digest(text.as_bytes())),
        query_line,
        source_rule: None,
    })
}

/// Reads the stateful keys of a header for `kind`; refuses keys the kind does not take and missing ones.
fn stateful_spec<'a>(
    path: &Path,
    kind: RuleKind,
    get: &dyn Fn(&str) -> Option<(&'a str, u64)>,
) -> Result<Option<StatefulSpec>> {
    let takes: &[&str] = match kind {
        RuleKind::Stateless => &[],
        RuleKind::Threshold => &["key", "window", "lateness", "threshold", "distinct", "windowing", "max_keys"],
        RuleKind::Sequence => &["key", "window", "lateness", "steps", "max_keys"],
        RuleKind::FirstSeen => &["key", "lateness", "ttl", "max_keys", "baseline"],
        RuleKind::Silence => &["key", "window", "lateness", "max_keys"],
        RuleKind::Group => &["lateness", "max_keys"],
        RuleKind::Correlation => {
            &["key", "window", "lateness", "distinct", "steps", "max_keys", "correlation", "condition"]
        }
    };
    for key in STATEFUL_KEYS {
        if let Some((_, line)) = get(key).filter(|_| !takes.contains(&key)) {
            let takes = if takes.is_empty() { "none".to_string() } else { takes.join(", ") };
            return Err(Error::rule(
                path,
                line,
                format!("`{key}` does not apply to kind {} (it takes: {takes})", kind.as_str()),
            ));
        }
    }
    if kind == RuleKind::Stateless {
        return Ok(None);
    }
    let need = |key: &str, hint: &str| {
        get(key)
            .filter(|(v, _)| !v.is_empty())
            .ok_or_else(|| Error::rule(path, 1, format!("a {} rule needs `-- {key}: ...` ({hint})", kind.as_str())))
    };
    let duration = |key: &str, (text, line): (&str, u64)| {
        parse_duration(text).filter(|d| *d >= 0).ok_or_else(|| {
            Error::rule(path, line, format!("{key} `{text}` is not a duration; write it like 90s, 10m, 1h or 7d"))
        })
    };
    let number = |key: &str, (text, line): (&str, u64)| {
        text.parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::rule(path, line, format!("{key} `{text}` is not a positive whole number")))
    };
    let key = match kind {
        // No group_by: one group per rule.
        // No group_by: one group per rule; a correlation without `key` likewise.
        RuleKind::Group => get("group_by").map(|(v, _)| list(v)).unwrap_or_default(),
        RuleKind::Correlation => get("key").map(|(v, _)| list(v)).unwrap_or_default(),
        _ => list(need("key", "the result columns state is kept per, such as src_ip or actor_user")?.0),
    };
    let window_us = match kind {
        RuleKind::FirstSeen => 0,
        RuleKind::Group => {
            let (text, line) = need("suppress", "such as 15m or 1h")?;
            let w = duration("suppress", (text, line))?;
            if w == 0 {
                return Err(Error::rule(path, line, "suppress must be longer than 0"));
            }
            w
        }
        _ => {
            let w = duration("window", need("window", "such as 10m or 1h")?)?;
            if w == 0 {
                return Err(Error::rule(path, 1, "window must be longer than 0"));
            }
            w
        }
    };
    let lateness_us = get("lateness").map(|v| duration("lateness", v)).transpose()?.unwrap_or(DEFAULT_LATENESS_US);
    let threshold = match kind {
        RuleKind::Threshold => number("threshold", need("threshold", "alert at this many events per window")?)?,
        _ => 0,
    };
    let tumbling = match get("windowing") {
        None | Some(("sliding", _)) => false,
        Some(("tumbling", _)) => true,
        Some((other, line)) => {
            return Err(Error::rule(path, line, format!("windowing `{other}` is not one of sliding, tumbling")));
        }
    };
    let correlation = match kind {
        RuleKind::Correlation => Some(correlation_spec(path, get)?),
        _ => None,
    };
    let (steps, repeats) = match kind {
        RuleKind::Correlation => {
            let (text, line) = need("steps", "the values of the query's `step` column: the rules correlated")?;
            let steps = list(text);
            if let Some(twice) = steps.iter().enumerate().find(|(i, s)| steps[..*i].contains(s)) {
                return Err(Error::rule(path, line, format!("step `{}` appears twice", twice.1)));
            }
            let ones = vec![1; steps.len()];
            (steps, ones)
        }
        RuleKind::Sequence => {
            let (text, line) = need("steps", "the values of the query's `step` column, in order")?;
            let mut steps = Vec::new();
            let mut repeats = Vec::new();
            for step in list(text) {
                let (name, times) = match step.split_once('*') {
                    Some((name, n)) => (name.trim().to_string(), number("a step's repeat count", (n.trim(), line))?),
                    None => (step, 1),
                };
                if steps.contains(&name) {
                    return Err(Error::rule(path, line, format!("step `{name}` appears twice; write `{name}*N`")));
                }
                steps.push(name);
                repeats.push(u32::try_from(times).unwrap_or(u32::MAX));
            }
            if repeats.iter().map(|r| u64::from(*r)).sum::<u64>() < 2 {
                return Err(Error::rule(path, line, "a sequence needs at least two steps"));
            }
            (steps, repeats)
        }
        _ => (Vec::new(), Vec::new()),
    };
    Ok(Some(StatefulSpec {
        key,
        window_us,
        lateness_us,
        threshold,
        distinct: get("distinct").map(|(v, _)| v.to_string()),
        tumbling,
        steps,
        repeats,
        ttl_us: get("ttl").map(|v| duration("ttl", v)).transpose()?.unwrap_or(DEFAULT_TTL_US),
        max_keys: get("max_keys").map(|v| number("max_keys", v)).transpose()?.map_or(DEFAULT_MAX_KEYS, |n| n as usize),
        baseline_us: get("baseline").map(|v| duration("baseline", v)).transpose()?.unwrap_or(0),
        correlation,
        suppress_us: match kind {
            RuleKind::Correlation => get("suppress").map(|v| duration("suppress", v)).transpose()?,
            _ => None,
        },
    }))
}

/// The `correlation` and `condition` keys of a correlation rule.
fn correlation_spec<'a>(path: &Path, get: &dyn Fn(&str) -> Option<(&'a str, u64)>) -> Result<CorrelationSpec> {
    let need = |key: &str, hint: &str| {
        get(key)
            .filter(|(v, _)| !v.is_empty())
            .ok_or_else(|| Error::rule(path, 1, format!("a correlation rule needs `-- {key}: ...` ({hint})")))
    };
    let (text, line) = need("correlation", "event_count, value_count, temporal or temporal_ordered")?;
    let measure = Measure::parse(text).ok_or_else(|| {
        Error::rule(
            path,
            line,
            format!("correlation `{text}` is not one of event_count, value_count, temporal, temporal_ordered"),
        )
    })?;
    let (text, line) = need("condition", "an operator and a number, such as `gte 10`")?;
    let bad = || {
        Error::rule(
            path,
            line,
            format!(
                "condition `{text}` is not an operator (lt, lte, gt, gte, eq, neq) and a whole number, such as `gte 10`"
            ),
        )
    };
    let (op, count) = text.split_once(' ').ok_or_else(bad)?;
    let op = CompareOp::parse(op.trim()).ok_or_else(bad)?;
    let count = count.trim().parse::<i64>().map_err(|_| bad())?;
    if measure == Measure::ValueCount && get("distinct").is_none() {
        return Err(Error::rule(
            path,
            line,
            "a value_count correlation needs `-- distinct: COLUMN` (the values counted)",
        ));
    }
    Ok(CorrelationSpec { measure, op, count })
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;

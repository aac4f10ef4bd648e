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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Evaluated over each micro-batch alone.
    Stateless,
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
    /// The whole file text (header included: comments are SQL).
    pub sql: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Hex SHA-256 of the file text: which version of the rule raised an alert.
    pub hash: String,
    /// 1-based line where the query starts.
    pub query_line: u64,
}

const KNOWN_KEYS: [&str; 8] = ["id", "title", "severity", "criteria", "tags", "description", "remediation", "kind"];

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
    let kind = match get("kind") {
        None | Some(("stateless", _)) => RuleKind::Stateless,
        Some((other, line)) => {
            return Err(Error::rule(path, line, format!("kind `{other}` is not supported; use `stateless`")));
        }
    };
    Ok(Rule {
        id: id.to_string(),
        title: title.to_string(),
        severity,
        criteria,
        tags: get("tags").map(|(v, _)| list(v)).unwrap_or_default(),
        description: get("description").map(|(v, _)| v.to_string()).unwrap_or_default(),
        remediation: get("remediation").map(|(v, _)| v.to_string()).unwrap_or_default(),
        kind,
        sql: text.to_string(),
        path: path.to_path_buf(),
        hash: hex::encode(Sha256::digest(text.as_bytes())),
        query_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "-- id: r1\n-- title: T\n-- severity: high\n-- criteria: CC6.1, A1.2\n-- tags: a, b\n-- description: one\n-- description: two\n-- Note: free comment\n\nSELECT time, event_id FROM events\n";

    #[test]
    fn header_parses() {
        let rule = parse_rule(Path::new("r1.sql"), GOOD).unwrap();
        assert_eq!(rule.id, "r1");
        assert_eq!(rule.severity, Severity::High);
        assert_eq!(rule.criteria, vec!["CC6.1", "A1.2"]);
        assert_eq!(rule.description, "one two");
        assert_eq!(rule.query_line, 10);
        assert_eq!(rule.hash.len(), 64);
    }

    #[test]
    fn header_errors_name_the_line() {
        let cases = [
            (GOOD.replace("-- severity: high", "-- severity: urgent"), "3: severity `urgent`"),
            (GOOD.replace("CC6.1, A1.2", "CC6.1, SOX404"), "4: `SOX404`"),
            (GOOD.replace("-- tags: a, b", "-- tag: a"), "5: unknown header key `tag`"),
            (GOOD.replace("-- id: r1\n", ""), "1: header has no `-- id"),
            (GOOD.replace("-- id: r1", "-- id: R 1"), "1: id `R 1`"),
        ];
        for (text, expected) in cases {
            let err = parse_rule(Path::new("x.sql"), &text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn criteria_forms() {
        for ok in ["CC6.1", "CC7", "A1.2", "C1.1", "PI1.3", "P4.2"] {
            assert!(is_criterion(ok), "{ok}");
        }
        for bad in ["cc6.1", "CC", "CC6.", "X1.1", "CC6.1.2.3", ""] {
            assert!(!is_criterion(bad), "{bad}");
        }
    }
}

//! Alerts as OCSF Detection Findings (class 2004, OCSF 1.5.0), the alert format `ocsf`
//! (`--alerts-format ocsf`, `[alerts] format = "ocsf"`): one JSON object per alert, for SIEMs and
//! security data lakes that read OCSF.
//!
//! | OCSF attribute | from the alert |
//! | --- | --- |
//! | `class_uid` 2004, `category_uid` 2, `activity_id` 1 (Create), `type_uid` 200401 | fixed |
//! | `time` (ms since the epoch) | the alert time |
//! | `severity_id` / `severity` | info 1, low 2, medium 3, high 4, critical 5 |
//! | `status_id` 1 (New) | a finding is raised untriaged |
//! | `metadata` | `version` 1.5.0, `product` vigil and its version, `uid` = alert id |
//! | `finding_info.uid` | the alert id (deterministic: a replay gives the same finding) |
//! | `finding_info.title`, `desc` | the rule title; what matched |
//! | `finding_info.types` | the rule's SOC 2 criteria |
//! | `finding_info.analytic` | `uid` rule id, `name` rule title, `type_id` 1 (Rule), `version` rule hash (12 hex) |
//! | `finding_info.related_events` | `uid` = event id, the first 100 (the total is `count`) |
//! | `start_time` / `end_time` | first and last time of a grouped alert, else the alert time |
//! | `count` | events behind the alert |
//! | `evidences[0].data` | the columns the rule selected |
//! | `observables` | `actor_user`, `target_user` (User Name), `src_ip` (IP Address), `target_resource` (Resource UID) |
//! | `finding_info.related_analytics` | a Sigma rule's `id`, `title`, author (`desc`), `category` sigma |
//! | `unmapped` | rule hash; `source_rule` (format, id, title, author, level, logsource) for a Sigma rule |
//!
//! Validated against the OCSF Detection Finding model of the `py-ocsf-models` package in the CLI tests
//! (`crates/vigil-cli/tests/alert_formats.rs`, with `deploy/local/ocsf.sh`).

use serde_json::{Map, Value, json};
use vigil_rules::Alert;

/// The OCSF version written in `metadata.version`.
pub const OCSF_VERSION: &str = "1.5.0";

/// Related events listed per finding (the rest are counted in `count`).
pub const MAX_RELATED_EVENTS: usize = 100;

/// OCSF `severity_id` and its caption for a vigil severity.
pub fn severity(severity: &str) -> (u8, &'static str) {
    match severity {
        "info" => (1, "Informational"),
        "low" => (2, "Low"),
        "medium" => (3, "Medium"),
        "high" => (4, "High"),
        "critical" => (5, "Critical"),
        _ => (0, "Unknown"),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The OCSF Detection Finding of `alert`.
pub fn detection_finding(alert: &Alert) -> Value {
    let time_ms = alert.time_us.div_euclid(1000);
    let (severity_id, severity_name) = severity(alert.severity);
    let fields = &alert.fields;
    // A grouped alert carries its window's first and last time (RFC 3339) and its full event count.
    let ms_of = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
    };
    let start = ms_of("first_time").unwrap_or(time_ms);
    let end = ms_of("last_time").unwrap_or(time_ms);
    let count = fields.get("event_count").and_then(Value::as_u64).unwrap_or(alert.event_ids.len() as u64);
    let related: Vec<Value> = alert.event_ids.iter().take(MAX_RELATED_EVENTS).map(|id| json!({ "uid": id })).collect();
    let mut observables = Vec::new();
    for (name, type_id, type_name) in [
        ("actor_user", 4, "User Name"),
        ("target_user", 4, "User Name"),
        ("src_ip", 2, "IP Address"),
        ("target_resource", 10, "Resource UID"),
    ] {
        if let Some(value) = fields.get(name).and_then(text) {
            observables.push(json!({ "name": name, "type_id": type_id, "type": type_name, "value": value }));
        }
    }
    let mut unmapped = Map::new();
    unmapped.insert("rule_hash".into(), alert.rule_hash.clone().into());
    // A Sigma rule: its id, title and author (DRL 1.1 asks that alerts carry them), as a related analytic.
    let related_analytics: Vec<Value> = alert
        .source_rule
        .iter()
        .map(|source| {
            json!({
                "uid": source.id,
                "name": source.title,
                "type_id": 1,
                "type": "Rule",
                "category": source.format,
                "desc": format!("author: {}", source.author),
            })
        })
        .collect();
    if let Some(source) = &alert.source_rule {
        unmapped.insert("source_rule".into(), serde_json::to_value(source).unwrap_or_default());
    }
    let mut finding = json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "time": time_ms,
        "start_time": start,
        "end_time": end,
        "count": count,
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": 1,
        "status": "New",
        "message": alert.rule_title,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert.alert_id,
            "log_name": "alerts",
            "product": { "name": "vigil", "vendor_name": "vigil", "version": env!("CARGO_PKG_VERSION") },
        },
        "finding_info": {
            "uid": alert.alert_id,
            "title": alert.rule_title,
            "desc": format!("{} ({count} event(s) matched rule {})", alert.rule_title, alert.rule_id),
            "types": alert.criteria,
            "first_seen_time": start,
            "last_seen_time": end,
            "analytic": {
                "uid": alert.rule_id,
                "name": alert.rule_title,
                "type_id": 1,
                "type": "Rule",
                "version": alert.rule_hash.get(..12).unwrap_or(&alert.rule_hash),
            },
            "related_events": related,
        },
        "evidences": [{ "data": Value::Object(fields.clone()) }],
        "unmapped": Value::Object(unmapped),
    });
    if !related_analytics.is_empty() {
        finding["finding_info"]["related_analytics"] = Value::Array(related_analytics);
    }
    if !observables.is_empty() {
        finding["observables"] = Value::Array(observables);
    }
    finding
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        let mut fields = Map::new();
        fields.insert("actor_user".into(), "alice".into());
        fields.insert("src_ip".into(), "203.0.113.9".into());
        fields.insert("user_agent".into(), Value::Null);
        Alert {
            alert_id: "0123456789abcdef0123456789abcdef".into(),
            rule_id: "aws_root_login".into(),
            rule_title: "Root account login".into(),
            severity: "critical",
            criteria: vec!["CC6.1".into(), "CC6.2".into()],
            rule_hash: "ffeeddccbbaa99887766554433221100".into(),
            time_us: 1_700_000_000_123_456,
            time: vigil_rules::format_time_us(1_700_000_000_123_456),
            fields,
            event_ids: (0..150).map(|i| format!("e{i:03}")).collect(),
            source_rule: None,
        }
    }

    #[test]
    fn an_alert_becomes_a_detection_finding() {
        let f = detection_finding(&alert());
        assert_eq!((f["class_uid"].as_u64(), f["type_uid"].as_u64()), (Some(2004), Some(200401)));
        assert_eq!(f["time"], 1_700_000_000_123i64);
        assert_eq!((f["severity_id"].as_u64(), f["severity"].as_str()), (Some(5), Some("Critical")));
        assert_eq!(f["finding_info"]["uid"], f["metadata"]["uid"]);
        assert_eq!(f["finding_info"]["analytic"]["uid"], "aws_root_login");
        assert_eq!(f["finding_info"]["related_events"].as_array().unwrap().len(), MAX_RELATED_EVENTS);
        assert_eq!(f["count"], 150);
        let observables = f["observables"].as_array().unwrap();
        assert_eq!(observables.len(), 2, "null and absent fields are no observables");
        assert_eq!(observables[1]["type_id"], 2);
        assert!(f["finding_info"].get("related_analytics").is_none());
        let sigma = Alert {
            source_rule: Some(vigil_rules::sigma::SourceRule {
                format: "sigma",
                id: "8ad1".into(),
                title: "Root used".into(),
                author: "A. Author".into(),
                level: "high".into(),
                logsource: "product: aws".into(),
            }),
            ..alert()
        };
        let f = detection_finding(&sigma);
        assert_eq!(f["finding_info"]["related_analytics"][0]["uid"], "8ad1");
        assert_eq!(f["finding_info"]["related_analytics"][0]["desc"], "author: A. Author");
        assert_eq!(f["unmapped"]["source_rule"]["author"], "A. Author");
    }
}

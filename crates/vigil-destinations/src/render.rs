//! The request bodies of Slack and PagerDuty, made from an [`Outgoing`] alert when it is queued (a
//! webhook gets the alert as the pipeline writes it to its other outputs).
//!
//! - Slack incoming webhook: `{"text": fallback, "blocks": [header, section, context]}`. Every value
//!   from a record is escaped for Slack (`&`, `<`, `>`), so a record cannot mention `@channel` or forge
//!   a link, and cut to Slack's block limits.
//! - PagerDuty Events API v2: `{"event_action": "trigger", "dedup_key": alert id, "payload": {summary,
//!   source, severity, timestamp, component, group, class, custom_details}, "client"}`; the routing key is
//!   added when the event is sent (it is never written to the spool). Severity: critical -> critical,
//!   high -> error, medium -> warning, low and info -> info.

use serde_json::{Value, json};

/// An alert on its way to the destinations: its id and what the messages are made of.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The alert's deterministic id: the webhook's `Idempotency-Key`, PagerDuty's `dedup_key`.
    pub alert_id: String,
    /// Rule id.
    pub rule_id: String,
    /// Rule title.
    pub title: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Alert time (RFC 3339).
    pub time: String,
    /// SOC 2 criteria.
    pub criteria: Vec<String>,
    /// Events behind the alert (for a grouped alert, all it counts).
    pub events: u64,
    /// The columns the rule selected (record content: escaped where shown).
    pub fields: serde_json::Map<String, Value>,
    /// The rule the alert's rule was converted from (a Sigma rule: `id`, `title`, `author`, ...), which
    /// its license asks every alert to carry.
    pub source_rule: Option<Value>,
    /// The webhook body: the alert as the pipeline writes it (vigil JSON or OCSF), exact bytes signed.
    pub webhook_body: String,
}

/// Slack's limit on a section's text.
const SLACK_SECTION_CHARS: usize = 2_900;
/// Slack's limit on a header's text.
const SLACK_HEADER_CHARS: usize = 150;
/// PagerDuty's limit on `summary`.
const PAGERDUTY_SUMMARY_CHARS: usize = 1_024;
/// Fields shown in a Slack message (all go to PagerDuty's custom details).
const SLACK_FIELDS: usize = 10;

/// Slack's escaping of text: `&`, `<`, `>`.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((i, _)) if text[i..].chars().nth(1).is_some() => format!("{}…", &text[..i]),
        _ => text.to_string(),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The Slack message of an alert.
pub fn slack(alert: &Outgoing) -> Value {
    let severity = alert.severity.to_uppercase();
    let title = slack_escape(&alert.title);
    let fallback = cut(&format!("[{severity}] {title} ({})", slack_escape(&alert.rule_id)), SLACK_SECTION_CHARS);
    let mut lines = vec![
        format!("*Rule:* `{}`  *Severity:* {}", slack_escape(&alert.rule_id), slack_escape(&alert.severity)),
        format!("*Time:* {}  *Events:* {}", slack_escape(&alert.time), alert.events),
    ];
    if !alert.criteria.is_empty() {
        lines.push(format!("*Criteria:* {}", slack_escape(&alert.criteria.join(", "))));
    }
    if let Some(source) = &alert.source_rule {
        let text = |key: &str| source.get(key).map(value_text).unwrap_or_default();
        lines.push(format!(
            "*Sigma rule:* {} (`{}`) by {}",
            slack_escape(&text("title")),
            slack_escape(&text("id")),
            slack_escape(&text("author"))
        ));
    }
    for (name, value) in alert.fields.iter().take(SLACK_FIELDS) {
        lines.push(format!("*{}:* {}", slack_escape(name), slack_escape(&cut(&value_text(value), 200))));
    }
    json!({
        "text": fallback,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": cut(&format!("[{severity}] {}", alert.title), SLACK_HEADER_CHARS)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&lines.join("\n"), SLACK_SECTION_CHARS)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("vigil alert `{}`", slack_escape(&alert.alert_id))}]}
        ]
    })
}

/// PagerDuty's severity of a vigil severity.
pub fn pagerduty_severity(severity: &str) -> &'static str {
    match severity {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        _ => "info",
    }
}

/// The PagerDuty Events v2 event of an alert, without `routing_key` (added when sent).
pub fn pagerduty(alert: &Outgoing) -> Value {
    let source = alert
        .fields
        .get("cloud_account")
        .or_else(|| alert.fields.get("src_ip"))
        .or_else(|| alert.fields.get("actor_user"))
        .map(value_text)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "vigil".to_string());
    let mut details = alert.fields.clone();
    details.insert("alert_id".into(), alert.alert_id.clone().into());
    details.insert("rule_id".into(), alert.rule_id.clone().into());
    details.insert("criteria".into(), alert.criteria.clone().into());
    details.insert("events".into(), alert.events.into());
    if let Some(source) = &alert.source_rule {
        details.insert("source_rule".into(), source.clone());
    }
    json!({
        "event_action": "trigger",
        "dedup_key": alert.alert_id,
        "payload": {
            "summary": cut(&format!("{} ({})", alert.title, alert.rule_id), PAGERDUTY_SUMMARY_CHARS),
            "source": cut(&source, 255),
            "severity": pagerduty_severity(&alert.severity),
            "timestamp": alert.time,
            "component": "vigil",
            "group": alert.criteria.first().cloned().unwrap_or_else(|| "detections".into()),
            "class": alert.rule_id,
            "custom_details": details,
        },
        "client": "vigil",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Outgoing {
        let mut fields = serde_json::Map::new();
        fields.insert("actor_user".into(), "<!channel> & <https://evil|click>".into());
        Outgoing {
            alert_id: "abc".into(),
            rule_id: "soc2.r".into(),
            title: "T".into(),
            severity: "high".into(),
            time: "2026-01-01T00:00:00Z".into(),
            criteria: vec!["CC6.1".into()],
            events: 3,
            fields,
            source_rule: Some(json!({"format": "sigma", "id": "5f3c", "title": "<b>T</b>", "author": "A. Author"})),
            webhook_body: "{}".into(),
        }
    }

    #[test]
    fn record_content_cannot_mention_or_link_in_slack() {
        let message = slack(&alert());
        let text = message["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(!text.contains("<!channel>") && text.contains("&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"));
        assert!(message["text"].as_str().unwrap().contains("[HIGH] T"));
        assert!(text.contains("*Sigma rule:* &lt;b&gt;T&lt;/b&gt; (`5f3c`) by A. Author"), "{text}");
    }

    #[test]
    fn pagerduty_events_carry_the_alert_id_and_a_mapped_severity() {
        let event = pagerduty(&alert());
        assert_eq!(event["dedup_key"], "abc");
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["payload"]["severity"], "error");
        assert!(event.get("routing_key").is_none());
        assert_eq!(event["payload"]["custom_details"]["source_rule"]["author"], "A. Author");
        assert_eq!(
            ["critical", "high", "medium", "low", "info"].map(pagerduty_severity),
            ["critical", "error", "warning", "info", "info"]
        );
        assert_eq!(cut("abcdef", 3), "ab…");
        assert_eq!(cut("abc", 3), "abc");
    }
}

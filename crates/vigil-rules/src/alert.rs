//! Alerts: what a rule's result rows become.

use serde::Serialize;
use sha2::{Digest, Sha256};
pub use vigil_schema::format_time_us;

/// One alert: a rule matched the events in `event_ids`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Hex of the first 16 bytes of SHA-256(rule id, the sorted event ids): the same events give the
    /// same id on every replay, so downstream can deduplicate.
    pub alert_id: String,
    /// Rule id.
    pub rule_id: String,
    /// Rule title.
    pub rule_title: String,
    /// Rule severity.
    pub severity: &'static str,
    /// SOC 2 criteria of the rule.
    pub criteria: Vec<String>,
    /// SHA-256 of the rule file that raised it.
    pub rule_hash: String,
    /// Alert time, UTC microseconds (the rule's `time` column).
    #[serde(skip)]
    pub time_us: i64,
    /// Alert time as RFC 3339 text.
    pub time: String,
    /// Every other column the rule selected.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Ids of the events behind the alert, sorted.
    pub event_ids: Vec<String>,
    /// The rule the rule was converted from (a Sigma rule's id, title and author), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_rule: Option<crate::sigma::SourceRule>,
}

impl Alert {
    /// An alert of `rule` at `time_us` over `event_ids` (sorted and deduplicated here, so the id is stable).
    pub fn new(
        rule: &crate::Rule,
        time_us: i64,
        mut event_ids: Vec<String>,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        event_ids.sort();
        event_ids.dedup();
        Alert {
            alert_id: alert_id(&rule.id, &event_ids),
            rule_id: rule.id.clone(),
            rule_title: rule.title.clone(),
            severity: rule.severity.as_str(),
            criteria: rule.criteria.clone(),
            rule_hash: rule.hash.clone(),
            time_us,
            time: format_time_us(time_us),
            fields,
            event_ids,
            source_rule: rule.source_rule.clone(),
        }
    }
}

/// The deterministic alert id of `rule_id` over `event_ids` (sorted by the caller).
pub fn alert_id(rule_id: &str, event_ids: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(rule_id.as_bytes());
    for id in event_ids {
        hasher.update([0u8]);
        hasher.update(id.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Alerts as a batch of [`vigil_schema::alert_schema`], for the archive.
pub fn alerts_to_batch(alerts: &[Alert], ingest_source: &str, partition: i32) -> arrow::array::RecordBatch {
    use arrow::array::{Int32Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder};
    use std::sync::Arc;
    let n = alerts.len();
    let s = || StringBuilder::with_capacity(n, n * 32);
    let (mut id, mut rule, mut title, mut severity, mut hash, mut fields, mut src) =
        (s(), s(), s(), s(), s(), s(), s());
    let mut criteria = ListBuilder::new(s());
    let mut event_ids = ListBuilder::new(s());
    let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut part = Int32Builder::with_capacity(n);
    for a in alerts {
        id.append_value(&a.alert_id);
        rule.append_value(&a.rule_id);
        title.append_value(&a.rule_title);
        severity.append_value(a.severity);
        for c in &a.criteria {
            criteria.values().append_value(c);
        }
        criteria.append(true);
        hash.append_value(&a.rule_hash);
        time.append_value(a.time_us);
        for e in &a.event_ids {
            event_ids.values().append_value(e);
        }
        event_ids.append(true);
        fields.append_value(serde_json::Value::Object(a.fields.clone()).to_string());
        src.append_value(ingest_source);
        part.append_value(partition);
    }
    let non_null_list = |mut b: ListBuilder<StringBuilder>| -> arrow::array::ArrayRef {
        let list = b.finish();
        let field = Arc::new(arrow::datatypes::Field::new("item", arrow::datatypes::DataType::Utf8, true));
        let (_, offsets, values, nulls) = list.into_parts();
        Arc::new(arrow::array::ListArray::new(field, offsets, values, nulls))
    };
    let columns: Vec<arrow::array::ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(rule.finish()),
        Arc::new(title.finish()),
        Arc::new(severity.finish()),
        non_null_list(criteria),
        Arc::new(hash.finish()),
        Arc::new(time.finish()),
        non_null_list(event_ids),
        Arc::new(fields.finish()),
        Arc::new(src.finish()),
        Arc::new(part.finish()),
    ];
    // Columns are built in alert_schema's order and types.
    #[allow(clippy::expect_used)]
    arrow::array::RecordBatch::try_new(vigil_schema::alert_schema(), columns)
        .expect("alert columns match the schema (bug)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_order_sensitive_only_through_sorting() {
        let a = alert_id("r", &["1".into(), "2".into()]);
        assert_eq!(a, alert_id("r", &["1".into(), "2".into()]));
        assert_ne!(a, alert_id("r2", &["1".into(), "2".into()]));
        assert_ne!(a, alert_id("r", &["12".into()]));
    }
}

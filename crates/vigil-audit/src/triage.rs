//! Alert triage: `vigil alerts triage` appends what someone decided about an alert to the archive's
//! `triage` table (chained and signed like evidence, never edited: a later decision is a new record),
//! and `vigil alerts list` shows the queue, the latest status of each alert of a period (an alert never
//! triaged is `open`).
//!
//! The queue is one SQL query ([`queue_sql`]), printed by the report beside the numbers it gives, so
//! anyone can run it again with `vigil query`.

use arrow::array::{Array, AsArray};
use datafusion::prelude::SessionContext;
use vigil_evidence::Archive;
use vigil_evidence::records::{TRIAGE_STATUSES, TriageRecord};

use crate::query::query;
use crate::{Error, Result};

/// A triage decision to record.
#[derive(Debug, Clone)]
pub struct TriageRequest {
    /// The alert.
    pub alert_id: String,
    /// One of [`TRIAGE_STATUSES`].
    pub status: String,
    /// Who decided.
    pub by: String,
    /// A ticket reference.
    pub ticket: Option<String>,
    /// A note.
    pub note: Option<String>,
}

/// `'text'` as a SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Records `request` after checking the alert is in the archive; returns the record and its `triage_id`.
pub async fn record(
    archive: &Archive,
    ctx: &SessionContext,
    request: &TriageRequest,
) -> Result<(TriageRecord, String)> {
    if !TRIAGE_STATUSES.contains(&request.status.as_str()) {
        return Err(Error::Invalid(format!(
            "unknown status `{}`: use one of {}",
            request.status,
            TRIAGE_STATUSES.join(", ")
        )));
    }
    if request.by.trim().is_empty() {
        return Err(Error::Invalid("--by must name who triaged the alert".into()));
    }
    let sql = format!(
        "SELECT rule_id, CAST(time AS BIGINT) AS t FROM alerts WHERE alert_id = {} LIMIT 1",
        quote(&request.alert_id)
    );
    let found = query(ctx, &sql).await?;
    let row = found.iter().find(|b| b.num_rows() > 0);
    let Some(batch) = row else {
        return Err(Error::Invalid(format!(
            "no alert `{}` in the archive: give an alert_id as `vigil alerts list` or the alerts output shows it",
            request.alert_id
        )));
    };
    let rule_id = batch.column(0).as_string_opt::<i32>().filter(|a| !a.is_null(0)).map(|a| a.value(0).to_string());
    let time = batch.column(1).as_primitive_opt::<arrow::datatypes::Int64Type>().map(|a| a.value(0));
    let (Some(rule_id), Some(alert_time_us)) = (rule_id, time) else {
        return Err(Error::Invalid(format!("alert `{}` has no rule or time in the archive", request.alert_id)));
    };
    let record = TriageRecord {
        alert_id: request.alert_id.clone(),
        rule_id,
        alert_time_us,
        status: request.status.clone(),
        triaged_by: request.by.clone(),
        ticket: request.ticket.clone(),
        note: request.note.clone(),
        time_us: vigil_evidence::now_us(),
    };
    let (id, _) = archive.record_triage(&record).await?;
    Ok((record, id))
}

/// The latest triage record of each alert (`n = 1`), as a SQL common table expression named `latest`.
pub const LATEST_TRIAGE: &str = "latest AS (SELECT alert_id, status, triaged_by, ticket, time AS triaged_at, \
     row_number() OVER (PARTITION BY alert_id ORDER BY time DESC, triage_id DESC) AS n FROM triage)";

/// The queue: every alert raised in `[from, to)` (RFC 3339) with its latest status (`open` when never
/// triaged), only those with `status` when given, oldest first.
pub fn queue_sql(status: Option<&str>, from: &str, to: &str) -> String {
    let filter = status.map(|s| format!(" AND COALESCE(l.status, 'open') = {}", quote(s))).unwrap_or_default();
    format!(
        "WITH {LATEST_TRIAGE} SELECT a.alert_id, a.rule_id, a.severity, a.time, COALESCE(l.status, 'open') AS \
         status, l.triaged_by, l.ticket, l.triaged_at FROM alerts a LEFT JOIN latest l ON l.alert_id = a.alert_id \
         AND l.n = 1 WHERE a.time >= TIMESTAMP {} AND a.time < TIMESTAMP {}{filter} ORDER BY a.time, a.alert_id",
        quote(from),
        quote(to)
    )
}

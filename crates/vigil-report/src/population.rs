//! The population section: the same on every control page (the events the control's rules ran over).

use vigil_audit::triage::quote;

use crate::Result;
use crate::context::{Context, chart};
use crate::html::{self, table};
use crate::integrity::verify_command;

/// The population section: the same on every control page (the events the control's rules ran over).
pub(crate) async fn population_section(c: &Context<'_>) -> Result<(String, String)> {
    let period = &c.period;
    let mut out = String::from(
        "<h2 id=\"population\">Population</h2>\n<p class=\"note\">Every record the archive holds for the period: the population the rules ran over and an auditor samples from. Counts read only files the manifest chains list.</p>\n",
    );
    let total = c
        .show(
            &mut out,
            "q-population-total",
            &["events", "sources", "first event", "last event"],
            &[true, true, false, false],
            &format!(
                "SELECT count(*) AS events, count(DISTINCT source) AS sources, to_char(min(time), '%Y-%m-%d %H:%M') AS first_event, to_char(max(time), '%Y-%m-%d %H:%M') AS last_event FROM events WHERE {period}"
            ),
        )
        .await?;
    out += "<h3>Events per source per month</h3>\n";
    let sql = format!(
        "SELECT source, substr(date, 1, 7) AS month, count(*) AS events FROM events WHERE {period} GROUP BY source, substr(date, 1, 7) ORDER BY source, month"
    );
    let rows = c.rows_or_failed(&sql).await;
    out += &chart("Events per month, by source", &c.months, &rows);
    out += &table("q-population-months", &["source", "month", "events"], &rows, &[false, false, true]);
    out += &html::query_command("q-population-months-sql", &c.options.evidence, &sql);

    out += "<h3>Dead letters per reason</h3>\n<p class=\"note\">Records that could not be normalized are kept whole as dead letters. Counted here: those read in the period, and those among the records that delivered the period's events (same source partition, between its first and last offset in the period).</p>\n";
    c
        .show(
            &mut out,
            "q-dead-letters",
            &["format", "reason", "dead letters"],
            &[false, false, true],
            &format!(
                "WITH span AS (SELECT ingest_source, ingest_partition, min(ingest_offset) AS lo, max(ingest_offset) AS hi FROM events WHERE {period} GROUP BY ingest_source, ingest_partition) \
                 SELECT d.format, d.reason_code, count(*) AS dead_letters FROM dead_letters d LEFT JOIN span s ON d.ingest_source = s.ingest_source AND d.ingest_partition = s.ingest_partition AND d.ingest_offset BETWEEN s.lo AND s.hi \
                 WHERE s.lo IS NOT NULL OR (d.ingest_time >= TIMESTAMP {} AND d.ingest_time < TIMESTAMP {}) GROUP BY d.format, d.reason_code ORDER BY d.format, d.reason_code",
                quote(&c.options.from),
                quote(&c.options.to)
            ),
        )
        .await?;

    out += "<h3>Completeness breaks</h3>\n<p class=\"note\">Offsets a source no longer had when vigil read it (Kafka retention deleted them first), recorded in the manifest chains instead of hidden. From <code>vigil verify</code>.</p>\n";
    let breaks: Vec<Vec<String>> = c
        .verify
        .warnings
        .iter()
        .filter(|w| w.kind == "completeness_break")
        .map(|w| vec![w.object.clone(), w.detail.clone()])
        .collect();
    out += &table("verify-completeness", &["manifest entry", "what was lost"], &breaks, &[false, false]);
    out += &html::command("reproduce with", &verify_command(c));

    let silence_us = i64::from(c.options.silence_hours) * 3_600_000_000;
    out += &format!(
        "<h3>Silence spells</h3>\n<p class=\"note\">Gaps of more than {} hours between two consecutive events of one source within the period (a source that stopped sending is a gap in the population).</p>\n",
        c.options.silence_hours
    );
    c
        .show(
            &mut out,
            "q-silence",
            &["source", "silent from", "silent until", "hours"],
            &[false, false, false, true],
            &format!(
                "SELECT source, to_char(prev, '%Y-%m-%d %H:%M') AS silent_from, to_char(time, '%Y-%m-%d %H:%M') AS silent_until, (CAST(time AS BIGINT) - CAST(prev AS BIGINT)) / 3600000000 AS hours \
                 FROM (SELECT source, time, lag(time) OVER (PARTITION BY source ORDER BY time) AS prev FROM events WHERE {period}) \
                 WHERE prev IS NOT NULL AND CAST(time AS BIGINT) - CAST(prev AS BIGINT) > {silence_us} ORDER BY source, prev, time"
            ),
        )
        .await?;

    out += "<h3>Late events</h3>\n<p class=\"note\">Events vigil read more than 24 hours after they happened (ingest time minus event time): replays, backfills, or a delivery backlog.</p>\n";
    c
        .show(
            &mut out,
            "q-late",
            &["source", "late events", "latest delay (hours)"],
            &[false, true, true],
            &format!(
                "SELECT source, count(*) AS late_events, max(CAST(ingest_time AS BIGINT) - CAST(time AS BIGINT)) / 3600000000 AS max_delay_hours FROM events \
                 WHERE {period} AND CAST(ingest_time AS BIGINT) - CAST(time AS BIGINT) > 86400000000 GROUP BY source ORDER BY source"
            ),
        )
        .await?;
    let events = total.first().and_then(|r| r.first()).cloned().unwrap_or_default();
    Ok((out, events))
}

//! One control's page: the criterion, its rules and their versions, the population, alerts and triage,
//! the sample and the archive's integrity.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use vigil_audit::sample::{Population, SampleRequest};
use vigil_audit::triage::{LATEST_TRIAGE, quote};

use crate::context::{Context, chart, format_us, micros, write_file};
use crate::html::{self, esc, table};
use crate::integrity::verify_section;
use crate::sample::sample_section;
use crate::{ControlSummary, Result, tsc};

/// One rule version of a control, from the `rules` table.
#[derive(Debug, Default)]
pub(crate) struct Version {
    rule_id: String,
    rule_hash: String,
    packs: BTreeSet<String>,
    title: String,
    severity: String,
    kind: String,
    file: String,
    text: String,
    text_sha256: String,
    first_recorded: String,
}

pub(crate) async fn control_page(
    c: &Context<'_>,
    control: &str,
    population: &(String, String),
) -> Result<ControlSummary> {
    let o = c.options;
    let crit = format!("array_has(criteria, {})", quote(control));
    let known = tsc::criterion(control);
    let title = match known {
        Some(k) => format!("{control} {}", k.name),
        None => control.to_string(),
    };
    let mut body = criterion_section(control, known);
    let glance_at = body.len();
    let rules = rules_section(c, &crit).await?;
    body += &rules.html;
    body += &population.0;
    let (alerts_html, total, unresolved) = alerts_section(c, &crit, control, &rules.per_version_html).await?;
    body += &alerts_html;
    let (sample_html, sampled) = sample_part(c, control).await?;
    body += &sample_html;
    // Verify, then the rule texts.
    body += &verify_section(c);
    body += "<h2 id=\"rule-texts\">Appendix: the text of each rule version</h2>\n";
    body += &rules.cards;
    let glance = glance(c, rules.versions, &population.1, total, &unresolved, sampled);
    body.insert_str(glance_at, &(c.failures_banner() + &glance));

    let header = c.header(&title, "SOC 2 workpaper: control test from the evidence archive", true);
    let footer = format!(
        "Prepared by vigil {} from the evidence archive {}. Every table is one SQL query over the archive, printed beneath it; \
         the sample is the draw <code>vigil sample</code> makes with the same seed. Tester columns are for the engagement team.",
        env!("CARGO_PKG_VERSION"),
        esc(c.archive.location())
    );
    let page = html::page(&format!("{title}: SOC 2 workpaper"), &header, &body, &footer);
    let path = o.out.join(format!("{control}.html"));
    write_file(&path, page.as_bytes())?;
    Ok(ControlSummary { id: control.to_string(), page: path, rule_versions: rules.versions, alerts: total, sampled })
}

/// The criterion in plain words and in the AICPA's text, and what is tested.
fn criterion_section(control: &str, known: Option<&tsc::Criterion>) -> String {
    let mut body = String::new();
    body += "<h2 id=\"control\">The control</h2>\n<div class=\"criterion\">";
    match known {
        Some(k) => {
            let _ = write!(
                body,
                "<p class=\"plain\">{}</p><blockquote>{}</blockquote><p class=\"note\">{} of the 2017 Trust Services Criteria (revised points of focus, 2022), AICPA.</p>",
                esc(k.plain),
                esc(k.text),
                esc(k.id)
            );
        }
        None => {
            let _ = write!(
                body,
                "<p class=\"plain\">{} is not in vigil's table of criteria: see the Trust Services Criteria for its text.</p>",
                esc(control)
            );
        }
    }
    body += "</div>\n<p>Tested here: the detection rules mapped to this criterion ran over the complete population of the period, raised the alerts below, and each alert was triaged; a sample of alerts is traced back to the raw records and to the signed digests that prove them.</p>\n";

    body
}

/// The rules mapped to a control: the versions table and, for the appendix, one card per version.
struct RulesSection {
    html: String,
    /// The appendix: each version's text and when it was in force.
    cards: String,
    /// Rule versions mapped.
    versions: usize,
    /// Alerts per rule version (shown in the alerts section).
    per_version_html: String,
}

/// The rules mapped to the control (`crit`, an SQL condition on `criteria`) and their versions.
async fn rules_section(c: &Context<'_>, crit: &str) -> Result<RulesSection> {
    let o = c.options;
    let period = &c.period;
    let mut body = String::new();
    body += "<h2 id=\"rules\">Rules mapped to the control</h2>\n<p class=\"note\">The text of every rule version that ran, from the archive's <code>rules</code> table (chained and signed with the evidence). A version is named by its rule hash, which every alert it raised carries.</p>\n";
    let sql = format!(
        "SELECT rule_id, rule_hash, to_char(min(recorded_at), '%Y-%m-%d %H:%M:%S') AS first_recorded, count(DISTINCT pack_hash) AS packs FROM rules WHERE {crit} GROUP BY rule_id, rule_hash ORDER BY rule_id, min(recorded_at), rule_hash"
    );
    let (html, version_rows) = c
        .shown("q-rule-versions", &["rule", "rule hash", "first recorded", "packs"], &[false, false, false, true], &sql)
        .await?;
    body += &html;
    let detail = c
        .rows_or_failed(&format!(
            "SELECT rule_id, rule_hash, pack_hash, title, severity, kind, file, text, text_sha256, to_char(recorded_at, '%Y-%m-%d %H:%M:%S') FROM rules WHERE {crit} ORDER BY rule_id, recorded_at"
        ))
        .await;
    let mut versions: BTreeMap<(String, String), Version> = BTreeMap::new();
    for r in detail {
        let v = versions.entry((r[0].clone(), r[1].clone())).or_insert_with(|| Version {
            rule_id: r[0].clone(),
            rule_hash: r[1].clone(),
            title: r[3].clone(),
            severity: r[4].clone(),
            kind: r[5].clone(),
            file: r[6].clone(),
            text: r[7].clone(),
            text_sha256: r[8].clone(),
            first_recorded: r[9].clone(),
            ..Version::default()
        });
        v.packs.insert(r[2].clone());
    }
    let per_version_sql = format!(
        "SELECT rule_id, rule_hash, count(*) AS alerts, to_char(min(time), '%Y-%m-%d %H:%M') AS first_alert, to_char(max(time), '%Y-%m-%d %H:%M') AS last_alert FROM alerts WHERE {crit} AND {period} GROUP BY rule_id, rule_hash ORDER BY rule_id, min(time), rule_hash"
    );
    let (per_version_html, per_version) = c
        .shown(
            "q-alerts-per-version",
            &["rule", "rule hash", "alerts", "first alert", "last alert"],
            &[false, false, true, false, false],
            &per_version_sql,
        )
        .await?;
    let ordered: Vec<&Version> =
        version_rows.iter().filter_map(|r| versions.get(&(r[0].clone(), r[1].clone()))).collect();
    let mut cards = String::new();
    for v in &ordered {
        let span =
            v.packs.iter().filter_map(|p| c.pack_ranges.get(p)).fold(None, |acc: Option<(i64, i64)>, (a, b)| {
                Some(acc.map_or((*a, *b), |(x, y)| (x.min(*a), y.max(*b))))
            });
        let (from_us, to_us) = (micros(&o.from).unwrap_or(0), micros(&o.to).unwrap_or(0));
        let in_period = span.is_some_and(|(a, b)| b >= from_us && a < to_us);
        let alerts = per_version.iter().find(|r| r[0] == v.rule_id && r[1] == v.rule_hash);
        let hash_ok = v.text_sha256 == v.rule_hash;
        let _ = writeln!(
            cards,
            "<div class=\"rulecard\" data-rule=\"{}\" data-rule-hash=\"{}\"><div class=\"head\"><strong>{}</strong><span>{} · {} · {}</span></div><div class=\"body\"><dl>\
             <dt>title</dt><dd>{}</dd><dt>rule hash</dt><dd><code>{}</code></dd><dt>text SHA-256</dt><dd><code>{}</code> {}</dd>\
             <dt>file</dt><dd>{}</dd><dt>first recorded</dt><dd>{} (run start)</dd>\
             <dt>in force (event time)</dt><dd>{}</dd><dt>alerts in the period</dt><dd>{}</dd></dl>\
             <pre class=\"rule\">{}</pre></div></div>",
            esc(&v.rule_id),
            esc(&v.rule_hash),
            esc(&v.rule_id),
            esc(&v.severity),
            esc(&v.kind),
            if in_period { "in force in the period" } else { "not in force in the period" },
            esc(&v.title),
            esc(&v.rule_hash),
            esc(&v.text_sha256),
            if hash_ok {
                "<span class=\"badge ok\">matches the rule hash</span>"
            } else {
                "<span class=\"badge warn\">differs from the rule hash (the rule was compiled from this text)</span>"
            },
            esc(&v.file),
            esc(&v.first_recorded),
            esc(&span.map_or_else(
                || "no events archived with it".to_string(),
                |(a, b)| format!("{} to {}", format_us(a), format_us(b))
            )),
            esc(&alerts.map_or_else(|| "0".to_string(), |r| format!("{} ({} to {})", r[2], r[3], r[4]))),
            esc(&v.text),
        );
    }
    cards += "<p class=\"note\">\"In force\" is the event time span of the ranges archived while a pack holding this version ran (each manifest entry names its rule pack hash; <code>vigil verify</code> checks the entries).</p>\n";
    let orphans: Vec<&Vec<String>> =
        per_version.iter().filter(|r| !versions.contains_key(&(r[0].clone(), r[1].clone()))).collect();
    if !orphans.is_empty() {
        let _ = writeln!(
            body,
            "<p><span class=\"badge warn\">{} rule version(s) raised alerts but their text is not in the archive</span> (archived before vigil kept rule texts, or the <code>rules</code> files were removed: <code>vigil verify</code> says which).</p>",
            orphans.len()
        );
    }

    Ok(RulesSection { html: body, cards, versions: ordered.len(), per_version_html })
}

/// Alerts per rule per month and their triage; returns the html, the alerts raised and the count of
/// alerts unresolved past the limit.
async fn alerts_section(
    c: &Context<'_>,
    crit: &str,
    control: &str,
    per_version_html: &str,
) -> Result<(String, u64, String)> {
    let o = c.options;
    let period = &c.period;
    // The same conditions on the alerts `a` of a join.
    let (a_crit, a_period) = (crit.replace("criteria", "a.criteria"), period.replace("time", "a.time"));
    let mut body = String::new();
    body += "<h2 id=\"alerts\">Alerts and their triage</h2>\n";
    let sql = format!(
        "SELECT rule_id, substr(date, 1, 7) AS month, count(*) AS alerts FROM alerts WHERE {crit} AND {period} GROUP BY rule_id, substr(date, 1, 7) ORDER BY rule_id, month"
    );
    let rows = c.rows_or_failed(&sql).await;
    let total: u64 = rows.iter().map(|r| r[2].parse::<u64>().unwrap_or(0)).sum();
    body += "<h3>Alerts per rule per month</h3>\n";
    body += &chart(&format!("Alerts per month of rules mapped to {control}, by rule"), &c.months, &rows);
    body += &table("q-alerts-months", &["rule", "month", "alerts"], &rows, &[false, false, true]);
    body += &html::query_command("q-alerts-months-sql", &o.evidence, &sql);
    body += "<h3>Alerts per rule version</h3>\n";
    body += per_version_html;
    body += "<h3>Triage status</h3>\n<p class=\"note\">The latest triage record of each alert (<code>vigil alerts triage</code>); an alert never triaged is open.</p>\n";
    c
        .show(
            &mut body,
            "q-triage-status",
            &["status", "alerts"],
            &[false, true],
            &format!(
                "WITH {LATEST_TRIAGE} SELECT COALESCE(l.status, 'open') AS latest_status, count(*) AS alerts FROM alerts a LEFT JOIN latest l ON l.alert_id = a.alert_id AND l.n = 1 WHERE {} AND {} GROUP BY COALESCE(l.status, 'open') ORDER BY latest_status",
                a_crit,
                a_period
            ),
        )
        .await?;
    body += "<h3>Triage records</h3>\n<p class=\"note\">Every decision recorded about the period's alerts of this control, oldest first (at most 200 listed): appended to the archive's <code>triage</code> table, never edited.</p>\n";
    c
        .show(
            &mut body,
            "q-triage-records",
            &["recorded", "alert", "rule", "status", "by", "ticket", "note"],
            &[false; 7],
            &format!(
                "SELECT to_char(t.time, '%Y-%m-%d %H:%M:%S') AS recorded, t.alert_id, t.rule_id, t.status, t.triaged_by, t.ticket, t.note FROM triage t JOIN alerts a ON a.alert_id = t.alert_id WHERE {} AND {} ORDER BY t.time, t.triage_id LIMIT 200",
                a_crit,
                a_period
            ),
        )
        .await?;
    body += "<h3>Time to triage</h3>\n<p class=\"note\">From the alert to its first triage record.</p>\n";
    c
        .show(
            &mut body,
            "q-time-to-triage",
            &["alerts triaged", "median hours", "mean hours", "longest hours"],
            &[true, true, true, true],
            &format!(
                "WITH first AS (SELECT alert_id, min(time) AS t FROM triage GROUP BY alert_id), d AS (SELECT (CAST(f.t AS BIGINT) - CAST(a.time AS BIGINT)) / 3600000000.0 AS h FROM alerts a JOIN first f ON f.alert_id = a.alert_id WHERE {} AND {}) \
                 SELECT count(*) AS triaged, CAST(round(median(h), 1) AS VARCHAR) AS median_hours, CAST(round(avg(h), 1) AS VARCHAR) AS mean_hours, CAST(round(max(h), 1) AS VARCHAR) AS max_hours FROM d",
                a_crit,
                a_period
            ),
        )
        .await?;
    let _ = write!(
        body,
        "<h3>Unresolved after {} days</h3>\n<p class=\"note\">Alerts raised more than {} days before the period's end whose latest status is neither resolved nor false positive (oldest first, at most 50 listed).</p>\n",
        o.unresolved_days, o.unresolved_days
    );
    let unresolved_where = format!(
        "{} AND {} AND COALESCE(l.status, 'open') NOT IN ('resolved', 'false_positive') AND CAST(a.time AS BIGINT) < CAST(TIMESTAMP {} AS BIGINT) - {}",
        a_crit,
        a_period,
        quote(&o.to),
        i64::from(o.unresolved_days) * 86_400_000_000
    );
    let unresolved = c
        .show(
            &mut body,
            "q-unresolved-count",
            &["unresolved alerts"],
            &[true],
            &format!("WITH {LATEST_TRIAGE} SELECT count(*) AS unresolved FROM alerts a LEFT JOIN latest l ON l.alert_id = a.alert_id AND l.n = 1 WHERE {unresolved_where}"),
        )
        .await?;
    c
        .show(
            &mut body,
            "q-unresolved",
            &["alert", "rule", "raised", "status", "triaged by", "ticket"],
            &[false; 6],
            &format!(
                "WITH {LATEST_TRIAGE} SELECT a.alert_id, a.rule_id, to_char(a.time, '%Y-%m-%d %H:%M') AS raised, COALESCE(l.status, 'open') AS status, l.triaged_by, l.ticket FROM alerts a LEFT JOIN latest l ON l.alert_id = a.alert_id AND l.n = 1 WHERE {unresolved_where} ORDER BY a.time, a.alert_id LIMIT 50"
            ),
        )
        .await?;

    let unresolved = unresolved.first().and_then(|r| r.first()).cloned().unwrap_or_default();
    Ok((body, total, unresolved))
}

/// The sample: drawn as `vigil sample` draws it, into the control's folder, then shown.
async fn sample_part(c: &Context<'_>, control: &str) -> Result<(String, usize)> {
    let o = c.options;
    let folder = o.out.join(control);
    let sample_dir = folder.join("sample");
    let _ = std::fs::remove_dir_all(&sample_dir);
    let request = SampleRequest {
        population: Population::Criterion(control.to_string()),
        from: o.from.clone(),
        to: o.to.clone(),
        size: o.sample_size,
        seed: o.seed.clone(),
    };
    let (sample_html, sampled) = match vigil_audit::sample::draw(c.archive, &c.ctx, &request, &sample_dir).await {
        Ok(drawn) => sample_section(c, control, &drawn, &folder).await?,
        Err(e) => {
            c.failed(format!("the sample: {e}"));
            let html = format!(
                "<h2 id=\"sample\">Sample</h2>\n<p><span class=\"badge bad\">the sample could not be drawn</span> {}</p>\n",
                esc(&e.to_string())
            );
            (html, 0)
        }
    };
    Ok((sample_html, sampled))
}

/// The figures at the top of the page, each the total of a table below.
fn glance(c: &Context<'_>, versions: usize, events: &str, total: u64, unresolved: &str, sampled: usize) -> String {
    let o = c.options;
    format!(
        "<h2 id=\"glance\">At a glance</h2>\n<div class=\"kpis\">\
         <div class=\"kpi\" data-from=\"q-rule-versions\"><div class=\"v\">{}</div><div class=\"k\">rule versions mapped</div></div>\
         <div class=\"kpi\" data-from=\"q-population-total\"><div class=\"v\">{}</div><div class=\"k\">events in the population</div></div>\
         <div class=\"kpi\" data-from=\"q-alerts-months\"><div class=\"v\">{total}</div><div class=\"k\">alerts raised</div></div>\
         <div class=\"kpi\" data-from=\"q-unresolved-count\"><div class=\"v\">{}</div><div class=\"k\">unresolved after {} days</div></div>\
         <div class=\"kpi\" data-from=\"sample\"><div class=\"v\">{sampled}</div><div class=\"k\">alerts sampled (seed {})</div></div>\
         <div class=\"kpi\" data-from=\"verify\"><div class=\"v\">{}</div><div class=\"k\">archive integrity</div></div></div>\n\
         <p class=\"note\">Each figure is the total of a table below, which prints the query it comes from.</p>\n",
        versions,
        esc(events),
        esc(unresolved),
        o.unresolved_days,
        esc(&o.seed),
        if c.verify.ok() { "intact" } else { "problems" },
    )
}

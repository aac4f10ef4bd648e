//! The workpaper's index page: every control tested, with its alert counts.

use std::fmt::Write as _;
use std::path::PathBuf;

use vigil_audit::triage::LATEST_TRIAGE;

use crate::context::{Context, write_file};
use crate::html::{self, esc};
use crate::integrity::verify_section;
use crate::{ControlSummary, Result, tsc};

pub(crate) async fn index_page(c: &Context<'_>, controls: &[ControlSummary]) -> Result<PathBuf> {
    let o = c.options;
    let period = &c.period;
    let mut body = String::new();
    let sql = format!(
        "WITH {LATEST_TRIAGE}, per AS (SELECT unnest(a.criteria) AS control, a.alert_id, COALESCE(l.status, 'open') AS latest_status FROM alerts a LEFT JOIN latest l ON l.alert_id = a.alert_id AND l.n = 1 WHERE {}) \
         SELECT control, count(*) AS alerts, count(*) FILTER (WHERE latest_status IN ('open', 'investigating')) AS unresolved FROM per GROUP BY control ORDER BY control",
        period.replace("time", "a.time")
    );
    let counts = c.rows_or_failed(&sql).await;
    body += &c.failures_banner();
    body += "<h2>Controls tested</h2>\n";
    body += "<table class=\"data\" data-from=\"q-index\"><thead><tr><th>control</th><th>criterion</th><th class=\"n\">rule versions</th><th class=\"n\">alerts</th><th class=\"n\">open or investigating</th><th class=\"n\">sampled</th></tr></thead><tbody>\n";
    for s in controls {
        let row = counts.iter().find(|r| r[0] == s.id);
        let _ = writeln!(
            body,
            "<tr><td><a href=\"{}.html\">{}</a></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&s.id),
            esc(&s.id),
            esc(tsc::criterion(&s.id).map_or("", |k| k.name)),
            s.rule_versions,
            row.map_or("0", |r| r[1].as_str()),
            row.map_or("0", |r| r[2].as_str()),
            s.sampled
        );
    }
    body += "</tbody></table>\n";
    body += &html::query_command("q-index-sql", &o.evidence, &sql);
    body += "<p class=\"note\">Alerts, and alerts whose latest status is open or investigating, per control: the query above (one row per criterion an alert serves). Rule versions and samples: on each control's page.</p>\n";
    body += &verify_section(c);
    body += "<h2>How to read this workpaper</h2>\n<p>Each control's page shows the criterion, the rules mapped to it with the exact text of every version that ran (from the archive, not from a repository), the population of the period, the alerts and what was done about them, a reproducible sample traced to raw records and signed digests, and the archive's integrity for the period. Every table is one SQL query over the archive printed beneath it: run it with <code>vigil query</code> to get the same rows. The pages load nothing and run no script; print them to PDF from any browser.</p>\n";
    let header = c.header("SOC 2 workpaper", "Control tests from the vigil evidence archive", false);
    let footer = format!("Prepared by vigil {} from {}.", env!("CARGO_PKG_VERSION"), esc(c.archive.location()));
    let page = html::page("SOC 2 workpaper", &header, &body, &footer);
    let path = o.out.join("index.html");
    write_file(&path, page.as_bytes())?;
    Ok(path)
}

//! What every page shares: the query session, the period, what was read once from the manifests and
//! digests, and the small formatting helpers the sections use.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use vigil_evidence::Archive;
use vigil_evidence::digest::Digest;
use vigil_evidence::verify::VerifyReport;

use crate::html::{self, esc, table};
use crate::{Error, ReportOptions, Result, svg};

/// Cell text of every row of `batches` (nulls empty).
pub(crate) fn cells(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter<'_>> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Invalid(format!("formatting a result: {e}")))?;
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect());
        }
    }
    Ok(rows)
}

/// Microseconds of an RFC 3339 time.
pub(crate) fn micros(text: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .map_err(|_| Error::Invalid(format!("`{text}` is not an RFC 3339 time")))
}

/// Every month (`YYYY-MM`) that overlaps `[from, to)`.
pub(crate) fn months(from_us: i64, to_us: i64) -> Vec<String> {
    use chrono::Datelike;
    let (Some(start), Some(end)) =
        (chrono::DateTime::from_timestamp_micros(from_us), chrono::DateTime::from_timestamp_micros(to_us - 1))
    else {
        return Vec::new();
    };
    let (mut y, mut m) = (start.year(), start.month());
    let mut out = Vec::new();
    while (y, m) <= (end.year(), end.month()) && out.len() < 240 {
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

/// What every page shares: the session, the period and what was read once from manifests and digests.
pub(crate) struct Context<'a> {
    pub(crate) ctx: SessionContext,
    pub(crate) archive: &'a Archive,
    pub(crate) options: &'a ReportOptions,
    pub(crate) period: String,
    pub(crate) months: Vec<String>,
    pub(crate) verify: VerifyReport,
    /// Pack hash -> (earliest, latest) event time of the ranges archived while it ran.
    pub(crate) pack_ranges: BTreeMap<String, (i64, i64)>,
    pub(crate) digests: Vec<Digest>,
    pub(crate) generated: String,
    /// What could not be read (queries that failed), shown on every page.
    pub(crate) failures: std::sync::Mutex<Vec<String>>,
}

impl Context<'_> {
    pub(crate) async fn rows(&self, sql: &str) -> Result<Vec<Vec<String>>> {
        cells(&vigil_audit::query::query(&self.ctx, sql).await?)
    }

    /// [`Context::rows`], or no rows when the query fails (a damaged file, say): the failure is kept and
    /// every page says so, so a damaged archive still gets its workpaper and nothing fails silently.
    pub(crate) async fn rows_or_failed(&self, sql: &str) -> Vec<Vec<String>> {
        match self.rows(sql).await {
            Ok(rows) => rows,
            Err(e) => {
                self.failed(format!("{e} (query: {sql})"));
                Vec::new()
            }
        }
    }

    pub(crate) fn failed(&self, what: String) {
        tracing::warn!(failure = %what, "a part of the workpaper could not be read from the archive");
        if let Ok(mut failures) = self.failures.lock() {
            failures.push(what);
        }
    }

    /// The banner naming what could not be read, when anything could not.
    pub(crate) fn failures_banner(&self) -> String {
        let failures = self.failures.lock().map(|f| f.clone()).unwrap_or_default();
        if failures.is_empty() {
            return String::new();
        }
        let mut out = format!(
            "<div class=\"criterion\" style=\"border-left-color: var(--bad)\"><p class=\"plain\"><span class=\"badge bad\">incomplete</span> {} part(s) of this workpaper could not be read from the archive (see the integrity section: a damaged or edited file):</p><ul>",
            failures.len()
        );
        for f in failures.iter().take(20) {
            let _ = write!(out, "<li><code>{}</code></li>", esc(f));
        }
        out + "</ul></div>\n"
    }

    /// Runs `sql`, renders its rows under `headers`, and prints the command that reproduces them.
    pub(crate) async fn shown(
        &self,
        id: &str,
        headers: &[&str],
        numeric: &[bool],
        sql: &str,
    ) -> Result<(String, Vec<Vec<String>>)> {
        let command = html::query_command(&format!("{id}-sql"), &self.options.evidence, sql);
        match self.rows(sql).await {
            Ok(rows) => Ok((table(id, headers, &rows, numeric) + &command, rows)),
            Err(e) => {
                let message = e.to_string();
                self.failed(format!("{message} (query: {sql})"));
                let html = format!("<p><span class=\"badge bad\">query failed</span> {}</p>\n{command}", esc(&message));
                Ok((html, Vec::new()))
            }
        }
    }

    /// [`Context::shown`], appended to `out`; returns the rows.
    pub(crate) async fn show(
        &self,
        out: &mut String,
        id: &str,
        headers: &[&str],
        numeric: &[bool],
        sql: &str,
    ) -> Result<Vec<Vec<String>>> {
        let (html, rows) = self.shown(id, headers, numeric, sql).await?;
        out.push_str(&html);
        Ok(rows)
    }

    pub(crate) fn header(&self, title: &str, subtitle: &str, crumbs: bool) -> String {
        let o = self.options;
        let verify = if self.verify.ok() {
            "<span class=\"badge ok\">verified</span>"
        } else {
            "<span class=\"badge bad\">verify found problems</span>"
        };
        let keys = if o.public_keys.is_empty() {
            "none given: signatures not checked".to_string()
        } else {
            o.public_keys.iter().map(|k| k.id().to_string()).collect::<Vec<_>>().join(", ")
        };
        format!(
            "{}<header class=\"page\"><div><h1>{}</h1><div class=\"sub\">{}</div></div>\n<table class=\"meta\">\
             <tr><th>period</th><td>{} to {} (end exclusive, UTC)</td></tr>\
             <tr><th>archive</th><td>{}</td></tr>\
             <tr><th>integrity</th><td>{verify}</td></tr>\
             <tr><th>public key id</th><td>{}</td></tr>\
             <tr><th>sample seed</th><td>{}</td></tr>\
             <tr><th>prepared</th><td>{} by vigil {}</td></tr></table></header>\n",
            if crumbs { "<nav class=\"crumbs\"><a href=\"index.html\">Workpaper index</a></nav>\n" } else { "" },
            esc(title),
            esc(subtitle),
            esc(&short_time(&o.from)),
            esc(&short_time(&o.to)),
            esc(self.archive.location()),
            esc(&keys),
            esc(&o.seed),
            esc(&self.generated),
            env!("CARGO_PKG_VERSION"),
        )
    }
}

/// An RFC 3339 time for people: the date alone at midnight, else date and minutes.
pub(crate) fn short_time(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) if t.timestamp_micros() % 86_400_000_000 == 0 => t.format("%Y-%m-%d").to_string(),
        Ok(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => text.to_string(),
    }
}

pub(crate) fn format_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M").to_string())
}

pub(crate) fn write_file(path: &Path, text: &[u8]) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Output { what: path.display().to_string(), source })
}

/// Pivots `(series, month, n)` rows into a chart over the period's months.
pub(crate) fn chart(title: &str, months: &[String], rows: &[Vec<String>]) -> String {
    let series: Vec<String> = rows.iter().map(|r| r[0].clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut values = vec![vec![0u64; months.len()]; series.len()];
    for row in rows {
        let (Some(s), Some(m)) = (series.iter().position(|x| *x == row[0]), months.iter().position(|x| *x == row[1]))
        else {
            continue;
        };
        values[s][m] += row[2].parse::<u64>().unwrap_or(0);
    }
    format!(
        "<figure class=\"chart\">{}<figcaption>{}</figcaption></figure>\n",
        svg::stacked_bars(&svg::Stacked { title, categories: months, series: &series, values: &values }),
        esc(title)
    )
}

//! `vigil report`: the auditor's workpaper, one self-contained HTML page per SOC 2 control plus an index,
//! written from the evidence archive alone.
//!
//! ```text
//!  archive ──> rules (texts of every pack that ran)   ─┐
//!              events, dead letters (the population)  ├─> DIR/index.html, DIR/CC7.2.html, ...
//!              alerts + triage (the response)         │   DIR/CC7.2/sample.csv  (sample + blank tester columns)
//!              manifests, digests (`vigil verify`)    ─┘   DIR/CC7.2/sample/     (the `vigil sample` package)
//! ```
//!
//! Per control: the criterion in plain words and in the AICPA's text ([`tsc`]); the rules mapped to it
//! with the text of each version from the archive and when it was in force; the population (events per
//! source per month as chart and table, dead letters per reason, completeness breaks, silence spells,
//! late events); alerts per rule per month and their triage (status, time to triage, unresolved past a
//! limit); a reproducible sample drawn by [`vigil_audit::sample::draw`] (the draw `vigil sample` makes)
//! with each record's raw bytes, provenance, manifest entry and the signed digest covering it; the
//! `vigil verify` result for the period and the public key ids it used.
//!
//! **Numbers cannot drift from the archive:** every table is the result of one SQL query, printed under
//! it as the `vigil query` command that gives the same rows; the page runs exactly that text. Numbers
//! that come from the manifests and digests (completeness breaks, verify) print the `vigil verify` command.
//!
//! **Safe to open:** record content is attacker-controlled, so every value is escaped ([`html::esc`]);
//! pages carry a Content-Security-Policy that forbids scripts and loads, use no JavaScript, no external
//! file and no web font, draw charts as inline SVG ([`svg`]), and print to A4 PDF cleanly.

mod error;
pub mod html;
pub mod svg;
pub mod tsc;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use vigil_audit::sample::{Population, SampleRequest};
use vigil_audit::triage::{LATEST_TRIAGE, quote};
use vigil_evidence::Archive;
use vigil_evidence::digest::Digest;
use vigil_evidence::keys::PublicKey;
use vigil_evidence::verify::{VerifyOptions, VerifyReport};

pub use error::{Error, Result};
use html::{esc, table};

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Period start, inclusive (RFC 3339, UTC, as `vigil sample` takes it).
    pub from: String,
    /// Period end, exclusive.
    pub to: String,
    /// Controls (criteria such as `CC6.1`); empty: every criterion a rule in the archive serves.
    pub controls: Vec<String>,
    /// Output folder (created).
    pub out: PathBuf,
    /// Public keys `verify` checks the digests with.
    pub public_keys: Vec<PublicKey>,
    /// The seed of the samples (printed; the same seed draws the same records).
    pub seed: String,
    /// Records drawn per control.
    pub sample_size: usize,
    /// An alert not resolved this many days after it was raised (by the period's end) is listed.
    pub unresolved_days: u32,
    /// A source without events for this many hours is a silence spell.
    pub silence_hours: u32,
    /// The archive location as printed in the commands (`--evidence`).
    pub evidence: String,
    /// The public key files as printed in the `verify` command.
    pub public_key_files: Vec<String>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// `DIR/index.html`.
    pub index: PathBuf,
    /// One per control page.
    pub controls: Vec<ControlSummary>,
    /// The verify result for the period.
    pub verify_ok: bool,
    /// Whether verify checked signatures with the keys given.
    pub authenticated: bool,
    /// Parts that could not be read from the archive (each is named on the pages too).
    pub failures: Vec<String>,
}

/// One control page.
#[derive(Debug, Clone)]
pub struct ControlSummary {
    /// The criterion.
    pub id: String,
    /// Its page.
    pub page: PathBuf,
    /// Rule versions mapped to it.
    pub rule_versions: usize,
    /// Alerts in the period.
    pub alerts: u64,
    /// Records sampled.
    pub sampled: usize,
}

/// Cell text of every row of `batches` (nulls empty).
fn cells(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>> {
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
fn micros(text: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .map_err(|_| Error::Invalid(format!("`{text}` is not an RFC 3339 time")))
}

/// Every month (`YYYY-MM`) that overlaps `[from, to)`.
fn months(from_us: i64, to_us: i64) -> Vec<String> {
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
struct Context<'a> {
    ctx: SessionContext,
    archive: &'a Archive,
    options: &'a ReportOptions,
    period: String,
    months: Vec<String>,
    verify: VerifyReport,
    /// Pack hash -> (earliest, latest) event time of the ranges archived while it ran.
    pack_ranges: BTreeMap<String, (i64, i64)>,
    digests: Vec<Digest>,
    generated: String,
    /// What could not be read (queries that failed), shown on every page.
    failures: std::sync::Mutex<Vec<String>>,
}

impl Context<'_> {
    async fn rows(&self, sql: &str) -> Result<Vec<Vec<String>>> {
        cells(&vigil_audit::query::query(&self.ctx, sql).await?)
    }

    /// [`Context::rows`], or no rows when the query fails (a damaged file, say): the failure is kept and
    /// every page says so, so a damaged archive still gets its workpaper and nothing fails silently.
    async fn rows_or_failed(&self, sql: &str) -> Vec<Vec<String>> {
        match self.rows(sql).await {
            Ok(rows) => rows,
            Err(e) => {
                self.failed(format!("{e} (query: {sql})"));
                Vec::new()
            }
        }
    }

    fn failed(&self, what: String) {
        tracing::warn!(failure = %what, "a part of the workpaper could not be read from the archive");
        if let Ok(mut failures) = self.failures.lock() {
            failures.push(what);
        }
    }

    /// The banner naming what could not be read, when anything could not.
    fn failures_banner(&self) -> String {
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
    async fn shown(
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

    fn header(&self, title: &str, subtitle: &str, crumbs: bool) -> String {
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

/// Writes the workpaper (see the module docs).
pub async fn write(archive: &Archive, options: &ReportOptions) -> Result<ReportSummary> {
    let (from_us, to_us) = (micros(&options.from)?, micros(&options.to)?);
    if from_us >= to_us {
        return Err(Error::Invalid("--from must be before --to".into()));
    }
    if options.sample_size == 0 {
        return Err(Error::Invalid("--sample-size must be at least 1".into()));
    }
    std::fs::create_dir_all(&options.out)
        .map_err(|source| Error::Output { what: options.out.display().to_string(), source })?;
    let session = vigil_audit::query::archive_session(archive).await?;
    if let Some(first) = session.left_out.first() {
        tracing::warn!(files = session.left_out.len(), first = %first, "data files no manifest entry lists are left out");
    }
    let verify_options = VerifyOptions {
        public_keys: options.public_keys.clone(),
        from_us: Some(from_us),
        to_us: Some(to_us),
        ..VerifyOptions::default()
    };
    let verify = vigil_evidence::verify::verify(archive, &verify_options).await?;
    let pack_ranges = pack_ranges(archive).await?;
    let digests = read_digests(archive).await?;
    let context = Context {
        ctx: session.ctx,
        archive,
        options,
        // The `date` bounds say the same as the time bounds, in the partition column, so whole folders
        // outside the period are skipped without opening a file.
        period: format!(
            "time >= TIMESTAMP {} AND time < TIMESTAMP {} AND date >= {} AND date <= {}",
            quote(&options.from),
            quote(&options.to),
            quote(options.from.get(..10).unwrap_or("0000-00-00")),
            quote(options.to.get(..10).unwrap_or("9999-99-99"))
        ),
        months: months(from_us, to_us),
        verify,
        pack_ranges,
        digests,
        generated: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        failures: std::sync::Mutex::new(Vec::new()),
    };
    let controls = if options.controls.is_empty() {
        let sql = "SELECT DISTINCT c FROM (SELECT unnest(criteria) AS c FROM rules) ORDER BY c";
        context.rows(sql).await?.into_iter().filter_map(|r| r.into_iter().next()).collect()
    } else {
        options.controls.clone()
    };
    let mut controls: Vec<String> = controls
        .into_iter()
        .filter(|c| {
            let ok = tsc::is_criterion_id(c);
            if !ok {
                tracing::warn!(criterion = %c, "not a criterion id (such as CC6.1): left out of the report");
            }
            ok
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    controls.sort_by_key(|c| criterion_order(c));
    if controls.is_empty() {
        return Err(Error::Invalid(
            "no control to report on: the archive holds no rule texts (run `vigil run` with this version first) \
             and no --control was given"
                .into(),
        ));
    }
    let population = population_section(&context).await?;
    let mut summaries = Vec::new();
    for control in &controls {
        summaries.push(control_page(&context, control, &population).await?);
    }
    let index = index_page(&context, &summaries).await?;
    Ok(ReportSummary {
        index,
        controls: summaries,
        verify_ok: context.verify.ok(),
        authenticated: context.verify.authenticated,
        failures: context.failures.lock().map(|f| f.clone()).unwrap_or_default(),
    })
}

/// `CC6.10` after `CC6.9`: letters, then each number.
fn criterion_order(id: &str) -> (String, u32, u32) {
    let letters: String = id.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    let rest = &id[letters.len()..];
    let (a, b) = rest.split_once('.').unwrap_or((rest, "0"));
    (letters, a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// For each rule pack, the event time span of the ranges archived while it ran (from the manifests).
async fn pack_ranges(archive: &Archive) -> Result<BTreeMap<String, (i64, i64)>> {
    let parse = |t: &Option<String>| {
        t.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp_micros())
    };
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (source, partition) in archive.chains().await? {
        if source.starts_with('@') {
            continue;
        }
        for entry in archive.chain(&source, partition).await? {
            if !entry.has_data() || entry.rule_pack_hash.is_empty() {
                continue;
            }
            for file in entry.files.iter().filter(|f| f.kind == "events") {
                if let (Some(min), Some(max)) = (parse(&file.time_min), parse(&file.time_max)) {
                    let span = out.entry(entry.rule_pack_hash.clone()).or_insert((min, max));
                    *span = (span.0.min(min), span.1.max(max));
                }
            }
        }
    }
    Ok(out)
}

/// Every readable digest of the archive, by seq.
async fn read_digests(archive: &Archive) -> Result<Vec<Digest>> {
    let dir = archive.root().clone().join("digests");
    let metas: Vec<object_store::ObjectMeta> = archive
        .object_store()
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|source| vigil_evidence::Error::Store { operation: "list", path: dir.to_string(), source })?;
    let mut out = Vec::new();
    for meta in metas {
        let relative = vigil_evidence::layout::relative(archive.root(), &meta.location);
        if let Some(bytes) = archive.get_object(&relative).await?
            && let Ok(digest) = serde_json::from_slice::<Digest>(&bytes)
        {
            out.push(digest);
        }
    }
    out.sort_by_key(|d| d.seq);
    Ok(out)
}

/// An RFC 3339 time for people: the date alone at midnight, else date and minutes.
fn short_time(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) if t.timestamp_micros() % 86_400_000_000 == 0 => t.format("%Y-%m-%d").to_string(),
        Ok(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => text.to_string(),
    }
}

fn format_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M").to_string())
}

fn write_file(path: &Path, text: &[u8]) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Output { what: path.display().to_string(), source })
}

/// Pivots `(series, month, n)` rows into a chart over the period's months.
fn chart(title: &str, months: &[String], rows: &[Vec<String>]) -> String {
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

/// The population section: the same on every control page (the events the control's rules ran over).
async fn population_section(c: &Context<'_>) -> Result<(String, String)> {
    let period = &c.period;
    let mut out = String::from(
        "<h2 id=\"population\">Population</h2>\n<p class=\"note\">Every record the archive holds for the period: the population the rules ran over and an auditor samples from. Counts read only files the manifest chains list.</p>\n",
    );
    let (html, total) = c
        .shown(
            "q-population-total",
            &["events", "sources", "first event", "last event"],
            &[true, true, false, false],
            &format!(
                "SELECT count(*) AS events, count(DISTINCT source) AS sources, to_char(min(time), '%Y-%m-%d %H:%M') AS first_event, to_char(max(time), '%Y-%m-%d %H:%M') AS last_event FROM events WHERE {period}"
            ),
        )
        .await?;
    out += &html;
    out += "<h3>Events per source per month</h3>\n";
    let sql = format!(
        "SELECT source, substr(date, 1, 7) AS month, count(*) AS events FROM events WHERE {period} GROUP BY source, substr(date, 1, 7) ORDER BY source, month"
    );
    let rows = c.rows_or_failed(&sql).await;
    out += &chart("Events per month, by source", &c.months, &rows);
    out += &table("q-population-months", &["source", "month", "events"], &rows, &[false, false, true]);
    out += &html::query_command("q-population-months-sql", &c.options.evidence, &sql);

    out += "<h3>Dead letters per reason</h3>\n<p class=\"note\">Records that could not be normalized are kept whole as dead letters. Counted here: those read in the period, and those among the records that delivered the period's events (same source partition, between its first and last offset in the period).</p>\n";
    let (html, _) = c
        .shown(
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
    out += &html;

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
    let (html, _) = c
        .shown(
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
    out += &html;

    out += "<h3>Late events</h3>\n<p class=\"note\">Events vigil read more than 24 hours after they happened (ingest time minus event time): replays, backfills, or a delivery backlog.</p>\n";
    let (html, _) = c
        .shown(
            "q-late",
            &["source", "late events", "latest delay (hours)"],
            &[false, true, true],
            &format!(
                "SELECT source, count(*) AS late_events, max(CAST(ingest_time AS BIGINT) - CAST(time AS BIGINT)) / 3600000000 AS max_delay_hours FROM events \
                 WHERE {period} AND CAST(ingest_time AS BIGINT) - CAST(time AS BIGINT) > 86400000000 GROUP BY source ORDER BY source"
            ),
        )
        .await?;
    out += &html;
    let events = total.first().and_then(|r| r.first()).cloned().unwrap_or_default();
    Ok((out, events))
}

fn verify_command(c: &Context<'_>) -> String {
    let mut cmd = format!(
        "vigil verify --evidence {} --from {} --to {}",
        html::shell_word(&c.options.evidence),
        c.options.from,
        c.options.to
    );
    for key in &c.options.public_key_files {
        let _ = write!(cmd, " --public-key {}", html::shell_word(key));
    }
    cmd
}

/// One rule version of a control, from the `rules` table.
#[derive(Debug, Default)]
struct Version {
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

async fn control_page(c: &Context<'_>, control: &str, population: &(String, String)) -> Result<ControlSummary> {
    let o = c.options;
    let crit = format!("array_has(criteria, {})", quote(control));
    let period = &c.period;
    let known = tsc::criterion(control);
    let title = match known {
        Some(k) => format!("{control} {}", k.name),
        None => control.to_string(),
    };
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

    let glance_at = body.len();
    // Rules and their versions.
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

    body += &population.0;

    // Alerts and triage.
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
    body += &per_version_html;
    body += "<h3>Triage status</h3>\n<p class=\"note\">The latest triage record of each alert (<code>vigil alerts triage</code>); an alert never triaged is open.</p>\n";
    let (html, _) = c
        .shown(
            "q-triage-status",
            &["status", "alerts"],
            &[false, true],
            &format!(
                "WITH {LATEST_TRIAGE} SELECT COALESCE(l.status, 'open') AS latest_status, count(*) AS alerts FROM alerts a LEFT JOIN latest l ON l.alert_id = a.alert_id AND l.n = 1 WHERE {} AND {} GROUP BY COALESCE(l.status, 'open') ORDER BY latest_status",
                crit.replace("criteria", "a.criteria"),
                period.replace("time", "a.time")
            ),
        )
        .await?;
    body += &html;
    body += "<h3>Triage records</h3>\n<p class=\"note\">Every decision recorded about the period's alerts of this control, oldest first (at most 200 listed): appended to the archive's <code>triage</code> table, never edited.</p>\n";
    let (html, _) = c
        .shown(
            "q-triage-records",
            &["recorded", "alert", "rule", "status", "by", "ticket", "note"],
            &[false; 7],
            &format!(
                "SELECT to_char(t.time, '%Y-%m-%d %H:%M:%S') AS recorded, t.alert_id, t.rule_id, t.status, t.triaged_by, t.ticket, t.note FROM triage t JOIN alerts a ON a.alert_id = t.alert_id WHERE {} AND {} ORDER BY t.time, t.triage_id LIMIT 200",
                crit.replace("criteria", "a.criteria"),
                period.replace("time", "a.time")
            ),
        )
        .await?;
    body += &html;
    body += "<h3>Time to triage</h3>\n<p class=\"note\">From the alert to its first triage record.</p>\n";
    let (html, _) = c
        .shown(
            "q-time-to-triage",
            &["alerts triaged", "median hours", "mean hours", "longest hours"],
            &[true, true, true, true],
            &format!(
                "WITH first AS (SELECT alert_id, min(time) AS t FROM triage GROUP BY alert_id), d AS (SELECT (CAST(f.t AS BIGINT) - CAST(a.time AS BIGINT)) / 3600000000.0 AS h FROM alerts a JOIN first f ON f.alert_id = a.alert_id WHERE {} AND {}) \
                 SELECT count(*) AS triaged, CAST(round(median(h), 1) AS VARCHAR) AS median_hours, CAST(round(avg(h), 1) AS VARCHAR) AS mean_hours, CAST(round(max(h), 1) AS VARCHAR) AS max_hours FROM d",
                crit.replace("criteria", "a.criteria"),
                period.replace("time", "a.time")
            ),
        )
        .await?;
    body += &html;
    let _ = write!(
        body,
        "<h3>Unresolved after {} days</h3>\n<p class=\"note\">Alerts raised more than {} days before the period's end whose latest status is neither resolved nor false positive (oldest first, at most 50 listed).</p>\n",
        o.unresolved_days, o.unresolved_days
    );
    let unresolved_where = format!(
        "{} AND {} AND COALESCE(l.status, 'open') NOT IN ('resolved', 'false_positive') AND CAST(a.time AS BIGINT) < CAST(TIMESTAMP {} AS BIGINT) - {}",
        crit.replace("criteria", "a.criteria"),
        period.replace("time", "a.time"),
        quote(&o.to),
        i64::from(o.unresolved_days) * 86_400_000_000
    );
    let (html, unresolved) = c
        .shown(
            "q-unresolved-count",
            &["unresolved alerts"],
            &[true],
            &format!("WITH {LATEST_TRIAGE} SELECT count(*) AS unresolved FROM alerts a LEFT JOIN latest l ON l.alert_id = a.alert_id AND l.n = 1 WHERE {unresolved_where}"),
        )
        .await?;
    body += &html;
    let (html, _) = c
        .shown(
            "q-unresolved",
            &["alert", "rule", "raised", "status", "triaged by", "ticket"],
            &[false; 6],
            &format!(
                "WITH {LATEST_TRIAGE} SELECT a.alert_id, a.rule_id, to_char(a.time, '%Y-%m-%d %H:%M') AS raised, COALESCE(l.status, 'open') AS status, l.triaged_by, l.ticket FROM alerts a LEFT JOIN latest l ON l.alert_id = a.alert_id AND l.n = 1 WHERE {unresolved_where} ORDER BY a.time, a.alert_id LIMIT 50"
            ),
        )
        .await?;
    body += &html;

    // The sample.
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
    body += &sample_html;

    // Verify, then the rule texts.
    body += &verify_section(c);
    body += "<h2 id=\"rule-texts\">Appendix: the text of each rule version</h2>\n";
    body += &cards;
    let unresolved = unresolved.first().and_then(|r| r.first()).cloned().unwrap_or_default();
    let glance = format!(
        "<h2 id=\"glance\">At a glance</h2>\n<div class=\"kpis\">\
         <div class=\"kpi\" data-from=\"q-rule-versions\"><div class=\"v\">{}</div><div class=\"k\">rule versions mapped</div></div>\
         <div class=\"kpi\" data-from=\"q-population-total\"><div class=\"v\">{}</div><div class=\"k\">events in the population</div></div>\
         <div class=\"kpi\" data-from=\"q-alerts-months\"><div class=\"v\">{total}</div><div class=\"k\">alerts raised</div></div>\
         <div class=\"kpi\" data-from=\"q-unresolved-count\"><div class=\"v\">{}</div><div class=\"k\">unresolved after {} days</div></div>\
         <div class=\"kpi\" data-from=\"sample\"><div class=\"v\">{sampled}</div><div class=\"k\">alerts sampled (seed {})</div></div>\
         <div class=\"kpi\" data-from=\"verify\"><div class=\"v\">{}</div><div class=\"k\">archive integrity</div></div></div>\n\
         <p class=\"note\">Each figure is the total of a table below, which prints the query it comes from.</p>\n",
        ordered.len(),
        esc(&population.1),
        esc(&unresolved),
        o.unresolved_days,
        esc(&o.seed),
        if c.verify.ok() { "intact" } else { "problems" },
    );
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
    Ok(ControlSummary { id: control.to_string(), page: path, rule_versions: ordered.len(), alerts: total, sampled })
}

/// A column of `batch` as text per row.
fn column_text(batch: &RecordBatch, name: &str) -> Vec<String> {
    let options = FormatOptions::default().with_null("");
    let Some(column) = batch.column_by_name(name) else { return vec![String::new(); batch.num_rows()] };
    match ArrayFormatter::try_new(column.as_ref(), &options) {
        Ok(f) => (0..batch.num_rows()).map(|i| f.value(i).to_string()).collect(),
        Err(_) => vec![String::new(); batch.num_rows()],
    }
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let Ok(file) = std::fs::File::open(path) else { return Vec::new() };
    let Ok(builder) = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file) else {
        return Vec::new();
    };
    builder.build().map(|r| r.filter_map(|b| b.ok()).collect()).unwrap_or_default()
}

/// Raw bytes as text for the page: lossy UTF-8, at most `max` characters.
fn raw_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() <= max {
        text.into_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}\n… ({} bytes in all: the whole record is in sample/source_events.parquet)", bytes.len())
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// One event behind a sampled alert.
struct SampledEvent {
    raw: Vec<u8>,
    source: String,
    time: String,
    ingest_source: String,
    partition: String,
    offset: String,
}

async fn sample_section(
    c: &Context<'_>,
    control: &str,
    drawn: &vigil_audit::sample::PopulationRecord,
    folder: &Path,
) -> Result<(String, usize)> {
    let o = c.options;
    let mut out = format!(
        "<h2 id=\"sample\">Sample</h2>\n<p>Population: {} ({} record(s) in the period; SHA-256 of the sorted ids <code>{}</code>). \
         Seed <strong>{}</strong>: each alert is ranked by SHA-256(\"seed:alert_id\") and the {} lowest ranks are drawn, so anyone can \
         recompute the draw. Each item shows the events the alert was raised on, with their raw bytes as archived, where they were read \
         (source, partition, offset), the manifest entry that lists their file, and the signed digest that covers that entry.</p>\n",
        esc(&drawn.definition),
        drawn.count,
        esc(&drawn.population_sha256),
        esc(&drawn.seed),
        drawn.size
    );
    out += &html::command(
        "reproduce with",
        &format!(
            "vigil sample --evidence {} --criterion {} --from {} --to {} --size {} --seed {} --out DIR",
            html::shell_word(&o.evidence),
            control,
            o.from,
            o.to,
            o.size_text(),
            html::shell_word(&o.seed)
        ),
    );
    let sample_dir = folder.join("sample");
    let records = read_parquet(&sample_dir.join("records.parquet"));
    let events = read_parquet(&sample_dir.join("source_events.parquet"));
    let provenance: Vec<serde_json::Value> = std::fs::read(sample_dir.join("provenance.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    // alert id -> (rule, rule hash, time, event ids)
    let mut alerts: BTreeMap<String, (String, String, String, Vec<String>)> = BTreeMap::new();
    for batch in &records {
        let (ids, rules, hashes, times) = (
            column_text(batch, "alert_id"),
            column_text(batch, "rule_id"),
            column_text(batch, "rule_hash"),
            column_text(batch, "time"),
        );
        let lists = batch.column_by_name("event_ids").and_then(|c| c.as_list_opt::<i32>().cloned());
        for i in 0..batch.num_rows() {
            let events: Vec<String> = lists
                .as_ref()
                .map(|l| {
                    let v = l.value(i);
                    v.as_string_opt::<i32>()
                        .map(|s| (0..s.len()).map(|j| s.value(j).to_string()).collect())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            alerts.insert(ids[i].clone(), (rules[i].clone(), hashes[i].clone(), times[i].clone(), events));
        }
    }
    let mut by_event: BTreeMap<String, SampledEvent> = BTreeMap::new();
    for batch in &events {
        let ids = column_text(batch, "event_id");
        let raw = batch.column_by_name("raw").and_then(|c| c.as_binary_opt::<i32>().cloned());
        let (sources, times, ingest, partitions, offsets) = (
            column_text(batch, "source"),
            column_text(batch, "time"),
            column_text(batch, "ingest_source"),
            column_text(batch, "ingest_partition"),
            column_text(batch, "ingest_offset"),
        );
        for i in 0..batch.num_rows() {
            by_event.insert(
                ids[i].clone(),
                SampledEvent {
                    raw: raw.as_ref().map(|r| r.value(i).to_vec()).unwrap_or_default(),
                    source: sources[i].clone(),
                    time: times[i].clone(),
                    ingest_source: ingest[i].clone(),
                    partition: partitions[i].clone(),
                    offset: offsets[i].clone(),
                },
            );
        }
    }
    let ids: Vec<String> = drawn.drawn.iter().map(|d| d.id.clone()).collect();
    let statuses: BTreeMap<String, (String, String, String)> = if ids.is_empty() {
        BTreeMap::new()
    } else {
        let list = ids.iter().map(|i| quote(i)).collect::<Vec<_>>().join(",");
        c.rows_or_failed(&format!(
            "WITH {LATEST_TRIAGE} SELECT alert_id, status, triaged_by, COALESCE(ticket, '') FROM latest WHERE n = 1 AND alert_id IN ({list})"
        ))
        .await
        .into_iter()
        .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone(), r[3].clone())))
        .collect()
    };
    let mut csv = String::from(
        "item,alert_id,rule_id,rule_hash,alert_time,triage_status,triaged_by,ticket,event_id,source,event_time,ingest_source,ingest_partition,ingest_offset,manifest_entry,entry_hash,digest_seq,digest_key_id,tested_by,conclusion,exception\n",
    );
    let mut items = String::new();
    let mut summary_rows = Vec::new();
    for (n, d) in drawn.drawn.iter().enumerate() {
        let item = n + 1;
        let Some((rule, hash, time, event_ids)) = alerts.get(&d.id) else { continue };
        let (status, by, ticket) =
            statuses.get(&d.id).cloned().unwrap_or_else(|| ("open".into(), String::new(), String::new()));
        summary_rows.push(vec![
            item.to_string(),
            d.id.clone(),
            rule.clone(),
            time.clone(),
            status.clone(),
            by.clone(),
            ticket.clone(),
        ]);
        let _ = writeln!(
            items,
            "<div class=\"item\" data-alert=\"{}\"><div class=\"head\">Item {item}: alert <code>{}</code></div><div class=\"body\"><dl class=\"kv\">\
             rule <strong>{}</strong> (hash <code>{}</code>) · raised {} · triage: <strong>{}</strong>{}{}</dl>",
            esc(&d.id),
            esc(&d.id),
            esc(rule),
            esc(hash),
            esc(time),
            esc(&status),
            if by.is_empty() { String::new() } else { format!(" by {}", esc(&by)) },
            if ticket.is_empty() { String::new() } else { format!(" ({})", esc(&ticket)) },
        );
        for event_id in event_ids.iter().take(5) {
            let event = by_event.get(event_id);
            let prov = provenance.iter().find(|p| {
                p.get("id").and_then(|v| v.as_str()) == Some(d.id.as_str())
                    && p.get("event_id").and_then(|v| v.as_str()) == Some(event_id.as_str())
            });
            let text = |key: &str| {
                prov.and_then(|p| p.get(key))
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .unwrap_or_default()
            };
            let (entry, entry_hash, seq) =
                (text("manifest_entry"), text("entry_hash"), prov.and_then(|p| p.get("seq")).and_then(|v| v.as_u64()));
            let files: Vec<String> = prov
                .and_then(|p| p.get("files"))
                .and_then(|f| f.as_array())
                .map(|f| {
                    f.iter()
                        .filter_map(|pair| {
                            let pair = pair.as_array()?;
                            Some(format!("{} (SHA-256 {})", pair.first()?.as_str()?, pair.get(1)?.as_str()?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            // The file that holds the event: its entry's events file of the event's source, date and hour.
            let folder = event
                .filter(|e| e.time.len() >= 13)
                .map(|e| format!("events/source={}/date={}/hour={}/", e.source, &e.time[..10], &e.time[11..13]));
            let holding: Vec<&String> =
                files.iter().filter(|f| folder.as_ref().is_some_and(|d| f.starts_with(d.as_str()))).collect();
            let files_html = if holding.len() == 1 && files.len() > 1 {
                format!("{} (and {} other file(s) of the entry)", esc(holding[0]), files.len() - 1)
            } else {
                files.iter().map(|f| esc(f)).collect::<Vec<_>>().join("<br>")
            };
            let digest = event.and_then(|e| {
                let partition: i32 = e.partition.parse().ok()?;
                let seq = seq?;
                c.digests.iter().find(|d| {
                    d.heads
                        .iter()
                        .any(|h| h.ingest_source == e.ingest_source && h.partition == partition && h.seq >= seq)
                })
            });
            let digest_text = match digest {
                Some(d) => {
                    let checked = match o.public_keys.iter().find(|k| k.id() == d.key_id) {
                        Some(k) if k.verifies(&d.signed_bytes(), &d.signature) => "signature verified with the public key given",
                        Some(_) => "SIGNATURE DOES NOT VERIFY",
                        None if o.public_keys.is_empty() => "signature not checked (no --public-key)",
                        None => "signed by a key that was not given",
                    };
                    format!("digests/{:012}.json, signed {} with key {} ({checked})", d.seq, d.written_at, d.key_id)
                }
                None => "no signed digest covers this entry (the archive is not signed, or the entry is newer than its last digest)".into(),
            };
            let _ = write!(
                items,
                "<table class=\"data prov\"><tbody>\
                 <tr><th>event</th><td><code>{}</code> ({}, {})</td></tr>\
                 <tr><th>read from</th><td>{} partition {} offset {}</td></tr>\
                 <tr><th>manifest entry</th><td>{} (entry hash <code>{}</code>)</td></tr>\
                 <tr><th>file holding it</th><td>{}</td></tr>\
                 <tr><th>signed digest</th><td>{}</td></tr></tbody></table>\n<pre class=\"raw\">{}</pre>\n",
                esc(event_id),
                esc(event.map_or("", |e| e.source.as_str())),
                esc(event.map_or("", |e| e.time.as_str())),
                esc(event.map_or("?", |e| e.ingest_source.as_str())),
                esc(event.map_or("?", |e| e.partition.as_str())),
                esc(event.map_or("?", |e| e.offset.as_str())),
                esc(&entry),
                esc(&entry_hash),
                files_html,
                esc(&digest_text),
                esc(&event.map_or_else(|| "(the event is not in the archive)".to_string(), |e| raw_text(&e.raw, 3000))),
            );
            let row = [
                item.to_string(),
                d.id.clone(),
                rule.clone(),
                hash.clone(),
                time.clone(),
                status.clone(),
                by.clone(),
                ticket.clone(),
                event_id.clone(),
                event.map_or_else(String::new, |e| e.source.clone()),
                event.map_or_else(String::new, |e| e.time.clone()),
                event.map_or_else(String::new, |e| e.ingest_source.clone()),
                event.map_or_else(String::new, |e| e.partition.clone()),
                event.map_or_else(String::new, |e| e.offset.clone()),
                entry.clone(),
                entry_hash.clone(),
                digest.map_or_else(String::new, |d| d.seq.to_string()),
                digest.map_or_else(String::new, |d| d.key_id.clone()),
                String::new(),
                String::new(),
                String::new(),
            ];
            csv += &row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
            csv.push('\n');
        }
        if event_ids.len() > 5 {
            let _ = write!(
                items,
                "<p class=\"note\">… and {} more event(s): all are in sample/source_events.parquet.</p>",
                event_ids.len() - 5
            );
        }
        items += "</div></div>\n";
    }
    std::fs::create_dir_all(folder).map_err(|source| Error::Output { what: folder.display().to_string(), source })?;
    write_file(&folder.join("sample.csv"), csv.as_bytes())?;
    out += "<h3>Sampled items and test results</h3>\n";
    out += "<table class=\"data\" data-sample=\"1\"><thead><tr><th class=\"n\">item</th><th>alert</th><th>rule</th><th>raised</th><th>triage</th><th>triaged by</th><th>ticket</th><th>tested by</th><th>conclusion</th><th>exception</th></tr></thead><tbody>\n";
    if summary_rows.is_empty() {
        out += "<tr><td class=\"empty\" colspan=\"10\">no alerts in the period: nothing to sample</td></tr>\n";
    }
    for r in &summary_rows {
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"tester\"></td><td class=\"tester\"></td><td class=\"tester\"></td></tr>",
            esc(&r[0]),
            esc(&r[1]),
            esc(&r[2]),
            esc(&r[3]),
            esc(&r[4]),
            esc(&r[5]),
            esc(&r[6])
        );
    }
    out += "</tbody></table>\n";
    let _ = writeln!(
        out,
        "<p>For the auditor's tools: <a href=\"{c}/sample.csv\">{c}/sample.csv</a> (one row per sampled event, with empty tested by, conclusion and exception columns). \
         The <code>vigil sample</code> package: <a href=\"{c}/sample/SUMMARY.txt\">SUMMARY.txt</a>, <a href=\"{c}/sample/population.json\">population.json</a>, \
         <a href=\"{c}/sample/provenance.json\">provenance.json</a>{}.</p>",
        if records.is_empty() {
            String::new()
        } else {
            format!(", <a href=\"{c}/sample/records.csv\">records.csv</a>", c = esc(control))
        },
        c = esc(control)
    );
    out += "<h3>Evidence of each item</h3>\n";
    out += &items;
    Ok((out, summary_rows.len()))
}

fn verify_section(c: &Context<'_>) -> String {
    let v = &c.verify;
    let mut out = String::from("<h2 id=\"verify\">Integrity of the archive for the period</h2>\n");
    let _ = writeln!(
        out,
        "<p>{} <code>vigil verify</code> checked {} chain(s), {} manifest entr(ies) and {} data file(s) ({} bytes, {} rows) of the period; {} signed digest(s); {}.</p>",
        if v.ok() {
            "<span class=\"badge ok\">intact</span>"
        } else {
            "<span class=\"badge bad\">problems found</span>"
        },
        v.chains,
        v.entries,
        v.files_checked,
        v.bytes_checked,
        v.rows_checked,
        v.digests,
        if v.authenticated {
            format!(
                "every digest is signed by a public key given ({})",
                c.options.public_keys.iter().map(|k| k.id().to_string()).collect::<Vec<_>>().join(", ")
            )
        } else {
            "signatures were not checked: give --public-key to prove who wrote the archive".to_string()
        }
    );
    if let Some(d) = &v.newest_digest {
        let _ = writeln!(
            out,
            "<p>Newest digest: <code>digests/{:012}.json</code>, signed {} by key <code>{}</code>, SHA-256 <code>{}</code>. Keep it: a later verify with <code>--since</code> proves nothing was cut after it.</p>",
            d.seq,
            esc(&d.written_at),
            esc(&d.key_id),
            esc(&d.sha256)
        );
    }
    let findings: Vec<Vec<String>> =
        v.findings.iter().map(|f| vec![f.kind.clone(), f.object.clone(), f.detail.clone()]).collect();
    out += "<h3>Findings</h3>\n";
    out += &table("verify-findings", &["kind", "object", "detail"], &findings, &[false, false, false]);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for w in &v.warnings {
        *kinds.entry(w.kind.as_str()).or_default() += 1;
    }
    let warnings: Vec<Vec<String>> = kinds.into_iter().map(|(k, n)| vec![k.to_string(), n.to_string()]).collect();
    out += "<h3>Warnings</h3>\n";
    out += &table("verify-warnings", &["kind", "count"], &warnings, &[false, true]);
    out += &html::command("reproduce with", &verify_command(c));
    out
}

async fn index_page(c: &Context<'_>, controls: &[ControlSummary]) -> Result<PathBuf> {
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

impl ReportOptions {
    fn size_text(&self) -> String {
        self.sample_size.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_cover_the_period() {
        let from = micros("2024-01-15T00:00:00Z").unwrap();
        let to = micros("2024-04-01T00:00:00Z").unwrap();
        assert_eq!(months(from, to), ["2024-01", "2024-02", "2024-03"]);
        assert!(criterion_order("CC6.10") > criterion_order("CC6.9"));
    }
}

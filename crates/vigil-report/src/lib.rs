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
//!
//! Read in this order: [`write`] (below) reads what every page shares (`context.rs`, `load.rs`), then
//! writes each control's page (`control.rs`, with the sections `population.rs`, `sample.rs`,
//! `integrity.rs`) and the index (`index.rs`); `html.rs` and `svg.rs` render, `tsc.rs` holds the criteria.

mod context;
mod control;
mod error;
pub mod html;
mod index;
mod integrity;
mod load;
mod population;
mod sample;
pub mod svg;
pub mod tsc;

use std::collections::BTreeSet;
use std::path::PathBuf;

use vigil_audit::triage::quote;
use vigil_evidence::Archive;
use vigil_evidence::keys::PublicKey;
use vigil_evidence::verify::VerifyOptions;

use context::{Context, micros, months};
pub use error::{Error, Result};

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
    let pack_ranges = load::pack_ranges(archive).await?;
    let digests = load::read_digests(archive).await?;
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
    let population = population::population_section(&context).await?;
    let mut summaries = Vec::new();
    for control in &controls {
        summaries.push(control::control_page(&context, control, &population).await?);
    }
    let index = index::index_page(&context, &summaries).await?;
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

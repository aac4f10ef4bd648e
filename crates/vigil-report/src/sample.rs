//! The sample section: the draw `vigil sample` makes, each item traced to its raw events, manifest entry
//! and signed digest, and `sample.csv` for the tester.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use vigil_audit::triage::{LATEST_TRIAGE, quote};

use crate::context::{Context, write_file};
use crate::html::{self, esc};
use crate::{Error, ReportOptions, Result};

/// A column of `batch` as text per row.
pub(crate) fn column_text(batch: &RecordBatch, name: &str) -> Vec<String> {
    let options = FormatOptions::default().with_null("");
    let Some(column) = batch.column_by_name(name) else { return vec![String::new(); batch.num_rows()] };
    match ArrayFormatter::try_new(column.as_ref(), &options) {
        Ok(f) => (0..batch.num_rows()).map(|i| f.value(i).to_string()).collect(),
        Err(_) => vec![String::new(); batch.num_rows()],
    }
}

pub(crate) fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let Ok(file) = std::fs::File::open(path) else { return Vec::new() };
    let Ok(builder) = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file) else {
        return Vec::new();
    };
    builder.build().map(|r| r.filter_map(|b| b.ok()).collect()).unwrap_or_default()
}

/// Raw bytes as text for the page: lossy UTF-8, at most `max` characters.
pub(crate) fn raw_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() <= max {
        text.into_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}\n… ({} bytes in all: the whole record is in sample/source_events.parquet)", bytes.len())
    }
}

pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// One event behind a sampled alert.
pub(crate) struct SampledEvent {
    raw: Vec<u8>,
    source: String,
    time: String,
    ingest_source: String,
    partition: String,
    offset: String,
}

pub(crate) async fn sample_section(
    c: &Context<'_>,
    control: &str,
    drawn: &vigil_audit::sample::PopulationRecord,
    folder: &Path,
) -> Result<(String, usize)> {
    let mut out = sample_intro(c, control, drawn);
    let sample_dir = folder.join("sample");
    let records = read_parquet(&sample_dir.join("records.parquet"));
    let events = read_parquet(&sample_dir.join("source_events.parquet"));
    let provenance: Vec<serde_json::Value> = std::fs::read(sample_dir.join("provenance.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let alerts = sampled_alerts(&records);
    let by_event = sampled_events(&events);
    let statuses = triage_statuses(c, drawn).await;
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
        // The columns of every CSV row of this item.
        let head = [
            item.to_string(),
            d.id.clone(),
            rule.clone(),
            hash.clone(),
            time.clone(),
            status.clone(),
            by.clone(),
            ticket.clone(),
        ];
        for event_id in event_ids.iter().take(5) {
            let event = by_event.get(event_id);
            let prov = provenance.iter().find(|p| {
                p.get("id").and_then(|v| v.as_str()) == Some(d.id.as_str())
                    && p.get("event_id").and_then(|v| v.as_str()) == Some(event_id.as_str())
            });
            let (html, row) = event_evidence(c, event_id, event, prov);
            items += &html;
            csv += &head.iter().chain(&row).map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
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
    out += &summary_table(&summary_rows);
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

/// The section's opening: the population, the seed and how the draw is made, and its command.
fn sample_intro(c: &Context<'_>, control: &str, drawn: &vigil_audit::sample::PopulationRecord) -> String {
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
    out
}

/// The sampled alerts (records.parquet): alert id -> (rule, rule hash, time, event ids).
fn sampled_alerts(records: &[RecordBatch]) -> BTreeMap<String, (String, String, String, Vec<String>)> {
    let mut alerts: BTreeMap<String, (String, String, String, Vec<String>)> = BTreeMap::new();
    for batch in records {
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
    alerts
}

/// The events behind the sampled alerts (source_events.parquet), by event id.
fn sampled_events(events: &[RecordBatch]) -> BTreeMap<String, SampledEvent> {
    let mut by_event: BTreeMap<String, SampledEvent> = BTreeMap::new();
    for batch in events {
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
    by_event
}

/// The latest triage of each sampled alert: alert id -> (status, by, ticket).
async fn triage_statuses(
    c: &Context<'_>,
    drawn: &vigil_audit::sample::PopulationRecord,
) -> BTreeMap<String, (String, String, String)> {
    let ids: Vec<String> = drawn.drawn.iter().map(|d| d.id.clone()).collect();
    if ids.is_empty() {
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
    }
}

/// One event of a sampled item: its provenance table and raw bytes (html), and the CSV columns after
/// the item's own.
fn event_evidence(
    c: &Context<'_>,
    event_id: &str,
    event: Option<&SampledEvent>,
    prov: Option<&serde_json::Value>,
) -> (String, Vec<String>) {
    let o = c.options;
    let mut items = String::new();
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
            d.heads.iter().any(|h| h.ingest_source == e.ingest_source && h.partition == partition && h.seq >= seq)
        })
    });
    let digest_text = match digest {
        Some(d) => {
            let checked = match o.public_keys.iter().find(|k| k.id() == d.key_id) {
                Some(k) if k.verifies(&d.signed_bytes(), &d.signature) => {
                    "signature verified with the public key given"
                }
                Some(_) => "SIGNATURE DOES NOT VERIFY",
                None if o.public_keys.is_empty() => "signature not checked (no --public-key)",
                None => "signed by a key that was not given",
            };
            format!("digests/{:012}.json, signed {} with key {} ({checked})", d.seq, d.written_at, d.key_id)
        }
        None => {
            "no signed digest covers this entry (the archive is not signed, or the entry is newer than its last digest)"
                .into()
        }
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
    let row = vec![
        event_id.to_string(),
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
    (items, row)
}

/// The sampled items with blank tester columns.
fn summary_table(summary_rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    out += "<table class=\"data\" data-sample=\"1\"><thead><tr><th class=\"n\">item</th><th>alert</th><th>rule</th><th>raised</th><th>triage</th><th>triaged by</th><th>ticket</th><th>tested by</th><th>conclusion</th><th>exception</th></tr></thead><tbody>\n";
    if summary_rows.is_empty() {
        out += "<tr><td class=\"empty\" colspan=\"10\">no alerts in the period: nothing to sample</td></tr>\n";
    }
    for r in summary_rows {
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
    out
}

impl ReportOptions {
    pub(crate) fn size_text(&self) -> String {
        self.sample_size.to_string()
    }
}

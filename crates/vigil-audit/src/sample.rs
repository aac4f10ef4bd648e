//! `vigil sample`: a reproducible evidence sample for an auditor.
//!
//! The population is every record of the period that matches the definition: alerts of one rule
//! (`--rule`), alerts serving one criterion (`--criterion`), or events matching a SQL predicate
//! (`--where`), read from the data files the archive's manifest chains list (a file added to the data
//! folders is left out, see [`crate::chained_store`]). Each record is ranked by SHA-256(`seed` `:` record
//! id) and the `size` lowest ranks are drawn, so the same archive, seed and population always give the same
//! records, and anyone can recompute the draw from `population.json`. The package written to the output folder:
//!
//! ```text
//! SUMMARY.txt          what was sampled, how, and how to check it
//! population.json      definition, period, count, seed, SHA-256 of the sorted population ids, the draw
//! records.parquet      the sampled records (canonical columns; events keep their original raw bytes)
//! records.csv          the same, raw bytes as text, lists (alert criteria, event ids) as JSON text
//! source_events.parquet  for alert samples: the events each sampled alert was raised on
//! provenance.json      per sampled record: the manifest entry (chain, seq, hash) and file that hold it
//! ```
//!
//! Nothing in the package depends on when it was drawn: drawing twice gives identical bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use datafusion::prelude::SessionContext;
use serde::Serialize;
use sha2::{Digest, Sha256};
use vigil_evidence::{Archive, ManifestEntry};

use crate::query::{csv_ready, query};
use crate::{Error, Result};

/// Which records make up the population.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Population {
    /// Alerts of one rule id.
    Rule(String),
    /// Alerts whose rule serves one Trust Services Criterion (e.g. `CC6.1`).
    Criterion(String),
    /// Events matching a SQL predicate over the `events` table.
    Where(String),
}

impl Population {
    fn table(&self) -> &'static str {
        match self {
            Population::Where(_) => "events",
            _ => "alerts",
        }
    }

    fn id_column(&self) -> &'static str {
        match self {
            Population::Where(_) => "event_id",
            _ => "alert_id",
        }
    }

    fn predicate(&self) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match self {
            Population::Rule(id) => format!("rule_id = {}", quote(id)),
            Population::Criterion(c) => format!("array_has(criteria, {})", quote(c)),
            Population::Where(sql) => format!("({sql})"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Population::Rule(id) => format!("alerts of rule {id}"),
            Population::Criterion(c) => format!("alerts of rules serving {c}"),
            Population::Where(sql) => format!("events where {sql}"),
        }
    }
}

/// A sample request.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    /// The population.
    pub population: Population,
    /// Start of the period (inclusive), RFC 3339.
    pub from: String,
    /// End of the period (exclusive), RFC 3339.
    pub to: String,
    /// Records to draw.
    pub size: usize,
    /// The seed.
    pub seed: String,
}

/// One drawn record.
#[derive(Debug, Clone, Serialize)]
pub struct Drawn {
    /// Record id (`event_id` or `alert_id`).
    pub id: String,
    /// Hex SHA-256 of `seed:id`: the rank.
    pub rank: String,
}

/// `population.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PopulationRecord {
    /// In words.
    pub definition: String,
    /// Table and SQL predicate.
    pub table: String,
    /// The predicate as run.
    pub predicate: String,
    /// Period start (inclusive).
    pub from: String,
    /// Period end (exclusive).
    pub to: String,
    /// Records in the population.
    pub count: usize,
    /// Hex SHA-256 of the population's ids, sorted, one per line.
    pub population_sha256: String,
    /// The seed.
    pub seed: String,
    /// Records asked for.
    pub size: usize,
    /// How records were ranked.
    pub method: String,
    /// The draw, lowest rank first.
    pub drawn: Vec<Drawn>,
    /// The archive.
    pub archive: String,
}

/// Where one sampled record is proven to come from.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// Record id.
    pub id: String,
    /// The event the provenance is of (the record itself, or an event an alert was raised on).
    pub event_id: String,
    /// Manifest entry path.
    pub manifest_entry: String,
    /// Its sequence number in its chain.
    pub seq: u64,
    /// Its hash.
    pub entry_hash: String,
    /// Offset of the record in its source partition.
    pub offset: i64,
    /// The data files of the entry, with their hashes.
    pub files: Vec<(String, String)>,
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<String> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_string_opt::<i32>())
        .map(|a| (0..a.len()).map(|i| a.value(i).to_string()).collect())
        .unwrap_or_default()
}

fn in_list(ids: &[String]) -> String {
    ids.iter().map(|i| format!("'{}'", i.replace('\'', "''"))).collect::<Vec<_>>().join(",")
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::Output { what: path.display().to_string(), reason: e.to_string() })
}

fn parquet_bytes(batch: &RecordBatch) -> Result<Vec<u8>> {
    let err = |e: parquet::errors::ParquetError| Error::Output { what: "parquet".into(), reason: e.to_string() };
    let mut buf = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).map_err(err)?;
    writer.write(batch).map_err(err)?;
    writer.close().map_err(err)?;
    Ok(buf)
}

/// Draws the sample and writes the package into `out` (created; must be empty or absent).
pub async fn draw(
    archive: &Archive,
    ctx: &SessionContext,
    request: &SampleRequest,
    out: &Path,
) -> Result<PopulationRecord> {
    if request.size == 0 {
        return Err(Error::Invalid("--size must be at least 1".into()));
    }
    let (table, id) = (request.population.table(), request.population.id_column());
    let predicate = request.population.predicate();
    let period = format!("time >= TIMESTAMP '{}' AND time < TIMESTAMP '{}'", request.from, request.to);
    let ids_sql = format!("SELECT {id} FROM {table} WHERE {period} AND {predicate}");
    let mut ids: Vec<String> = query(ctx, &ids_sql).await?.iter().flat_map(|b| strings(b, id)).collect();
    ids.sort();
    ids.dedup();
    let population_sha256 = hex::encode(Sha256::digest(ids.join("\n").as_bytes()));
    let mut ranked: Vec<Drawn> = ids
        .iter()
        .map(|i| Drawn { id: i.clone(), rank: hex::encode(Sha256::digest(format!("{}:{i}", request.seed).as_bytes())) })
        .collect();
    ranked.sort_by(|a, b| a.rank.cmp(&b.rank));
    ranked.truncate(request.size);
    let drawn_ids: Vec<String> = ranked.iter().map(|d| d.id.clone()).collect();
    std::fs::create_dir_all(out)
        .map_err(|e| Error::Output { what: out.display().to_string(), reason: e.to_string() })?;
    let mut records = None;
    let mut provenance = Vec::new();
    if !drawn_ids.is_empty() {
        let batches = query(ctx, &format!("SELECT * FROM {table} WHERE {id} IN ({})", in_list(&drawn_ids))).await?;
        let batch = concat_batches(&batches[0].schema(), &batches).map_err(|e| Error::Invalid(e.to_string()))?;
        // Rank order.
        let order: BTreeMap<&str, usize> = drawn_ids.iter().enumerate().map(|(i, d)| (d.as_str(), i)).collect();
        let row_ids = strings(&batch, id);
        let mut rows: Vec<usize> = (0..batch.num_rows()).collect();
        rows.sort_by_key(|&r| order.get(row_ids[r].as_str()).copied().unwrap_or(usize::MAX));
        let indices = arrow::array::UInt32Array::from(rows.iter().map(|&r| r as u32).collect::<Vec<_>>());
        let batch = arrow::compute::take_record_batch(&batch, &indices).map_err(|e| Error::Invalid(e.to_string()))?;
        // The events behind each record: itself, or the events an alert was raised on.
        let mut events_of: Vec<(String, Vec<String>)> = Vec::new();
        if table == "events" {
            events_of = strings(&batch, id).into_iter().map(|e| (e.clone(), vec![e])).collect();
        } else {
            let lists = batch.column_by_name("event_ids").map(|c| c.as_list::<i32>().clone());
            let alert_ids = strings(&batch, id);
            for (row, alert) in alert_ids.into_iter().enumerate() {
                let events = lists
                    .as_ref()
                    .map(|l| {
                        let v = l.value(row);
                        let s = v.as_string::<i32>();
                        (0..s.len()).map(|i| s.value(i).to_string()).collect()
                    })
                    .unwrap_or_default();
                events_of.push((alert, events));
            }
        }
        let all_events: BTreeSet<String> = events_of.iter().flat_map(|(_, e)| e.iter().cloned()).collect();
        let event_rows = if table == "events" {
            vec![batch.clone()]
        } else {
            let list: Vec<String> = all_events.iter().cloned().collect();
            let sql = format!("SELECT * FROM events WHERE event_id IN ({}) ORDER BY event_id", in_list(&list));
            let found = query(ctx, &sql).await?;
            if let Some(first) = found.first() {
                let events = concat_batches(&first.schema(), &found).map_err(|e| Error::Invalid(e.to_string()))?;
                write(&out.join("source_events.parquet"), &parquet_bytes(&events)?)?;
                vec![events]
            } else {
                Vec::new()
            }
        };
        // event id -> (ingest_source, partition, offset)
        let mut position: BTreeMap<String, (String, i32, i64)> = BTreeMap::new();
        for b in &event_rows {
            let ev = strings(b, "event_id");
            let src = strings(b, "ingest_source");
            let part =
                b.column_by_name("ingest_partition").map(|c| c.as_primitive::<arrow::datatypes::Int32Type>().clone());
            let off =
                b.column_by_name("ingest_offset").map(|c| c.as_primitive::<arrow::datatypes::Int64Type>().clone());
            if let (Some(part), Some(off)) = (part, off) {
                for i in 0..b.num_rows() {
                    position.insert(ev[i].clone(), (src[i].clone(), part.value(i), off.value(i)));
                }
            }
        }
        let mut chains: BTreeMap<(String, i32), Vec<ManifestEntry>> = BTreeMap::new();
        for (record, events) in &events_of {
            for event in events {
                let Some((source, partition, offset)) = position.get(event) else { continue };
                let key = (source.clone(), *partition);
                if !chains.contains_key(&key) {
                    chains.insert(
                        key.clone(),
                        archive.chain(&vigil_schema::PartitionId::new(source.as_str(), *partition)).await?,
                    );
                }
                let entry =
                    chains[&key].iter().find(|e| e.has_data() && e.first_offset <= *offset && *offset <= e.last_offset);
                if let Some(entry) = entry {
                    provenance.push(Provenance {
                        id: record.clone(),
                        event_id: event.clone(),
                        manifest_entry: format!("manifests/{source}/{partition}/{:012}.json", entry.seq),
                        seq: entry.seq,
                        entry_hash: entry.entry_hash.clone(),
                        offset: *offset,
                        files: entry.files.iter().map(|f| (f.path.clone(), f.sha256.clone())).collect(),
                    });
                }
            }
        }
        write(&out.join("records.parquet"), &parquet_bytes(&batch)?)?;
        let mut csv = Vec::new();
        {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut csv);
            writer
                .write(&csv_ready(&batch)?)
                .map_err(|e| Error::Output { what: "records.csv".into(), reason: e.to_string() })?;
        }
        write(&out.join("records.csv"), &csv)?;
        records = Some(batch.num_rows());
    }
    let record = PopulationRecord {
        definition: request.population.describe(),
        table: table.to_string(),
        predicate,
        from: request.from.clone(),
        to: request.to.clone(),
        count: ids.len(),
        population_sha256,
        seed: request.seed.clone(),
        size: request.size,
        method: "rank = hex SHA-256 of \"SEED:ID\"; the SIZE lowest ranks are drawn".into(),
        drawn: ranked,
        archive: archive.location().to_string(),
    };
    write(&out.join("population.json"), to_json(&record).as_bytes())?;
    write(&out.join("provenance.json"), to_json(&provenance).as_bytes())?;
    let summary = format!(
        "vigil evidence sample\n\
         population: {}\n\
         period: {} (inclusive) to {} (exclusive)\n\
         population size: {} records (SHA-256 of the sorted ids: {})\n\
         seed: {}\n\
         drawn: {} record(s), ranked by SHA-256(\"seed:id\"), lowest first\n\
         files: records.parquet, records.csv (the records), population.json (definition and draw),\n\
         provenance.json (the manifest entry and file hashes behind each record){}\n\
         check: `vigil verify --evidence {}` proves the entries and files named in provenance.json intact;\n\
         drawing again with the same seed over the same archive gives identical files.\n",
        record.definition,
        record.from,
        record.to,
        record.count,
        record.population_sha256,
        record.seed,
        records.unwrap_or(0),
        if table == "alerts" { ", source_events.parquet (the events behind each alert)" } else { "" },
        record.archive,
    );
    write(&out.join("SUMMARY.txt"), summary.as_bytes())?;
    Ok(record)
}

/// Pretty JSON (no timestamps: packages are reproducible).
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

//! A range made ready to archive ([`prepare`]): its events grouped by source and event hour and its alerts
//! by date, each group encoded as one zstd Parquet file (by rayon), the dead-letter blobs, and the
//! manifest entry that names them all; [`crate::Archive`] then writes them in that order.

use std::collections::BTreeMap;

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use bytes::Bytes;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use vigil_schema::{
    ALERT_ID, ATTRS, EVENT_ID, FIELDS, INGEST_OFFSET, RAW, SCHEMA_VERSION, TIME, date_hour, format_time_us,
};

use crate::manifest::{BLOB_KIND, Counts, FileEntry, ManifestEntry};
use crate::{DeadLetterBlob, Error, Result, SourcePrefix, layout, manifest};

/// Everything read from one source partition between two offsets, ready to archive.
#[derive(Debug, Clone, Default)]
pub struct RangeCommit<'a> {
    /// Kafka topic or `file-<fingerprint>`.
    pub ingest_source: &'a str,
    /// Kafka partition, 0 for files.
    pub partition: i32,
    /// First offset covered.
    pub first_offset: i64,
    /// Last offset covered.
    pub last_offset: i64,
    /// Input format name.
    pub format: &'a str,
    /// Where the records were read, for people.
    pub input: &'a str,
    /// Canonical events (any number of batches of `event_schema`).
    pub events: &'a [RecordBatch],
    /// Dead letters (`dead_letter_schema`).
    pub dead_letters: Option<&'a RecordBatch>,
    /// Alerts (`alert_schema`).
    pub alerts: Option<&'a RecordBatch>,
    /// Offsets in the range that held no record.
    pub skipped: u64,
    /// Hash of the active rule pack.
    pub rule_pack_hash: &'a str,
    /// Set when the range was never read (lost to the source's retention): the reason. The entry then
    /// records a completeness break and has no files.
    pub lost_reason: Option<&'a str>,
    /// File inputs: the content the range commits to, through its last record.
    pub source_prefix: Option<SourcePrefix>,
    /// Dead letters whose whole bytes are stored as their own objects (their rows are in `dead_letters`).
    pub blobs: &'a [DeadLetterBlob],
}

/// Encoded files and the unsealed manifest entry of one [`RangeCommit`].
#[derive(Debug)]
pub struct PreparedCommit {
    pub(crate) files: Vec<(Path, Bytes)>,
    pub(crate) blobs: Vec<(Path, DeadLetterBlob)>,
    pub(crate) entry: ManifestEntry,
}

impl PreparedCommit {
    /// The manifest entry as it will be written (without chain fields).
    pub fn entry(&self) -> &ManifestEntry {
        &self.entry
    }
}

struct Group {
    kind: &'static str,
    path: Path,
    batches: Vec<RecordBatch>,
    time_min: Option<i64>,
    time_max: Option<i64>,
}

fn time_column(batch: &RecordBatch) -> Option<&arrow::array::PrimitiveArray<TimestampMicrosecondType>> {
    batch.column_by_name(vigil_schema::TIME)?.as_primitive_opt::<TimestampMicrosecondType>()
}

/// Row indices of one input batch (by position) that fall in one file group.
type RowsOfBatch = (usize, Vec<u32>);

/// Adds `rows` of batch `b` to the group `key`, after the rows it already holds.
fn add_rows(groups: &mut BTreeMap<(String, i64), Vec<RowsOfBatch>>, key: (String, i64), b: usize, rows: Vec<u32>) {
    let slot = groups.entry(key).or_default();
    match slot.last_mut() {
        Some((last, held)) if *last == b => held.extend(rows),
        _ => slot.push((b, rows)),
    }
}

fn group_events(root: &Path, stem: &str, events: &[RecordBatch]) -> Result<Vec<Group>> {
    // (source, hour since epoch) -> per batch, the row indices; BTreeMap keeps file order deterministic.
    let mut groups: BTreeMap<(String, i64), Vec<RowsOfBatch>> = BTreeMap::new();
    for (b, batch) in events.iter().enumerate() {
        let times = time_column(batch).ok_or_else(|| Error::Internal("events batch without a time column".into()))?;
        let sources = batch
            .column_by_name(vigil_schema::SOURCE)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Error::Internal("events batch without a source column".into()))?;
        // Rows come in runs of one (source, hour): the map is looked up once per run, not per row.
        let mut run: Option<(&str, i64, Vec<u32>)> = None;
        for row in 0..batch.num_rows() {
            let (source, hour) = (sources.value(row), times.value(row).div_euclid(3_600_000_000));
            match &mut run {
                Some((s, h, rows)) if *s == source && *h == hour => rows.push(row as u32),
                _ => {
                    if let Some((s, h, rows)) = run.replace((source, hour, vec![row as u32])) {
                        add_rows(&mut groups, (s.to_string(), h), b, rows);
                    }
                }
            }
        }
        if let Some((s, h, rows)) = run {
            add_rows(&mut groups, (s.to_string(), h), b, rows);
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for ((source, hour), parts) in groups {
        let (date, hour_text) = date_hour(hour * 3_600_000_000);
        let mut batches = Vec::with_capacity(parts.len());
        for (b, rows) in parts {
            let batch = &events[b];
            batches.push(if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                take_record_batch(batch, &UInt32Array::from(rows))?
            });
        }
        let (time_min, time_max) = time_range(&batches);
        out.push(Group {
            kind: "events",
            path: layout::events_path(root, &source, &date, &hour_text, stem),
            batches,
            time_min,
            time_max,
        });
    }
    Ok(out)
}

fn time_range(batches: &[RecordBatch]) -> (Option<i64>, Option<i64>) {
    let mut range: (Option<i64>, Option<i64>) = (None, None);
    for batch in batches {
        if let Some(times) = time_column(batch) {
            if let Some(min) = arrow::compute::min(times) {
                range.0 = Some(range.0.map_or(min, |m| m.min(min)));
            }
            if let Some(max) = arrow::compute::max(times) {
                range.1 = Some(range.1.map_or(max, |m| m.max(max)));
            }
        }
    }
    range
}

fn group_alerts(root: &Path, stem: &str, alerts: &RecordBatch) -> Result<Vec<Group>> {
    let times = time_column(alerts).ok_or_else(|| Error::Internal("alerts batch without a time column".into()))?;
    let mut by_date: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for row in 0..alerts.num_rows() {
        by_date.entry(date_hour(times.value(row)).0).or_default().push(row as u32);
    }
    by_date
        .into_iter()
        .map(|(date, rows)| {
            let batch = take_record_batch(alerts, &UInt32Array::from(rows))?;
            let (time_min, time_max) = time_range(std::slice::from_ref(&batch));
            Ok(Group {
                kind: "alerts",
                path: layout::alerts_path(root, &date, stem),
                batches: vec![batch],
                time_min,
                time_max,
            })
        })
        .collect()
}

/// zstd everywhere. Columns whose values are (nearly) all distinct skip dictionary encoding, which would
/// only be tried and dropped; the raw bytes and `attrs` skip min/max statistics, which no reader prunes on
/// and which cost a comparison of every value. Time, source and the other columns keep both.
fn writer_properties(level: ZstdLevel) -> WriterProperties {
    use parquet::file::properties::EnabledStatistics;
    use parquet::schema::types::ColumnPath;
    let mut builder = WriterProperties::builder().set_compression(Compression::ZSTD(level));
    for column in [RAW, ATTRS, EVENT_ID, INGEST_OFFSET, TIME, FIELDS, ALERT_ID] {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    for column in [RAW, ATTRS, FIELDS] {
        builder = builder.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    builder.build()
}

fn encode(group: &Group, zstd_level: i32) -> Result<Bytes> {
    let level =
        ZstdLevel::try_new(zstd_level).map_err(|source| Error::Encode { what: group.path.to_string(), source })?;
    let props = writer_properties(level);
    let schema =
        group.batches.first().map(RecordBatch::schema).ok_or_else(|| Error::Internal("empty file group".into()))?;
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props))
        .map_err(|source| Error::Encode { what: group.path.to_string(), source })?;
    for batch in &group.batches {
        writer.write(batch).map_err(|source| Error::Encode { what: group.path.to_string(), source })?;
    }
    let bytes = writer.into_inner().map_err(|source| Error::Encode { what: group.path.to_string(), source })?;
    Ok(Bytes::from(bytes))
}

/// Groups, encodes (in parallel on the current rayon pool) and hashes the files of `commit`.
pub fn prepare(commit: &RangeCommit<'_>, zstd_level: i32) -> Result<PreparedCommit> {
    let root = Path::default();
    let stem = layout::file_stem(commit.ingest_source, commit.partition, commit.first_offset, commit.last_offset);
    let mut groups = group_events(&root, &stem, commit.events)?;
    if let Some(dead) = commit.dead_letters.filter(|d| d.num_rows() > 0) {
        groups.push(Group {
            kind: "dead_letters",
            path: layout::dead_letters_path(&root, commit.format, &stem),
            batches: vec![dead.clone()],
            time_min: None,
            time_max: None,
        });
    }
    if let Some(alerts) = commit.alerts.filter(|a| a.num_rows() > 0) {
        groups.extend(group_alerts(&root, &stem, alerts)?);
    }
    let encoded: Vec<Result<Bytes>> = groups.par_iter().map(|g| encode(g, zstd_level)).collect();
    let mut files = Vec::with_capacity(groups.len());
    let mut entries = Vec::with_capacity(groups.len());
    let mut counts = Counts { skipped: commit.skipped, ..Counts::default() };
    if commit.lost_reason.is_some() {
        counts.lost = (commit.last_offset - commit.first_offset + 1).max(0) as u64;
    }
    for (group, bytes) in groups.iter().zip(encoded) {
        let bytes = bytes?;
        let rows: u64 = group.batches.iter().map(|b| b.num_rows() as u64).sum();
        match group.kind {
            "events" => counts.events += rows,
            "dead_letters" => counts.dead_letters += rows,
            _ => counts.alerts += rows,
        }
        entries.push(FileEntry {
            kind: group.kind.to_string(),
            path: group.path.to_string(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
            rows,
            time_min: group.time_min.map(format_time_us),
            time_max: group.time_max.map(format_time_us),
            offset: None,
        });
        files.push((group.path.clone(), bytes));
    }
    let mut blobs = Vec::with_capacity(commit.blobs.len());
    for blob in commit.blobs {
        let path = layout::dead_letter_blob_path(&root, commit.ingest_source, commit.partition, blob.offset);
        entries.push(FileEntry {
            kind: BLOB_KIND.to_string(),
            path: path.to_string(),
            sha256: blob.sha256.clone(),
            size: blob.size,
            rows: 0,
            time_min: None,
            time_max: None,
            offset: Some(blob.offset),
        });
        blobs.push((path, blob.clone()));
    }
    let entry = ManifestEntry {
        version: manifest::MANIFEST_VERSION,
        seq: 0,
        ingest_source: commit.ingest_source.to_string(),
        partition: commit.partition,
        first_offset: commit.first_offset,
        last_offset: commit.last_offset,
        format: commit.format.to_string(),
        input: commit.input.to_string(),
        files: entries,
        counts,
        schema_version: SCHEMA_VERSION,
        rule_pack_hash: commit.rule_pack_hash.to_string(),
        source_bytes: commit.source_prefix.as_ref().map(|p| p.bytes),
        source_prefix_sha256: commit.source_prefix.as_ref().map(|p| p.sha256.clone()),
        lost_reason: commit.lost_reason.map(str::to_string),
        disposal: None,
        written_at: String::new(),
        prev_hash: String::new(),
        entry_hash: String::new(),
    };
    Ok(PreparedCommit { files, blobs, entry })
}

//! The evidence archive: every event, alert and dead letter as partitioned Parquet on object storage,
//! with a manifest hash chain per source partition that says what is durable.
//!
//! ```text
//!  RangeCommit (one source partition, offsets first..=last)
//!     │ prepare (CPU, rayon): group events by source/date/hour, encode zstd Parquet, SHA-256
//!     ▼
//!  PreparedCommit ── Archive::commit (I/O): put data files, then the manifest entry (the checkpoint)
//!                                             ▼
//!                                   only now may the source acknowledge first..=last
//! ```
//!
//! The layout is in [`layout`], the entries in [`manifest`]. Storage goes through `object_store`: a local
//! directory (default) here; the same layout serves S3-compatible stores.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use vigil_evidence::{Archive, RangeCommit};
//! let dir = tempfile::tempdir().unwrap();
//! let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
//! assert!(archive.chain_head("file-x", 0).await.unwrap().is_none());
//! let commit = RangeCommit { ingest_source: "file-x", partition: 0, first_offset: 1, last_offset: 1, ..RangeCommit::default() };
//! let entry = archive.commit(vigil_evidence::prepare(&commit, 3).unwrap(), None).await.unwrap();
//! assert_eq!(archive.chain_head("file-x", 0).await.unwrap().unwrap().last_offset, entry.last_offset);
//! # });
//! ```

mod error;
pub mod layout;
pub mod manifest;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use vigil_schema::{SCHEMA_VERSION, date_hour, format_time_us};

pub use error::{Error, Result};
pub use manifest::{ChainHead, Counts, FileEntry, ManifestEntry};

/// An evidence archive at one location.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    root: Path,
    location: String,
}

impl Archive {
    /// Opens (creating if needed) the archive at `location`: a local directory path or `file://` URL.
    pub fn open(location: &str) -> Result<Self> {
        let loc_err = |reason: String| Error::Location { location: location.to_string(), reason };
        let local = if let Some(rest) = location.strip_prefix("file://") {
            rest.to_string()
        } else if location.contains("://") {
            return Err(loc_err("unsupported scheme; use a local directory or file:// URL".into()));
        } else {
            location.to_string()
        };
        if local.is_empty() {
            return Err(loc_err("empty path".into()));
        }
        std::fs::create_dir_all(&local).map_err(|e| loc_err(format!("cannot create the directory: {e}")))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&local)
            .map_err(|e| loc_err(format!("cannot open the directory: {e}")))?;
        Ok(Archive { store: Arc::new(store), root: Path::default(), location: location.to_string() })
    }

    /// An archive on any object store under `root` (used for S3-compatible stores and tests).
    pub fn with_store(store: Arc<dyn ObjectStore>, root: Path, location: impl Into<String>) -> Self {
        Archive { store, root, location: location.into() }
    }

    /// The object store.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The root path inside the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The location as the user gave it.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Every manifest entry of one source partition, oldest first.
    pub async fn chain(&self, ingest_source: &str, partition: i32) -> Result<Vec<ManifestEntry>> {
        let dir = layout::manifest_dir(&self.root, ingest_source, partition);
        let mut metas: Vec<_> = self.store.list(Some(&dir)).try_collect().await.map_err(|source| Error::Store {
            operation: "list",
            path: dir.to_string(),
            source,
        })?;
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        let mut entries = Vec::with_capacity(metas.len());
        for meta in metas {
            entries.push(self.read_entry(&meta.location).await?);
        }
        Ok(entries)
    }

    async fn read_entry(&self, path: &Path) -> Result<ManifestEntry> {
        let bytes = self
            .store
            .get(path)
            .await
            .map_err(|source| Error::Store { operation: "get", path: path.to_string(), source })?
            .bytes()
            .await
            .map_err(|source| Error::Store { operation: "get", path: path.to_string(), source })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Manifest { path: path.to_string(), reason: e.to_string() })
    }

    /// The newest entry of one source partition's chain: where that partition resumes.
    pub async fn chain_head(&self, ingest_source: &str, partition: i32) -> Result<Option<ChainHead>> {
        let dir = layout::manifest_dir(&self.root, ingest_source, partition);
        let newest = self
            .store
            .list(Some(&dir))
            .try_fold(None::<Path>, |best, meta| async move {
                Ok(match best {
                    Some(b) if b >= meta.location => Some(b),
                    _ => Some(meta.location),
                })
            })
            .await
            .map_err(|source| Error::Store { operation: "list", path: dir.to_string(), source })?;
        match newest {
            Some(path) => Ok(Some(ChainHead::from(&self.read_entry(&path).await?))),
            None => Ok(None),
        }
    }

    /// Stores the data files of `prepared`, then its manifest entry chained after `head`. When this
    /// returns, the range is durable and its offsets may be acknowledged.
    pub async fn commit(&self, prepared: PreparedCommit, head: Option<&ChainHead>) -> Result<ManifestEntry> {
        let puts = prepared.files.into_iter().map(|(path, bytes)| {
            let store = self.store.clone();
            let path = self.absolute(&path);
            async move {
                store.put(&path, PutPayload::from(bytes)).await.map_err(|source| Error::Store {
                    operation: "put",
                    path: path.to_string(),
                    source,
                })
            }
        });
        futures::future::try_join_all(puts).await?;
        let mut entry = prepared.entry;
        entry.seq = head.map_or(0, |h| h.seq + 1);
        entry.prev_hash = head.map(|h| h.entry_hash.clone()).unwrap_or_default();
        entry.written_at = format_time_us(now_us());
        let entry = entry.seal();
        let path = layout::manifest_path(&self.root, &entry.ingest_source, entry.partition, entry.seq);
        let bytes = serde_json::to_vec_pretty(&entry).map_err(|e| Error::Internal(e.to_string()))?;
        self.store
            .put_opts(&path, PutPayload::from(bytes), PutOptions { mode: PutMode::Create, ..PutOptions::default() })
            .await
            .map_err(|source| Error::Store { operation: "put", path: path.to_string(), source })?;
        Ok(entry)
    }
}

/// Current UTC time in microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

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
}

/// Encoded files and the unsealed manifest entry of one [`RangeCommit`].
#[derive(Debug)]
pub struct PreparedCommit {
    files: Vec<(Path, Bytes)>,
    entry: ManifestEntry,
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

fn group_events(root: &Path, stem: &str, events: &[RecordBatch]) -> Result<Vec<Group>> {
    // (source, hour since epoch) -> per batch, the row indices; BTreeMap keeps file order deterministic.
    let mut groups: BTreeMap<(String, i64), Vec<RowsOfBatch>> = BTreeMap::new();
    for (b, batch) in events.iter().enumerate() {
        let times = time_column(batch).ok_or_else(|| Error::Internal("events batch without a time column".into()))?;
        let sources = batch
            .column_by_name(vigil_schema::SOURCE)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Error::Internal("events batch without a source column".into()))?;
        for row in 0..batch.num_rows() {
            let hour = times.value(row).div_euclid(3_600_000_000);
            let key = (sources.value(row).to_string(), hour);
            let slot = groups.entry(key).or_default();
            match slot.last_mut() {
                Some((last, rows)) if *last == b => rows.push(row as u32),
                _ => slot.push((b, vec![row as u32])),
            }
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

fn encode(group: &Group, zstd_level: i32) -> Result<Bytes> {
    let level =
        ZstdLevel::try_new(zstd_level).map_err(|source| Error::Encode { what: group.path.to_string(), source })?;
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(level)).build();
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
        });
        files.push((group.path.clone(), bytes));
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
        written_at: String::new(),
        prev_hash: String::new(),
        entry_hash: String::new(),
    };
    Ok(PreparedCommit { files, entry })
}

impl Archive {
    /// Prefixes a root-relative path prepared by [`prepare`] with this archive's root.
    fn absolute(&self, relative: &Path) -> Path {
        Path::from_iter(self.root.parts().chain(relative.parts()))
    }
}

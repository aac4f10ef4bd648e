//! `vigil evidence expire`: deletes data files whose retention has ended, and records every disposal
//! in the manifest chain the files belong to.
//!
//! A data file is past retention when the entry that lists it was written more than `retention_days`
//! ago by both clocks: the writer's (`written_at`) and the store's (the entry object's Last-Modified, the
//! clock S3 Object Lock counts from). "Now" is the store's clock too (read by storing a small object under
//! `state/`), so a writer whose clock was set ahead deletes nothing early.
//!
//! **Floors.** A retention below the bucket's Object Lock period is refused outright; one below the
//! minimum (`[evidence] min_retention_days`, default 365: a SOC 2 Type II period plus margin) is refused
//! unless `allow_short_retention` is given, and the disposal entry records the override for `verify`
//! (which flags every disposal below the floor as `disposal_below_floor`).
//!
//! A signed archive needs the signing key here too: the disposal entries are signed in a digest like
//! any other.
//!
//! Per chain, in this order:
//!
//! 1. a **disposal entry** is appended: it names the retention, the entries and every file (path and
//!    SHA-256) to be deleted, and is chained and hashed like any entry, so the chain says what was
//!    removed, when and why, before anything is removed;
//! 2. then the files are deleted. A deletion that fails (a lock, a permission) is reported, and the next
//!    run deletes what an earlier disposal lists but is still there.
//!
//! Manifest entries themselves are never deleted: they are small, and they are the record of what existed.
//! `vigil verify` accepts files a disposal lists as absent, and flags a disposal of a file that was not
//! yet past the retention it names (`disposal_early`).
//!
//! On a bucket with Object Lock, retention shorter than the bucket's default lock retention is refused: S3
//! would keep every locked version anyway. On a versioned bucket a delete leaves a delete marker; the old
//! versions are removed by the bucket's lifecycle rule for noncurrent versions once their lock ends.

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use vigil_schema::SCHEMA_VERSION;

use crate::manifest::{Counts, Disposal, DisposedFile, MANIFEST_VERSION, ManifestEntry};
use crate::{Archive, Error, Result, layout};

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// Default `[evidence] min_retention_days`: a 12-month SOC 2 Type II period plus its fieldwork.
pub const DEFAULT_MIN_RETENTION_DAYS: u32 = 365;

/// Where `expire` stores a small object to read the store's clock (not evidence; overwritten each time).
const CLOCK_OBJECT: &str = "state/clock.json";

/// What to expire.
#[derive(Debug, Clone)]
pub struct ExpireOptions {
    /// Files whose entry was written more than this many days before `now_us` are past retention.
    pub retention_days: u32,
    /// Retention below this is refused unless `allow_short_retention`.
    pub min_retention_days: u32,
    /// Dispose of evidence below `min_retention_days` (recorded in the disposal entry).
    pub allow_short_retention: bool,
    /// The time retention is measured at (microseconds since the epoch); normally now.
    pub now_us: i64,
    /// List only; write and delete nothing.
    pub dry_run: bool,
}

/// One file past retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredFile {
    /// `source/partition#seq` of the entry that lists it.
    pub entry: String,
    /// Path relative to the archive root.
    pub path: String,
    /// Its SHA-256 when it was written.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// When its entry was written.
    pub written_at: String,
    /// `true` when an earlier disposal already lists it and only the deletion is left to do.
    pub already_recorded: bool,
}

/// A file that could not be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedDeletion {
    /// Path relative to the archive root.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// The outcome of [`expire`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExpireReport {
    /// Where.
    pub location: String,
    /// The retention applied, in days.
    pub retention_days: u32,
    /// Entries written before this time (RFC 3339) are past retention.
    pub cutoff: String,
    /// The store's clock when expire ran (RFC 3339), when it could be read.
    #[serde(default)]
    pub store_time: Option<String>,
    /// The signed digest that covers the disposals, when the archive signs.
    #[serde(default)]
    pub digest: Option<u64>,
    /// Nothing was written or deleted.
    pub dry_run: bool,
    /// Chains looked at.
    pub chains: usize,
    /// Files past retention (deleted, or to delete with `dry_run`).
    pub files: Vec<ExpiredFile>,
    /// Their bytes.
    pub bytes: u64,
    /// Disposal entries written (`source/partition#seq`).
    pub disposals: Vec<String>,
    /// Files deleted.
    pub deleted: usize,
    /// Files that could not be deleted: run again once the cause is fixed.
    pub failed: Vec<FailedDeletion>,
}

impl ExpireReport {
    /// True when every file past retention is recorded and deleted (or would be, with `dry_run`).
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// The data files present, relative to the archive root.
async fn data_files(archive: &Archive) -> Result<BTreeSet<String>> {
    let mut present = BTreeSet::new();
    for kind in ["events", "alerts", "dead_letters"] {
        let dir = archive.root().clone().join(kind);
        let metas: Vec<_> = archive
            .object_store()
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|source| Error::Store { operation: "list", path: dir.to_string(), source })?;
        present.extend(metas.iter().map(|m| layout::relative(archive.root(), &m.location)));
    }
    Ok(present)
}

fn parse_us(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_micros())
}

/// Refuses a retention shorter than the bucket's Object Lock default retention.
async fn check_lock(archive: &Archive, retention_days: u32) -> Result<()> {
    let Some(bucket) = archive.bucket() else { return Ok(()) };
    let status = bucket.lock_status().await?;
    tracing::debug!(?status, "object lock of the evidence bucket");
    if let (true, Some(days)) = (status.enabled, status.days)
        && retention_days < days
    {
        return Err(Error::Bucket {
            bucket: bucket.settings().bucket.clone(),
            reason: format!(
                "retention of {retention_days} days is shorter than the bucket's Object Lock retention of {days} days \
                 ({}): the locked versions cannot be removed before then; use --retention-days {days} or more",
                status.mode.as_deref().unwrap_or("default")
            ),
        });
    }
    Ok(())
}

/// Refuses a retention below the minimum unless overridden.
fn check_floor(options: &ExpireOptions) -> Result<()> {
    // A dry run changes nothing: it may list what a short retention would delete.
    if options.retention_days < options.min_retention_days && !options.allow_short_retention && !options.dry_run {
        return Err(Error::Retention {
            reason: format!(
                "a retention of {} days is below the minimum of {} days ([evidence] min_retention_days): evidence an \
                 auditor can still ask for would be deleted. Give --allow-short-retention to do it anyway (the \
                 disposal records it, and `vigil verify` names it)",
                options.retention_days, options.min_retention_days
            ),
        });
    }
    Ok(())
}

/// The store's clock: the Last-Modified of a small object stored now. `None` when it cannot be read.
async fn store_time(archive: &Archive, writer_now_us: i64) -> Option<i64> {
    let body = serde_json::json!({ "written_by": "vigil evidence expire", "writer_time": vigil_schema::format_time_us(writer_now_us) });
    archive.put_object(CLOCK_OBJECT, body.to_string().into_bytes()).await.ok()?;
    let path = archive.absolute(&Path::from(CLOCK_OBJECT));
    archive.object_store().head(&path).await.ok().map(|m| m.last_modified.timestamp_micros())
}

/// When the store says each manifest entry of a chain was written, by path relative to the root.
async fn stored_times(archive: &Archive, source: &str, partition: i32) -> Result<BTreeMap<String, i64>> {
    let dir = layout::manifest_dir(archive.root(), source, partition);
    let metas: Vec<_> = archive.object_store().list(Some(&dir)).try_collect().await.map_err(|source| Error::Store {
        operation: "list",
        path: dir.to_string(),
        source,
    })?;
    Ok(metas
        .into_iter()
        .map(|m| (layout::relative(archive.root(), &m.location), m.last_modified.timestamp_micros()))
        .collect())
}

/// Finds the data files past retention and, unless `dry_run`, records their disposal and deletes them.
pub async fn expire(archive: &Archive, options: &ExpireOptions) -> Result<ExpireReport> {
    check_lock(archive, options.retention_days).await?;
    check_floor(options)?;
    if !options.dry_run && archive.signer().is_none() && archive.is_signed().await? {
        return Err(Error::SigningKeyMissing { location: archive.location().to_string() });
    }
    // The earlier of the two clocks: a writer set ahead must not make evidence look older than it is.
    let store_now = if options.dry_run { None } else { store_time(archive, options.now_us).await };
    if let Some(store_now) = store_now
        && options.now_us - store_now > 5 * 60 * 1_000_000
    {
        tracing::warn!(
            ahead_secs = (options.now_us - store_now) / 1_000_000,
            "this machine's clock is ahead of the evidence store's: retention is measured by the store's"
        );
    }
    let now_us = store_now.map_or(options.now_us, |s| s.min(options.now_us));
    let cutoff_us = now_us - i64::from(options.retention_days) * DAY_US;
    let mut report = ExpireReport {
        location: archive.location().to_string(),
        retention_days: options.retention_days,
        cutoff: vigil_schema::format_time_us(cutoff_us),
        store_time: store_now.map(vigil_schema::format_time_us),
        dry_run: options.dry_run,
        ..ExpireReport::default()
    };
    let present = data_files(archive).await?;
    for id in archive.chains().await? {
        let (source, partition) = (id.source().to_string(), id.partition);
        report.chains += 1;
        let entries = archive.chain(&id).await?;
        let stored = stored_times(archive, &source, partition).await?;
        let recorded: BTreeSet<&str> = entries
            .iter()
            .filter_map(|e| e.disposal.as_ref())
            .flat_map(|d| d.files.iter().map(|f| f.path.as_str()))
            .collect();
        let mut due: BTreeMap<u64, Vec<ExpiredFile>> = BTreeMap::new();
        for entry in entries.iter().filter(|e| e.has_data()) {
            let path =
                layout::relative(archive.root(), &layout::manifest_path(archive.root(), &source, partition, entry.seq));
            let past = parse_us(&entry.written_at).is_some_and(|w| w <= cutoff_us)
                && stored.get(&path).is_none_or(|s| *s <= cutoff_us);
            for file in &entry.files {
                let already = recorded.contains(file.path.as_str());
                if (past && !already) || (already && present.contains(&file.path)) {
                    due.entry(entry.seq).or_default().push(ExpiredFile {
                        entry: format!("{source}/{partition}#{}", entry.seq),
                        path: file.path.clone(),
                        sha256: file.sha256.clone(),
                        size: file.size,
                        written_at: entry.written_at.clone(),
                        already_recorded: already,
                    });
                }
            }
        }
        let files: Vec<ExpiredFile> = due.values().flatten().cloned().collect();
        if files.is_empty() {
            continue;
        }
        report.bytes += files.iter().map(|f| f.size).sum::<u64>();
        if !options.dry_run {
            let new: Vec<&ExpiredFile> = files.iter().filter(|f| !f.already_recorded).collect();
            if !new.is_empty() {
                let disposal = Disposal {
                    retention_days: options.retention_days,
                    entries: due
                        .iter()
                        .filter(|(_, f)| f.iter().any(|f| !f.already_recorded))
                        .map(|(s, _)| *s)
                        .collect(),
                    files: new
                        .iter()
                        .map(|f| DisposedFile { path: f.path.clone(), sha256: f.sha256.clone() })
                        .collect(),
                    min_retention_days: Some(options.min_retention_days),
                    floor_overridden: options.retention_days < options.min_retention_days,
                };
                let head = entries.last().map(crate::ChainHead::from);
                let written = archive.append(disposal_entry(&source, partition, disposal), head).await?;
                report.disposals.push(format!("{source}/{partition}#{}", written.seq));
            }
            for file in &files {
                let path = archive.absolute(&Path::from(file.path.as_str()));
                match archive.object_store().delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => report.deleted += 1,
                    Err(e) => report.failed.push(FailedDeletion { path: file.path.clone(), reason: e.to_string() }),
                }
            }
        }
        report.files.extend(files);
    }
    if !options.dry_run {
        report.digest = archive.sign_digest(true).await?.map(|d| d.seq);
    }
    Ok(report)
}

pub(crate) fn disposal_entry(source: &str, partition: i32, disposal: Disposal) -> ManifestEntry {
    ManifestEntry {
        version: MANIFEST_VERSION,
        seq: 0,
        ingest_source: source.to_string(),
        partition,
        first_offset: 0,
        last_offset: 0,
        format: String::new(),
        input: "vigil evidence expire".to_string(),
        files: Vec::new(),
        counts: Counts::default(),
        schema_version: SCHEMA_VERSION,
        rule_pack_hash: String::new(),
        source_bytes: None,
        source_prefix_sha256: None,
        lost_reason: None,
        disposal: Some(disposal),
        written_at: String::new(),
        prev_hash: String::new(),
        entry_hash: String::new(),
    }
}

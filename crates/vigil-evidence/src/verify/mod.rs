//! `vigil verify`: proves an archive complete and untampered, or names what is wrong.
//!
//! What is checked, per source partition chain (`manifests/{source}/{partition}/`):
//! - **entries**: sequence numbers run 0..n without a hole (`entry_missing`); each entry's name matches
//!   its `seq` and its `prev_hash` is the previous entry's hash (`entry_out_of_order`); its `entry_hash`
//!   matches its content (`entry_edited`); it parses (`entry_unreadable`).
//! - **offsets**: each data entry starts right after the previous one ends (`offset_gap`, `offset_overlap`);
//!   a range the source no longer had is an entry with `lost_reason`, reported as a known completeness
//!   break (a warning), never as a silent gap; `events + dead_letters + skipped + lost` equals the range
//!   length and the files' rows add up to the counts (`counts_mismatch`).
//! - **files**: every file an entry lists exists (`file_missing`, unless a later disposal entry records its
//!   deletion past retention) with the recorded size (`file_size_mismatch`), SHA-256 (`file_hash_mismatch`)
//!   and Parquet row count (`file_rows_mismatch`); no data file exists that no entry lists (`extra_file`).
//!   A dead-letter blob (one oversized dead letter's whole bytes) is hashed as it is read, in bounded
//!   memory, and must name an offset of its entry's range that holds a dead letter (`blob_invalid`).
//!
//! - **disposals** (`vigil evidence expire`): each names earlier data entries and their files with the
//!   recorded hashes (`disposal_invalid`), written after the retention it names had ended (`disposal_early`);
//!   a disposed file still present is a warning (`disposal_incomplete`).
//!
//! Files of a range still being written (a pending intent) are warnings (`range_in_progress`). `--from` /
//! `--to` limit the file checks to entries whose time range overlaps; chain and offset checks always cover
//! everything (they read only the small entries). Data files are read in parallel.
//!
//! A hash chain cannot show that its newest entries were cut off together with their files: keep the
//! chain heads a report prints (`heads`) and pass them back later (`expected_heads`) to prove that too.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layout::DATA_KINDS;
use crate::{Archive, Error, Result, layout};

mod chain;
use chain::check_chain;

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Public keys the digests must be signed with (`--public-key`); none: only internal consistency is
    /// checked, and the report says so (`authenticated: false`).
    pub public_keys: Vec<crate::keys::PublicKey>,
    /// The time to judge overdue digests and abandoned intents at (microseconds); `None`: now.
    pub now_us: Option<i64>,
    /// The newest digest of an earlier report: it must still be there, unchanged.
    pub expected_digest: Option<DigestRef>,
    /// Only check files of entries whose time range ends at or after this (microseconds since epoch).
    pub from_us: Option<i64>,
    /// Only check files of entries whose time range starts before this.
    pub to_us: Option<i64>,
    /// Chain heads from an earlier report: each must still be in the archive with the same hash.
    pub expected_heads: Vec<Head>,
    /// Objects read at once (0: 32).
    pub concurrency: usize,
}

/// One problem (or warning) found, naming the object and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Machine-readable kind, such as `file_hash_mismatch`.
    pub kind: String,
    /// The object or entry concerned (path relative to the archive root, or `source/partition#seq`).
    pub object: String,
    /// What is wrong, for people.
    pub detail: String,
}

/// The newest entry of one chain, as a report prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Kafka topic or `file-<fingerprint>`.
    pub ingest_source: String,
    /// Partition.
    pub partition: i32,
    /// Sequence number of the newest entry.
    pub seq: u64,
    /// Its hash.
    pub entry_hash: String,
    /// Last offset covered.
    pub last_offset: i64,
}

/// A digest as a report names it: keep the newest to prove later that nothing was cut from the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRef {
    /// Its sequence number.
    pub seq: u64,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// When it was signed.
    pub written_at: String,
    /// The key that signed it.
    pub key_id: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Where.
    pub location: String,
    /// Chains (source partitions) checked.
    pub chains: usize,
    /// Manifest entries checked.
    pub entries: usize,
    /// Data files read and hashed.
    pub files_checked: usize,
    /// Bytes read and hashed.
    pub bytes_checked: u64,
    /// Rows in the files checked.
    pub rows_checked: u64,
    /// Offsets recorded as lost at the source (known completeness breaks).
    pub lost_offsets: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// The newest entry of every chain: keep them to detect a cut-off tail later.
    pub heads: Vec<Head>,
    /// Digests were checked against the public keys given and every one is signed by one of them.
    /// `false` without `--public-key`: then only internal consistency was checked.
    #[serde(default)]
    pub authenticated: bool,
    /// Signed digests found.
    #[serde(default)]
    pub digests: usize,
    /// The newest digest whose signature held (or, without keys, the newest digest).
    #[serde(default)]
    pub newest_digest: Option<DigestRef>,
    /// Problems: the archive fails verification when there is any.
    pub findings: Vec<Finding>,
    /// Things to know that are not failures.
    pub warnings: Vec<Finding>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    pub(crate) fn find(&mut self, kind: &str, object: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding { kind: kind.into(), object: object.into(), detail: detail.into() });
    }

    pub(crate) fn warn(&mut self, kind: &str, object: impl Into<String>, detail: impl Into<String>) {
        self.warnings.push(Finding { kind: kind.into(), object: object.into(), detail: detail.into() });
    }
}

/// Objects read at once when [`VerifyOptions::concurrency`] is 0.
const DEFAULT_CONCURRENCY: usize = 32;

/// An intent this much older than now belongs to no range being written (a commit takes seconds).
const PENDING_GRACE_US: i64 = 15 * 60 * 1_000_000;

/// One listed object: its size and when the store says it was written.
#[derive(Debug, Clone, Copy)]
struct Listed {
    size: u64,
    stored_us: i64,
}

/// A file to read and check.
struct FileCheck {
    path: String,
    sha256: String,
    size: u64,
    rows: u64,
    /// A dead-letter blob: raw bytes, no Parquet.
    blob: bool,
}

fn parse_time(text: &Option<String>) -> Option<i64> {
    text.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp_micros())
}

/// What the walk over every manifest chain gathered.
#[derive(Default)]
struct Walked {
    /// Data files some entry lists.
    referenced: HashSet<String>,
    /// Those files, to read and hash.
    to_check: Vec<FileCheck>,
    /// (source, partition, seq) -> entry_hash of every entry read, for the earlier report's heads.
    hashes: BTreeMap<(String, i32, u64), String>,
    /// Each chain's last offset.
    heads: BTreeMap<(String, i32), i64>,
    /// Each chain's listed files.
    files: BTreeMap<(String, i32), HashSet<String>>,
    views: crate::digest_check::ChainViews,
}

/// Verifies `archive` (see the module docs).
pub async fn verify(archive: &Archive, options: &VerifyOptions) -> Result<VerifyReport> {
    let started = std::time::Instant::now();
    let mut report = VerifyReport { location: archive.location().to_string(), ..VerifyReport::default() };
    let now_us = options.now_us.unwrap_or_else(crate::now_us);
    let concurrency = if options.concurrency == 0 { DEFAULT_CONCURRENCY } else { options.concurrency };
    let listed = list_all(archive).await?;
    let digest_paths = digest_paths(&listed, &mut report);
    let (chains, pending) = manifest_objects(&listed, &mut report);
    // Every entry is small: read them all at once (what dominates on a remote store is the round trips).
    let entry_paths: Vec<String> =
        chains.values().flat_map(|c| c.values().cloned()).chain(digest_paths.values().cloned()).collect();
    let contents = read_all(archive, entry_paths, concurrency).await?;
    let walked = walk_chains(&chains, &contents, options, &listed, &mut report)?;
    // Signed digests: signatures, their chain, and the heads they sign.
    let digests: BTreeMap<u64, (String, bytes::Bytes, i64)> = digest_paths
        .iter()
        .map(|(seq, path)| {
            let bytes = contents.get(path).cloned().unwrap_or_default();
            let stored = listed.get(path).map_or(0, |l| l.stored_us);
            (*seq, (path.clone(), bytes, stored))
        })
        .collect();
    crate::digest_check::check(&digests, &walked.views, &options.public_keys, now_us, &mut report);
    check_expected_digest(options, &digests, &mut report);
    // Ranges being written: their files are not evidence yet.
    let mut in_progress: BTreeSet<String> = BTreeSet::new();
    for (source, partition, intent) in &pending {
        let bytes = archive.read_bytes(&archive.absolute(&Path::from(intent.as_str()))).await?;
        let stored = listed.get(intent).map_or(now_us, |l| l.stored_us);
        let pending = Pending { source, partition: *partition, intent, stored_us: stored };
        in_progress.extend(check_intent(&pending, &bytes, &walked, options, now_us, &mut report));
    }
    check_expected_heads(options, &walked.hashes, &mut report);
    // Data files nobody lists.
    for path in listed.keys() {
        let kind = path.split('/').next().unwrap_or("");
        if DATA_KINDS.contains(&kind) && !walked.referenced.contains(path) && !in_progress.contains(path) {
            report.find("extra_file", path, "a data file that no manifest entry lists (added, or left from a rewrite)");
        }
    }
    check_files(archive, walked.to_check, concurrency, &mut report).await;
    // S3 object versions (versions.rs): evidence deleted, overwritten or unlocked that the bucket remembers.
    if archive.bucket().is_some() {
        let scope = crate::versions::VersionScope::from_entries(&contents, concurrency);
        crate::versions::check(archive, &scope, &mut report).await?;
    }
    report.findings.sort_by(|a, b| (&a.object, &a.kind).cmp(&(&b.object, &b.kind)));
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One listing of everything: relative path -> size and when the store says it was written.
async fn list_all(archive: &Archive) -> Result<BTreeMap<String, Listed>> {
    let root = archive.root().clone();
    let mut listed: BTreeMap<String, Listed> = BTreeMap::new();
    let mut stream = archive.object_store().list(Some(&root));
    while let Some(meta) =
        stream.try_next().await.map_err(|source| Error::Store { operation: "list", path: root.to_string(), source })?
    {
        let listing = Listed { size: meta.size, stored_us: meta.last_modified.timestamp_micros() };
        listed.insert(layout::relative(&root, &meta.location), listing);
    }
    Ok(listed)
}

/// Digests: `digests/{seq}.json` by seq; anything else there is planted.
fn digest_paths(listed: &BTreeMap<String, Listed>, report: &mut VerifyReport) -> BTreeMap<u64, String> {
    let mut digest_paths: BTreeMap<u64, String> = BTreeMap::new();
    for path in listed.keys() {
        let Some(name) = path.strip_prefix("digests/") else { continue };
        match crate::digest::digest_seq(name) {
            Some(seq) => {
                digest_paths.insert(seq, path.clone());
            }
            None => report.find("extra_file", path, "an object in digests/ that is no digest"),
        }
    }
    digest_paths
}

/// Manifest entry objects by chain, and the intents of ranges being written (source, partition, path).
type ManifestObjects = (BTreeMap<(String, i32), BTreeMap<u64, String>>, Vec<(String, i32, String)>);

/// Manifest objects by chain; anything in manifests/ that is neither entry nor intent is planted.
fn manifest_objects(listed: &BTreeMap<String, Listed>, report: &mut VerifyReport) -> ManifestObjects {
    let mut chains: BTreeMap<(String, i32), BTreeMap<u64, String>> = BTreeMap::new();
    let mut pending: Vec<(String, i32, String)> = Vec::new();
    for path in listed.keys() {
        let Some(rest) = path.strip_prefix("manifests/") else { continue };
        let parts: Vec<&str> = rest.split('/').collect();
        let parsed = match parts.as_slice() {
            [source, partition, name] => partition.parse::<i32>().ok().map(|p| (source, p, name)),
            _ => None,
        };
        let Some((source, partition, name)) = parsed else {
            report.find("extra_file", path, "an object in manifests/ that is no manifest entry");
            continue;
        };
        if let Some(seq) = layout::entry_seq(name) {
            chains.entry((source.to_string(), partition)).or_default().insert(seq, path.clone());
        } else if layout::pending_seq(name).is_some() {
            pending.push((source.to_string(), partition, path.clone()));
        } else {
            report.find("extra_file", path, "an object in manifests/ that is no manifest entry");
        }
    }
    (chains, pending)
}

/// The bytes of every path, `concurrency` reads at a time.
async fn read_all(archive: &Archive, paths: Vec<String>, concurrency: usize) -> Result<BTreeMap<String, bytes::Bytes>> {
    futures::stream::iter(paths.into_iter().map(|path| async move {
        let bytes = archive.read_bytes(&archive.absolute(&Path::from(path.as_str()))).await?;
        Ok::<_, Error>((path, bytes))
    }))
    .buffer_unordered(concurrency)
    .try_collect()
    .await
}

/// Checks every chain ([`check_chain`]) and gathers what the later steps need.
fn walk_chains(
    chains: &BTreeMap<(String, i32), BTreeMap<u64, String>>,
    contents: &BTreeMap<String, bytes::Bytes>,
    options: &VerifyOptions,
    listed: &BTreeMap<String, Listed>,
    report: &mut VerifyReport,
) -> Result<Walked> {
    let mut walked = Walked::default();
    for ((source, partition), entries) in chains {
        report.chains += 1;
        let chain = check_chain(source, *partition, entries, contents, options, listed, report)?;
        walked.referenced.extend(chain.referenced.iter().cloned());
        walked.to_check.extend(chain.to_check);
        walked.hashes.extend(chain.hashes.into_iter().map(|(seq, hash)| ((source.clone(), *partition, seq), hash)));
        if let Some(last) = chain.last_offset {
            walked.heads.insert((source.clone(), *partition), last);
        }
        walked.files.insert((source.clone(), *partition), chain.referenced.iter().cloned().collect());
        walked.views.insert((source.clone(), *partition), chain.views);
    }
    Ok(walked)
}

/// `--since`: the newest digest an earlier report saw must still be there, with the same bytes.
fn check_expected_digest(
    options: &VerifyOptions,
    digests: &BTreeMap<u64, (String, bytes::Bytes, i64)>,
    report: &mut VerifyReport,
) {
    if let Some(expected) = &options.expected_digest {
        let object = format!("digests/{:012}.json", expected.seq);
        match digests.get(&expected.seq) {
            None => report.find("digest_missing", object, "the newest digest an earlier report saw is gone"),
            Some((_, bytes, _)) if hex::encode(Sha256::digest(bytes)) != expected.sha256 => {
                report.find("digest_chain_broken", object, "the digest an earlier report saw has other bytes now")
            }
            Some(_) => {}
        }
    }
}

/// An intent of a range being written: its chain, its path and when the store says it was written.
struct Pending<'a> {
    source: &'a str,
    partition: i32,
    intent: &'a str,
    stored_us: i64,
}

/// Checks one intent; returns the files of a range still being written (not evidence yet). An intent
/// older than a commit takes was left by a writer that stopped (or planted); one that lists files of no
/// unwritten range of its own chain was edited or planted.
fn check_intent(
    pending: &Pending<'_>,
    bytes: &[u8],
    walked: &Walked,
    options: &VerifyOptions,
    now_us: i64,
    report: &mut VerifyReport,
) -> Vec<String> {
    let Pending { source, partition, intent, stored_us: stored } = *pending;
    let after = walked.heads.get(&(source.to_string(), partition)).copied();
    let parsed = crate::manifest::Intent::parse(bytes);
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => {
            report.find("pending_invalid", intent, reason);
            return Vec::new();
        }
    };
    // With keys, an intent must be signed like a digest: one that is not was planted or edited.
    if !options.public_keys.is_empty() {
        let signed = options
            .public_keys
            .iter()
            .find(|k| k.id() == parsed.key_id)
            .is_some_and(|k| k.verifies(&parsed.signed_bytes(), &parsed.signature));
        if !signed {
            report.find(
                "pending_invalid",
                intent,
                "not signed by a key given: no vigil writer wrote this intent (planted or edited)",
            );
            return Vec::new();
        }
    }
    let files = parsed.files;
    // A file its chain's entries list was committed: the intent outlived its range (its removal
    // failed); the next run over the partition removes it.
    let committed = |f: &String| walked.files.get(&(source.to_string(), partition)).is_some_and(|s| s.contains(f));
    let foreign: Vec<&String> =
        files.iter().filter(|f| !layout::names_unwritten_range(f, source, partition, after) && !committed(f)).collect();
    if !files.is_empty() && files.iter().all(committed) {
        report.warn(
            "pending_leftover",
            intent,
            "the intent of a range that was committed (removing it failed); the next run over this partition \
                 removes it",
        );
        return Vec::new();
    }
    if !foreign.is_empty() {
        report.find(
            "pending_invalid",
            intent,
            format!(
                "lists {} file(s) that are not this chain's unwritten range (such as {}): edited or planted;                      vigil leaves them alone",
                foreign.len(),
                foreign[0]
            ),
        );
        return Vec::new();
    }
    if now_us.saturating_sub(stored) <= PENDING_GRACE_US {
        report.warn(
            "range_in_progress",
            intent,
            format!("a range is being written: {} file(s) not yet evidence", files.len()),
        );
        return files;
    }
    report.find(
        "range_abandoned",
        intent,
        format!(
            "a range whose writing stopped {} min ago lists {} file(s) that are not evidence: its writer                      stopped mid-way (the next `vigil run` over the same input removes them) or it was planted",
            now_us.saturating_sub(stored) / 60_000_000,
            files.len()
        ),
    );
    Vec::new()
}

/// `--since`: every chain head an earlier report saw must still be there, with the same entry hash.
fn check_expected_heads(
    options: &VerifyOptions,
    hashes: &BTreeMap<(String, i32, u64), String>,
    report: &mut VerifyReport,
) {
    for expected in &options.expected_heads {
        let still = report
            .heads
            .iter()
            .find(|h| h.ingest_source == expected.ingest_source && h.partition == expected.partition);
        let object = format!("{}/{}#{}", expected.ingest_source, expected.partition, expected.seq);
        match still {
            None => report.find("chain_missing", object, "a chain recorded earlier is gone"),
            Some(h) if h.seq < expected.seq => report.find(
                "chain_truncated",
                object,
                format!("the chain ends at entry {} but an earlier report saw entry {}", h.seq, expected.seq),
            ),
            Some(_) => {
                let key = (expected.ingest_source.clone(), expected.partition, expected.seq);
                if hashes.get(&key) != Some(&expected.entry_hash) {
                    report.find("chain_rewritten", object, "the entry an earlier report saw has another hash now");
                }
            }
        }
    }
}

/// Reads and hashes the files, in parallel; compares each with what its manifest entry says.
async fn check_files(archive: &Archive, to_check: Vec<FileCheck>, concurrency: usize, report: &mut VerifyReport) {
    let store = archive.object_store();
    let results: Vec<(FileCheck, HashOutcome)> = futures::stream::iter(to_check.into_iter().map(|check| {
        let store = store.clone();
        let path = archive.absolute(&Path::from(check.path.as_str()));
        async move {
            let outcome = if check.blob { hash_blob(store, path).await } else { hash_file(store, path).await };
            (check, outcome)
        }
    }))
    .buffer_unordered(concurrency)
    .collect()
    .await;
    for (check, outcome) in results {
        match outcome {
            Err(e) => report.find("file_unreadable", &check.path, e),
            Ok((sha, size, rows)) => {
                report.files_checked += 1;
                report.bytes_checked += size;
                if size != check.size {
                    report.find(
                        "file_size_mismatch",
                        &check.path,
                        format!("{size} bytes, the manifest says {}", check.size),
                    );
                }
                if sha != check.sha256 {
                    report.find(
                        "file_hash_mismatch",
                        &check.path,
                        format!("SHA-256 {sha}, the manifest says {}", check.sha256),
                    );
                }
                match rows {
                    _ if check.blob => {}
                    Some(rows) => {
                        report.rows_checked += rows;
                        if rows != check.rows {
                            report.find(
                                "file_rows_mismatch",
                                &check.path,
                                format!("{rows} rows, the manifest says {}", check.rows),
                            );
                        }
                    }
                    None => report.find("file_unreadable", &check.path, "not a readable Parquet file"),
                }
            }
        }
    }
}

/// SHA-256, size and Parquet row count of a file (rows `None` when it is no readable Parquet), or why
/// it could not be read.
type HashOutcome = std::result::Result<(String, u64, Option<u64>), String>;

async fn hash_file(store: Arc<dyn ObjectStore>, path: Path) -> HashOutcome {
    let bytes = store.get(&path).await.map_err(|e| e.to_string())?.bytes().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || {
        let sha = hex::encode(Sha256::digest(&bytes));
        let rows = parquet::file::reader::SerializedFileReader::new(bytes.clone())
            .ok()
            .map(|r| parquet::file::reader::FileReader::metadata(&r).file_metadata().num_rows() as u64);
        (sha, bytes.len() as u64, rows)
    })
    .await
    .map_err(|e| e.to_string())
}

/// SHA-256 and size of a blob, read as a stream (a blob can be far larger than memory should hold).
async fn hash_blob(store: Arc<dyn ObjectStore>, path: Path) -> HashOutcome {
    let mut stream = store.get(&path).await.map_err(|e| e.to_string())?.into_stream();
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.try_next().await.map_err(|e| e.to_string())? {
        hasher.update(&chunk);
        size += chunk.len() as u64;
    }
    Ok((hex::encode(hasher.finalize()), size, None))
}

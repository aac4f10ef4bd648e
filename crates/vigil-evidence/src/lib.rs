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
//! use vigil_schema::PartitionId;
//! let dir = tempfile::tempdir().unwrap();
//! let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
//! assert!(archive.chain_head(&PartitionId::new("file-x", 0)).await.unwrap().is_none());
//! let commit = RangeCommit { ingest_source: "file-x", partition: 0, first_offset: 1, last_offset: 1, ..RangeCommit::default() };
//! let entry = archive.commit(vigil_evidence::prepare(&commit, 3).unwrap(), None).await.unwrap();
//! assert_eq!(archive.chain_head(&PartitionId::new("file-x", 0)).await.unwrap().unwrap().last_offset, entry.last_offset);
//! # });
//! ```

mod bucket;
pub mod digest;
mod digest_check;
mod error;
pub mod expire;
pub mod failpoint;
pub mod keys;
pub mod layout;
pub mod manifest;
mod prepare;
pub mod records;
pub mod retry;
pub mod store;
pub mod verify;
pub mod versions;

use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};
use vigil_schema::{PartitionId, format_time_us};

pub use error::{Error, Result};
pub use manifest::{BLOB_KIND, ChainHead, Counts, Disposal, DisposedFile, FileEntry, ManifestEntry};

/// An evidence archive at one location.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    root: Path,
    location: String,
    bucket: Option<Arc<store::S3Bucket>>,
    /// How long its operations wait out a store that does not answer ([`retry`]).
    patience: retry::Patience,
    /// Signs digests of what this process appends ([`digest`]); `None` for an unsigned writer or a reader.
    signer: Option<Arc<digest::Signer>>,
}

impl Archive {
    /// Opens the archive at `location` for writing: a local directory (created if needed), `file://PATH`
    /// or `s3://BUCKET/PREFIX` (see [`store`] for S3 settings and credentials).
    pub fn open(location: &str) -> Result<Self> {
        let opened = store::open(location)?;
        Ok(Archive {
            store: opened.store,
            root: opened.root,
            location: vigil_schema::redact::url(location).into_owned(),
            bucket: opened.bucket,
            patience: retry::Patience::UNTIL_STORED,
            signer: None,
        })
    }

    /// Opens an archive that must already exist (for `verify`, `query`, `sample`, `expire`): a location
    /// without a `manifests/` folder is refused, so a mistyped path is an error instead of an empty,
    /// "verified" archive.
    pub async fn open_existing(location: &str) -> Result<Self> {
        let missing = |reason: &str| Error::Location {
            location: vigil_schema::redact::url(location).into_owned(),
            reason: reason.to_string(),
        };
        if let store::Location::Local(dir) = store::Location::parse(location)?
            && !dir.is_dir()
        {
            return Err(missing("no such directory; give the folder `vigil run --evidence` wrote"));
        }
        let archive = Self::open(location)?.with_patience(retry::Patience::BRIEF);
        let manifests = archive.root.clone().join("manifests");
        let first = retry::patiently(archive.patience, "list", &manifests, || async {
            archive.store.list(Some(&manifests)).try_next().await
        })
        .await
        .map_err(|source| Error::Store { operation: "list", path: manifests.to_string(), source })?;
        if first.is_none() {
            return Err(missing(
                "holds no evidence archive (no manifests/ under it); give the location `vigil run --evidence` wrote",
            ));
        }
        Ok(archive)
    }

    /// An archive on any object store under `root` (used for S3-compatible stores and tests).
    pub fn with_store(store: Arc<dyn ObjectStore>, root: Path, location: impl Into<String>) -> Self {
        let location = vigil_schema::redact::url(&location.into()).into_owned();
        Archive { store, root, location, bucket: None, patience: retry::Patience::UNTIL_STORED, signer: None }
    }

    /// How long operations wait out a store that does not answer: by default until it answers (the
    /// pipeline's write path), [`retry::Patience::BRIEF`] for archives opened with [`Archive::open_existing`].
    pub fn with_patience(mut self, patience: retry::Patience) -> Self {
        self.patience = patience;
        self
    }

    /// The object store.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The S3 bucket's own API (Object Lock), when the archive is on S3.
    pub fn bucket(&self) -> Option<&store::S3Bucket> {
        self.bucket.as_deref()
    }

    /// The root path inside the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The location as the user gave it, as shown to people (through `vigil_schema::redact::url`).
    pub fn location(&self) -> &str {
        &self.location
    }

    async fn list_dir(&self, dir: &Path) -> Result<Vec<object_store::ObjectMeta>> {
        retry::patiently(self.patience, "list", dir, || self.store.list(Some(dir)).try_collect())
            .await
            .map_err(|source| Error::Store { operation: "list", path: dir.to_string(), source })
    }

    /// Stores `bytes` at `path` (replacing what is there), waiting out a store that does not answer.
    async fn put_bytes(&self, path: &Path, bytes: Bytes) -> Result<()> {
        retry::patiently(self.patience, "put", path, || self.store.put(path, PutPayload::from(bytes.clone())))
            .await
            .map(|_| ())
            .map_err(|source| Error::Store { operation: "put", path: path.to_string(), source })
    }

    /// Every manifest entry of one source partition, oldest first.
    pub async fn chain(&self, id: &PartitionId) -> Result<Vec<ManifestEntry>> {
        let (ingest_source, partition) = (id.source(), id.partition);
        let dir = layout::manifest_dir(&self.root, ingest_source, partition);
        let mut metas = self.list_dir(&dir).await?;
        metas.retain(|m| m.location.filename().and_then(layout::entry_seq).is_some());
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        let mut entries = Vec::with_capacity(metas.len());
        for meta in metas {
            entries.push(self.read_entry(&meta.location).await?);
        }
        Ok(entries)
    }

    async fn read_bytes(&self, path: &Path) -> Result<Bytes> {
        retry::patiently(self.patience, "get", path, || async { self.store.get(path).await?.bytes().await })
            .await
            .map_err(|source| Error::Store { operation: "get", path: path.to_string(), source })
    }

    async fn read_entry(&self, path: &Path) -> Result<ManifestEntry> {
        let bytes = self.read_bytes(path).await?;
        serde_json::from_slice(&bytes).map_err(|source| Error::ManifestJson { path: path.to_string(), source })
    }

    /// Every chain of the archive (its source partition), sorted.
    pub async fn chains(&self) -> Result<Vec<PartitionId>> {
        let dir = self.root.clone().join("manifests");
        let mut out = std::collections::BTreeSet::new();
        for meta in self.list_dir(&dir).await? {
            let relative = layout::relative(&self.root, &meta.location);
            if let ["manifests", source, partition, _] = relative.split('/').collect::<Vec<_>>().as_slice()
                && let Ok(partition) = partition.parse()
            {
                out.insert(PartitionId::new(*source, partition));
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The events an entry archived, as stored (canonical schema), in file order.
    pub async fn read_events(&self, entry: &ManifestEntry) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        for file in entry.files.iter().filter(|f| f.kind == "events") {
            let path = self.absolute(&Path::from(file.path.as_str()));
            let bytes = self.read_bytes(&path).await?;
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(|e| Error::Manifest { path: file.path.clone(), reason: format!("unreadable Parquet: {e}") })?;
            for batch in reader {
                batches.push(batch?);
            }
        }
        Ok(batches)
    }

    /// Reads a small object (such as stored rule state) at `relative` under the root; `None` if absent.
    pub async fn get_object(&self, relative: &str) -> Result<Option<Bytes>> {
        let path = self.absolute(&Path::from(relative));
        match retry::patiently(self.patience, "get", &path, || async { self.store.get(&path).await?.bytes().await })
            .await
        {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(Error::Store { operation: "get", path: path.to_string(), source }),
        }
    }

    /// Writes (replaces) a small object at `relative` under the root: state beside the evidence, never
    /// evidence itself (data files and manifest entries are only ever created).
    pub async fn put_object(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        self.put_bytes(&self.absolute(&Path::from(relative)), Bytes::from(bytes)).await
    }

    /// The newest entry of one source partition's chain: where that partition resumes.
    pub async fn chain_head(&self, id: &PartitionId) -> Result<Option<ChainHead>> {
        Ok(self.resume(id).await?.head)
    }

    /// The newest entry of one source partition's chain, read without touching anything (unlike
    /// [`Archive::resume`]), with the `source_bytes` of the chain's first entry: what a file input needs
    /// to tell whether a file is the one the chain holds, and to name a new file that is not.
    pub async fn source_head(&self, id: &PartitionId) -> Result<Option<SourceHead>> {
        let (ingest_source, partition) = (id.source(), id.partition);
        let dir = layout::manifest_dir(&self.root, ingest_source, partition);
        let newest = self
            .list_dir(&dir)
            .await?
            .into_iter()
            .filter_map(|m| Some((m.location.filename().and_then(layout::entry_seq)?, m.location)))
            .max_by_key(|(seq, _)| *seq);
        let Some((seq, path)) = newest else { return Ok(None) };
        let head = ChainHead::from(&self.read_entry(&path).await?);
        let first_source_bytes = if seq == 0 {
            head.source_bytes
        } else {
            self.read_entry(&layout::manifest_path(&self.root, ingest_source, partition, 0)).await?.source_bytes
        };
        Ok(Some(SourceHead { head, first_source_bytes }))
    }

    /// Makes one source partition ready to continue: deletes the data files of a range whose writing was
    /// interrupted (a pending intent without its entry; see [`manifest`]) and returns the chain head.
    /// Call it when a partition is (re)opened, by the one writer that owns the partition.
    ///
    /// Only files of this chain's own unwritten range are deleted: a listed file must be named for this
    /// source partition and for offsets after the head (so no committed entry can list it). An intent that
    /// lists anything else (edited, or planted by someone with write access) is left in place for
    /// `vigil verify` to name, and what it lists is not touched.
    pub async fn resume(&self, id: &PartitionId) -> Result<Resume> {
        let (ingest_source, partition) = (id.source(), id.partition);
        let dir = layout::manifest_dir(&self.root, ingest_source, partition);
        let metas = self.list_dir(&dir).await?;
        let mut newest: Option<(u64, Path)> = None;
        let mut pending = Vec::new();
        for meta in metas {
            let Some(name) = meta.location.filename() else { continue };
            if let Some(seq) = layout::entry_seq(name) {
                if newest.as_ref().is_none_or(|(s, _)| seq > *s) {
                    newest = Some((seq, meta.location.clone()));
                }
            } else if layout::pending_seq(name).is_some() {
                pending.push(meta.location.clone());
            }
        }
        let head = match &newest {
            Some((_, path)) => {
                let entry = self.read_entry(path).await?;
                self.note_signed(&entry);
                Some(ChainHead::from(&entry))
            }
            None => None,
        };
        let after = head.as_ref().map(|h| h.last_offset);
        let mut removed = Vec::new();
        for intent_path in pending {
            let intent = manifest::Intent::parse(&self.read_bytes(&intent_path).await?)
                .map_err(|reason| Error::Manifest { path: intent_path.to_string(), reason })?;
            let (own, mut foreign): (Vec<String>, Vec<String>) = intent
                .files
                .into_iter()
                .partition(|f| layout::names_unwritten_range(f, ingest_source, partition, after));
            // Files of a range that was committed (only the intent's removal failed) are evidence: kept.
            if let (false, Some(head), Some(seq)) =
                (foreign.is_empty(), &head, intent_path.filename().and_then(layout::pending_seq))
            {
                let mut listed = std::collections::HashSet::new();
                for candidate in seq..=head.seq {
                    let path = layout::manifest_path(&self.root, ingest_source, partition, candidate);
                    listed.extend(self.read_entry(&path).await?.files.into_iter().map(|f| f.path));
                }
                foreign.retain(|f| !listed.contains(f));
            }
            for file in own {
                let path = self.absolute(&Path::from(file.as_str()));
                self.delete(&path).await?;
                removed.push(file);
            }
            if foreign.is_empty() {
                self.delete(&intent_path).await?;
            } else {
                tracing::warn!(
                    intent = %intent_path,
                    files = ?foreign,
                    "a pending intent lists files that are not this chain's unwritten range (edited or planted?): \
                     they are left alone, and so is the intent, for `vigil verify` to name"
                );
            }
        }
        if !removed.is_empty() {
            tracing::warn!(
                ingest_source,
                partition,
                files = removed.len(),
                "removed data files of a range that was written but never committed (the process stopped in between); the range is read again"
            );
        }
        Ok(Resume { head, removed })
    }

    async fn delete(&self, path: &Path) -> Result<()> {
        match retry::patiently(self.patience, "delete", path, || self.store.delete(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::Store { operation: "delete", path: path.to_string(), source }),
        }
    }

    /// Stores the data files of `prepared`, then its manifest entry chained after `head`. When this
    /// returns, the range is durable and its offsets may be acknowledged.
    pub async fn commit(&self, prepared: PreparedCommit, head: Option<&ChainHead>) -> Result<ManifestEntry> {
        let seq = head.map_or(0, |h| h.seq + 1);
        let entry = prepared.entry;
        let intent = if prepared.files.is_empty() && prepared.blobs.is_empty() {
            None
        } else {
            let path = layout::pending_path(&self.root, &entry.ingest_source, entry.partition, seq);
            let mut intent = manifest::Intent {
                seq,
                first_offset: entry.first_offset,
                last_offset: entry.last_offset,
                writer: self.signer.as_ref().map(|s| s.writer().to_string()).unwrap_or_default(),
                files: prepared
                    .files
                    .iter()
                    .map(|(p, _)| p.to_string())
                    .chain(prepared.blobs.iter().map(|(p, _)| p.to_string()))
                    .collect(),
                ..manifest::Intent::default()
            };
            if let Some(signer) = &self.signer {
                signer.sign_intent(&mut intent);
            }
            let bytes = serde_json::to_vec(&intent).map_err(|e| Error::Internal(e.to_string()))?;
            self.put_bytes(&path, Bytes::from(bytes)).await?;
            Some(path)
        };
        // Each file is stored whole or not at all (one PUT with its SHA-256 checksum), and storing it again
        // after an unanswered attempt stores the same bytes: a fault leaves no partial or doubled data.
        let puts = prepared.files.into_iter().map(|(path, bytes)| async move {
            let path = self.absolute(&path);
            self.put_bytes(&path, bytes).await
        });
        futures::future::try_join_all(puts).await?;
        for (path, blob) in &prepared.blobs {
            let path = self.absolute(path);
            // A blob is stored again whole (a new upload) when an attempt fails in a way that may pass.
            retry::patiently(self.patience, "put", &path, || self.put_blob(&path, blob)).await?;
        }
        failpoint::hit("before_manifest");
        let entry = self.append(entry, head.cloned()).await?;
        if let Some(intent) = intent {
            self.delete(&intent).await?;
        }
        Ok(entry)
    }

    /// Stores one dead letter's whole bytes. A spooled blob is streamed from its file (in parts when
    /// large, so memory stays bounded whatever its size) and hashed on the way: bytes that are not the
    /// ones the manifest entry will list are refused instead of stored.
    async fn put_blob(&self, path: &Path, blob: &DeadLetterBlob) -> Result<()> {
        use tokio::io::AsyncReadExt;
        let store_err = |operation: &'static str| {
            let path = path.to_string();
            move |source| Error::Store { operation, path, source }
        };
        let file = match &blob.data {
            BlobData::Memory(bytes) => {
                return self
                    .store
                    .put(path, PutPayload::from(bytes.clone()))
                    .await
                    .map(|_| ())
                    .map_err(store_err("put"));
            }
            BlobData::File(file) => file.as_ref().as_ref().to_path_buf(),
        };
        let spool_err =
            |e: std::io::Error| Error::Internal(format!("reading the spooled dead letter {}: {e}", file.display()));
        let mut reader = tokio::fs::File::open(&file).await.map_err(spool_err)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; BLOB_READ];
        let mismatch = |size: u64, sha: String| {
            Error::Internal(format!(
                "the spooled dead letter {} holds {size} bytes with SHA-256 {sha}, not the {} bytes with SHA-256 {} \
                 read from the input (changed on disk?)",
                file.display(),
                blob.size,
                blob.sha256
            ))
        };
        if blob.size <= BLOB_SINGLE_PUT as u64 {
            let mut bytes = Vec::with_capacity(blob.size as usize);
            (&mut reader).take(BLOB_SINGLE_PUT as u64 + 1).read_to_end(&mut bytes).await.map_err(spool_err)?;
            let sha = hex::encode(Sha256::digest(&bytes));
            if bytes.len() as u64 != blob.size || sha != blob.sha256 {
                return Err(mismatch(bytes.len() as u64, sha));
            }
            return self.store.put(path, PutPayload::from(bytes)).await.map(|_| ()).map_err(store_err("put"));
        }
        let upload = self.store.put_multipart(path).await.map_err(store_err("put"))?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, BLOB_PART);
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(spool_err(e));
                }
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
            if let Err(source) = writer.wait_for_capacity(2).await {
                let _ = writer.abort().await;
                return Err(store_err("put")(source));
            }
            writer.write(&buf[..n]);
        }
        let sha = hex::encode(hasher.finalize());
        if size != blob.size || sha != blob.sha256 {
            let _ = writer.abort().await;
            return Err(mismatch(size, sha));
        }
        writer.finish().await.map(|_| ()).map_err(store_err("put"))
    }

    /// Remembers `entry` as its chain's head for the next signed digest (when this archive signs).
    fn note_signed(&self, entry: &ManifestEntry) {
        if let Some(signer) = &self.signer {
            signer.note(entry);
        }
    }

    /// Chains `entry` after `head` and stores it (`PutMode::Create`, so an entry is never overwritten).
    ///
    /// If the slot is taken, someone appended first. A disposal entry (`vigil evidence expire`, run beside
    /// the pipeline) may come between a data range and its entry: the data entry is chained after it.
    /// A disposal is chained after whatever came first. Any other case is a second writer on one
    /// partition, which is refused.
    async fn append(&self, mut entry: ManifestEntry, mut head: Option<ChainHead>) -> Result<ManifestEntry> {
        loop {
            entry.seq = head.as_ref().map_or(0, |h| h.seq + 1);
            entry.prev_hash = head.as_ref().map(|h| h.entry_hash.clone()).unwrap_or_default();
            if entry.disposal.is_some() {
                let last = head.as_ref().map_or(-1, |h| h.last_offset);
                (entry.first_offset, entry.last_offset) = (last, last);
                // The chain head still says which bytes of the file the chain holds.
                entry.source_bytes = head.as_ref().and_then(|h| h.source_bytes);
                entry.source_prefix_sha256 = head.as_ref().and_then(|h| h.source_prefix_sha256.clone());
            }
            entry.written_at = format_time_us(now_us());
            let sealed = entry.clone().seal();
            let path = layout::manifest_path(&self.root, &sealed.ingest_source, sealed.partition, sealed.seq);
            let bytes = serde_json::to_vec_pretty(&sealed).map_err(|e| Error::Internal(e.to_string()))?;
            let payload = PutPayload::from(bytes);
            let put = || {
                let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
                self.store.put_opts(&path, payload.clone(), options)
            };
            match retry::patiently(self.patience, "put", &path, put).await {
                Ok(_) => {
                    self.note_signed(&sealed);
                    return Ok(sealed);
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let newer = self.read_entry(&path).await?;
                    if newer.entry_hash == sealed.entry_hash {
                        // An earlier attempt of this very put was stored but its answer was lost.
                        tracing::info!(entry = %path, "manifest entry was stored by an attempt whose answer was lost");
                        self.note_signed(&sealed);
                        return Ok(sealed);
                    }
                    let chained = newer.prev_hash == sealed.prev_hash;
                    if !(chained && (newer.disposal.is_some() || entry.disposal.is_some())) {
                        return Err(Error::SecondWriter {
                            chain: format!("{}/{}", sealed.ingest_source, sealed.partition),
                            seq: sealed.seq,
                        });
                    }
                    head = Some(ChainHead::from(&newer));
                }
                Err(source) => return Err(Error::Store { operation: "put", path: path.to_string(), source }),
            }
        }
    }
}

/// A source partition ready to continue, from [`Archive::resume`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// The newest entry of the chain; `None` for a partition never archived.
    pub head: Option<ChainHead>,
    /// Data files of an interrupted range that were deleted (paths relative to the archive root).
    pub removed: Vec<String>,
}

/// The newest entry of a chain with what identifies a file input's chain, from [`Archive::source_head`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHead {
    /// The newest entry.
    pub head: ChainHead,
    /// `source_bytes` of the chain's first entry (fixed for good, unlike the head's); `None` on a chain
    /// written before the field existed.
    pub first_source_bytes: Option<u64>,
}

/// The content of a file input that a range's entry commits to: its length through the range's last
/// record and the SHA-256 of those bytes (see [`ManifestEntry::source_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePrefix {
    /// Bytes of content.
    pub bytes: u64,
    /// Hex SHA-256 of them.
    pub sha256: String,
}

/// Where a blob's bytes are until they are archived.
#[derive(Clone)]
pub enum BlobData {
    /// In memory (a Kafka message: bounded by the broker's maximum message size).
    Memory(Bytes),
    /// In a file the reader spooled them to (a temporary file, removed when the last handle is dropped).
    File(Arc<dyn AsRef<std::path::Path> + Send + Sync>),
}

impl std::fmt::Debug for BlobData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobData::Memory(b) => write!(f, "Memory({} bytes)", b.len()),
            BlobData::File(p) => write!(f, "File({})", p.as_ref().as_ref().display()),
        }
    }
}

/// One dead letter's whole bytes, archived as its own object beside the dead-letter Parquet (whose row
/// keeps a prefix and names the blob). Listed in the manifest entry with size and SHA-256.
#[derive(Debug, Clone)]
pub struct DeadLetterBlob {
    /// Offset of the record.
    pub offset: i64,
    /// Its size in bytes.
    pub size: u64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// The bytes.
    pub data: BlobData,
}

impl DeadLetterBlob {
    /// A blob of bytes held in memory.
    pub fn in_memory(offset: i64, bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        DeadLetterBlob {
            offset,
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            data: BlobData::Memory(bytes),
        }
    }

    /// A blob spooled to `file`, of `size` bytes hashing to `sha256` (checked again when it is stored).
    pub fn spooled(
        offset: i64,
        file: Arc<dyn AsRef<std::path::Path> + Send + Sync>,
        size: u64,
        sha256: String,
    ) -> Self {
        DeadLetterBlob { offset, size, sha256, data: BlobData::File(file) }
    }
}

/// Blobs up to this size are stored with one request; larger ones in parts of [`BLOB_PART`].
const BLOB_SINGLE_PUT: usize = 8 << 20;
const BLOB_PART: usize = 8 << 20;
const BLOB_READ: usize = 1 << 20;

/// Current UTC time in microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

pub use prepare::{PreparedCommit, RangeCommit, prepare};

impl Archive {
    /// Prefixes a root-relative path prepared by [`prepare`] with this archive's root.
    fn absolute(&self, relative: &Path) -> Path {
        Path::from_iter(self.root.parts().chain(relative.parts()))
    }
}

#[cfg(test)]
mod tests;

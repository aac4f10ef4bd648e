//! Manifest entries: the archive's record of what is durable, one hash chain per source partition.
//!
//! One entry is written per committed range of one source partition, after every data file of that range
//! is stored: it lists each file (path, SHA-256, size, rows, time range), the offset range covered, the
//! counts, the schema version and rule pack hash, and the hash of the previous entry. The entry is the
//! checkpoint: a restarted pipeline resumes each partition after the `last_offset` of its newest entry,
//! and only then may a source acknowledge (commit) those offsets. Entries are separate immutable objects
//! (`PutMode::Create`), since object stores do not append.
//!
//! While a range is being written, a pending intent (`pending-{seq}.json` beside the entries) lists its
//! data files; it is removed once the entry is stored. A crash between the two leaves the intent, and
//! [`crate::Archive::resume`] deletes the uncommitted files it lists before the partition resumes, so
//! a replay that cuts its ranges at other offsets leaves no stray rows behind.
//!
//! A file's chain also records which bytes it holds: each entry of a file input carries `source_bytes`,
//! the length of the file's (decompressed) content through the end of the entry's last record, and
//! `source_prefix_sha256`, the SHA-256 of that content prefix. A file is the same file as a chain only
//! when its first `source_bytes` bytes hash to the chain head's `source_prefix_sha256` (see
//! `vigil_pipeline::source`). Entries written before these fields existed have neither and load as before.
//!
//! A dead letter too large to keep in a Parquet row (a record over `max_record_bytes`, a document over
//! `max_document_bytes`) is stored whole as its own object, a blob ([`BLOB_KIND`], see
//! [`crate::layout::dead_letter_blob_path`]), listed in its entry with its size, SHA-256 and the offset
//! of the record, so `vigil verify` checks it like every other file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Format version of manifest entries.
pub const MANIFEST_VERSION: u32 = 1;

/// [`FileEntry::kind`] of a dead letter's whole bytes, stored as one object.
pub const BLOB_KIND: &str = "dead_letter_blob";

/// One data file of a committed range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// `events`, `alerts`, `dead_letters`, or [`BLOB_KIND`] (one dead letter's whole bytes, not Parquet).
    pub kind: String,
    /// Path relative to the archive root.
    pub path: String,
    /// Hex SHA-256 of the object's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows in the file (0 for a blob).
    pub rows: u64,
    /// Earliest event/alert time in the file (RFC 3339), when it has one.
    pub time_min: Option<String>,
    /// Latest event/alert time in the file (RFC 3339), when it has one.
    pub time_max: Option<String>,
    /// A blob: the offset of the dead letter whose bytes it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// Counts of one committed range; `events + dead_letters` is every record read in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Records archived as events.
    pub events: u64,
    /// Records archived as dead letters.
    pub dead_letters: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Offsets in the range that held no record (blank lines; Kafka transaction markers and compacted
    /// records).
    pub skipped: u64,
    /// Offsets in the range that were never read because the source no longer had them (Kafka retention
    /// deleted them first): a completeness break, recorded rather than hidden.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost: u64,
    /// Rows of a record table (`rules`, `triage`; see [`crate::records`]): one offset each.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub records: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One manifest entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// Position in this partition's chain, from 0.
    pub seq: u64,
    /// Kafka topic or `file-<fingerprint>`.
    pub ingest_source: String,
    /// Kafka partition, 0 for files.
    pub partition: i32,
    /// First offset covered.
    pub first_offset: i64,
    /// Last offset covered.
    pub last_offset: i64,
    /// Input format.
    pub format: String,
    /// Where the records were read (file path, `-` for stdin, broker/topic), for people.
    pub input: String,
    /// The data files written.
    pub files: Vec<FileEntry>,
    /// Counts.
    pub counts: Counts,
    /// Canonical schema version.
    pub schema_version: u32,
    /// Hash of the active rule pack.
    pub rule_pack_hash: String,
    /// File inputs: bytes of the file's (decompressed) content through the end of this entry's last record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_bytes: Option<u64>,
    /// File inputs: hex SHA-256 of the first `source_bytes` bytes of the file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_prefix_sha256: Option<String>,
    /// Set on an entry that records a completeness break instead of data: why the offsets
    /// `first_offset..=last_offset` were not read. Such an entry has no files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_reason: Option<String>,
    /// Set on an entry that records the disposal of data files past retention (`vigil evidence expire`)
    /// instead of new data; its offsets repeat the previous entry's `last_offset` and it has no files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposal: Option<Disposal>,
    /// When the entry was written (RFC 3339).
    pub written_at: String,
    /// `entry_hash` of the previous entry in this chain; empty for the first.
    pub prev_hash: String,
    /// Hex SHA-256 of this entry serialized with `entry_hash` empty.
    pub entry_hash: String,
}

impl ManifestEntry {
    /// The hash this entry should carry: SHA-256 of its JSON with `entry_hash` empty.
    pub fn compute_hash(&self) -> String {
        let mut unsealed = self.clone();
        unsealed.entry_hash.clear();
        // Serializing a struct of strings and numbers cannot fail.
        let bytes = serde_json::to_vec(&unsealed).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// Sets `entry_hash`.
    pub fn seal(mut self) -> Self {
        self.entry_hash = self.compute_hash();
        self
    }
}

/// Data files deleted because their retention ended, recorded in the chain they belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposal {
    /// The retention that ended, in days.
    pub retention_days: u32,
    /// Sequence numbers of the entries whose files were deleted.
    pub entries: Vec<u64>,
    /// The deleted files (paths relative to the archive root), with the hashes they had.
    pub files: Vec<DisposedFile>,
    /// The minimum retention in force when it was written (`[evidence] min_retention_days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_retention_days: Option<u32>,
    /// `vigil evidence expire --allow-short-retention` disposed of evidence below that minimum.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub floor_overridden: bool,
}

/// One deleted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisposedFile {
    /// Path relative to the archive root.
    pub path: String,
    /// Its SHA-256 when it was written.
    pub sha256: String,
}

impl ManifestEntry {
    /// An entry that records data (neither a disposal nor a lost range).
    pub fn has_data(&self) -> bool {
        self.disposal.is_none() && self.lost_reason.is_none()
    }
}

/// A pending intent (`pending-{seq}.json`): the data files a range is about to write, stored before
/// them and removed after its entry. Left behind, it tells the next writer what to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The entry slot the range will take.
    pub seq: u64,
    /// First offset of the range.
    pub first_offset: i64,
    /// Last offset of the range.
    pub last_offset: i64,
    /// The writer ([`crate::digest::Signer::writer`]); empty for an unsigned writer.
    #[serde(default)]
    pub writer: String,
    /// The data files, relative to the archive root.
    pub files: Vec<String>,
    /// The key that signed it (a signing writer's); empty when unsigned.
    #[serde(default)]
    pub key_id: String,
    /// Base64 Ed25519 signature of its compact JSON with this field empty; empty when unsigned.
    #[serde(default)]
    pub signature: String,
}

impl Intent {
    /// Reads an intent; an intent written before this format is a bare list of files.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Intent, String> {
        if let Ok(files) = serde_json::from_slice::<Vec<String>>(bytes) {
            return Ok(Intent { files, ..Intent::default() });
        }
        serde_json::from_slice(bytes).map_err(|e| format!("not a pending intent: {e}"))
    }

    /// The bytes the signature is over: the compact JSON with `signature` empty.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        serde_json::to_vec(&unsigned).unwrap_or_default()
    }
}

/// The newest entry of a chain: where a partition resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash (the next entry's `prev_hash`).
    pub entry_hash: String,
    /// The last offset it covers; resume after it.
    pub last_offset: i64,
    /// File inputs: the committed content length ([`ManifestEntry::source_bytes`]).
    pub source_bytes: Option<u64>,
    /// File inputs: the SHA-256 of the committed content ([`ManifestEntry::source_prefix_sha256`]).
    pub source_prefix_sha256: Option<String>,
}

impl From<&ManifestEntry> for ChainHead {
    fn from(e: &ManifestEntry) -> Self {
        ChainHead {
            seq: e.seq,
            entry_hash: e.entry_hash.clone(),
            last_offset: e.last_offset,
            source_bytes: e.source_bytes,
            source_prefix_sha256: e.source_prefix_sha256.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_is_stable_and_detects_edits() {
        let entry = ManifestEntry {
            version: 1,
            seq: 0,
            ingest_source: "t".into(),
            partition: 0,
            first_offset: 1,
            last_offset: 2,
            format: "cloudtrail".into(),
            input: "x".into(),
            files: vec![],
            counts: Counts::default(),
            schema_version: 1,
            rule_pack_hash: "h".into(),
            source_bytes: None,
            source_prefix_sha256: None,
            lost_reason: None,
            disposal: None,
            written_at: "now".into(),
            prev_hash: String::new(),
            entry_hash: String::new(),
        }
        .seal();
        assert_eq!(entry.entry_hash, entry.compute_hash());
        let mut edited = entry.clone();
        edited.last_offset = 3;
        assert_ne!(edited.compute_hash(), entry.entry_hash);
    }

    #[test]
    fn entries_without_the_source_prefix_load_and_keep_their_hash() {
        // An entry as written before `source_bytes` / `source_prefix_sha256` / a file's `offset` existed.
        let old = r#"{"version":1,"seq":0,"ingest_source":"file-ab","partition":0,"first_offset":1,"last_offset":2,
            "format":"cloudtrail","input":"x","files":[{"kind":"events","path":"events/a.parquet","sha256":"00",
            "size":1,"rows":2,"time_min":null,"time_max":null}],"counts":{"events":2,"dead_letters":0,"alerts":0,
            "skipped":0},"schema_version":1,"rule_pack_hash":"h","written_at":"now","prev_hash":"","entry_hash":""}"#;
        let entry: ManifestEntry = serde_json::from_str(old).unwrap();
        assert_eq!((entry.source_bytes, entry.files[0].offset), (None, None));
        let sealed = entry.seal();
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(!text.contains("source_bytes") && !text.contains("\"offset\""), "{text}");
        let head = ChainHead::from(&sealed);
        assert_eq!((head.source_bytes, head.source_prefix_sha256), (None, None));
    }
}

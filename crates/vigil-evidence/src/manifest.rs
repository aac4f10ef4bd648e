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

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Format version of manifest entries.
pub const MANIFEST_VERSION: u32 = 1;

/// One data file of a committed range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// `events`, `alerts` or `dead_letters`.
    pub kind: String,
    /// Path relative to the archive root.
    pub path: String,
    /// Hex SHA-256 of the object's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows in the file.
    pub rows: u64,
    /// Earliest event/alert time in the file (RFC 3339), when it has one.
    pub time_min: Option<String>,
    /// Latest event/alert time in the file (RFC 3339), when it has one.
    pub time_max: Option<String>,
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

/// The newest entry of a chain: where a partition resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash (the next entry's `prev_hash`).
    pub entry_hash: String,
    /// The last offset it covers; resume after it.
    pub last_offset: i64,
}

impl From<&ManifestEntry> for ChainHead {
    fn from(e: &ManifestEntry) -> Self {
        ChainHead { seq: e.seq, entry_hash: e.entry_hash.clone(), last_offset: e.last_offset }
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
}

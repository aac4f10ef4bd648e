//! Signed digests: what makes the archive prove itself to someone who holds only the public key.
//!
//! A manifest chain's hashes show that entries were not edited one by one, but anyone with write access
//! can recompute plain SHA-256: rewrite an entry, re-hash the chain, or cut its tail. So every writer
//! (a `vigil run`, a consumer-group member, `vigil evidence expire`) also signs **digests**, modelled on
//! AWS CloudTrail's log file integrity validation:
//!
//! ```text
//! {root}/digests/{seq:012}.json    one chain of digests for the whole archive, every writer appends to it
//! ```
//!
//! A digest names, for every chain the writer appended to (or resumed) since its previous digest, the
//! head: entry `seq`, `entry_hash`, the offsets covered and when the head was written. It names the
//! previous digest of the archive by the SHA-256 of its bytes (`prev_sha256`), the key it is signed with
//! (`key_id`, see [`crate::keys`]), the writer, the interval it promises to sign at (`interval_secs`), and
//! whether it is the writer's last (`closing`, written at shutdown). The signature is Ed25519 over the
//! digest's compact JSON with `signature` empty.
//!
//! A writer signs a digest at least every `[evidence] digest_interval` (default 1 h) while it runs, even
//! with nothing new (a heartbeat: the writer was alive and wrote nothing), and once more at shutdown.
//! Digests are created with `PutMode::Create`: two writers racing for one slot both end up in the chain,
//! one after the other. `vigil verify --public-key` checks them ([`crate::verify`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::keys::PrivateKey;
use crate::manifest::ManifestEntry;
use crate::{Archive, Error, Result, layout, now_us, retry};

/// Format version of digests.
pub const DIGEST_VERSION: u32 = 1;

/// Default `[evidence] digest_interval`: one hour, as CloudTrail.
pub const DEFAULT_DIGEST_INTERVAL: Duration = Duration::from_secs(3600);

/// One signed digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// [`DIGEST_VERSION`].
    pub version: u32,
    /// Position in the archive's digest chain, from 0 (also its object name).
    pub seq: u64,
    /// Hex SHA-256 of the bytes of digest `seq - 1`; empty for the first.
    pub prev_sha256: String,
    /// Id of the key that signed it ([`crate::keys`]).
    pub key_id: String,
    /// The writer: host, process and a random suffix, fixed for one run.
    pub writer: String,
    /// When the writer started (RFC 3339, the writer's clock).
    pub writer_started_at: String,
    /// Start of the period this digest covers: the writer's previous digest, or its start.
    pub period_start: String,
    /// When it was signed (RFC 3339, the writer's clock).
    pub written_at: String,
    /// The writer signs at least this often while it runs.
    pub interval_secs: u64,
    /// The writer's last digest (written at shutdown): nothing it wrote comes after.
    pub closing: bool,
    /// The head of every chain the writer appended to or resumed since its previous digest.
    pub heads: Vec<SignedHead>,
    /// Base64 Ed25519 signature of the digest's compact JSON with this field empty.
    pub signature: String,
}

/// A chain head as a digest signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    /// Kafka topic or `file-<fingerprint>`.
    pub ingest_source: String,
    /// Partition.
    pub partition: i32,
    /// Sequence number of the head entry.
    pub seq: u64,
    /// Its `entry_hash`.
    pub entry_hash: String,
    /// First offset appended since the writer's previous digest (the head's own first offset when the
    /// chain was only resumed).
    pub first_offset: i64,
    /// Last offset the head covers.
    pub last_offset: i64,
    /// When the head entry was written.
    pub written_at: String,
}

impl Digest {
    /// The bytes the signature is over: the compact JSON with `signature` empty.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        // A struct of strings and numbers always serializes.
        serde_json::to_vec(&unsigned).unwrap_or_default()
    }
}

/// Path of digest `seq`.
pub fn digest_path(root: &Path, seq: u64) -> Path {
    root.clone().join("digests").join(format!("{seq:012}.json").as_str())
}

/// The sequence number of a digest's object name (`000000000007.json` -> 7).
pub fn digest_seq(name: &str) -> Option<u64> {
    layout::entry_seq(name)
}

/// A writer's signing state, shared by the clones of its [`Archive`].
pub struct Signer {
    key: PrivateKey,
    writer: String,
    started_at: String,
    interval: Duration,
    /// Heads to sign in the next digest, by chain.
    heads: Mutex<BTreeMap<(String, i32), SignedHead>>,
    /// Serializes digest writes; the newest digest of the archive this writer knows.
    chain: tokio::sync::Mutex<Option<ChainTail>>,
}

/// The newest digest known: its seq and the SHA-256 of its bytes, and when this writer last signed.
#[derive(Debug, Clone)]
struct ChainTail {
    newest: Option<(u64, String)>,
    period_start: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key.id()).field("writer", &self.writer).finish()
    }
}

impl Signer {
    /// A signer with `key`, promising a digest at least every `interval`.
    pub fn new(key: PrivateKey, interval: Duration) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "host".into());
        let mut suffix = [0u8; 4];
        let _ = getrandom::fill(&mut suffix);
        let writer = format!("{host}/{}/{}", std::process::id(), hex::encode(suffix));
        Signer {
            key,
            writer,
            started_at: vigil_schema::format_time_us(now_us()),
            interval: interval.max(Duration::from_secs(1)),
            heads: Mutex::new(BTreeMap::new()),
            chain: tokio::sync::Mutex::new(None),
        }
    }

    /// The key id it signs with.
    pub fn key_id(&self) -> &str {
        self.key.id()
    }

    /// How often it signs.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The writer's name in its digests.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// Signs `intent` (a pending intent) with this writer's key.
    pub(crate) fn sign_intent(&self, intent: &mut crate::manifest::Intent) {
        intent.key_id = self.key.id().to_string();
        intent.signature.clear();
        intent.signature = self.key.sign(&intent.signed_bytes());
    }

    /// Remembers `entry` as its chain's head, to sign in the next digest.
    pub(crate) fn note(&self, entry: &ManifestEntry) {
        let Ok(mut heads) = self.heads.lock() else { return };
        let key = (entry.ingest_source.clone(), entry.partition);
        let first_offset = heads.get(&key).map_or(entry.first_offset, |h| h.first_offset.min(entry.first_offset));
        heads.insert(
            key,
            SignedHead {
                ingest_source: entry.ingest_source.clone(),
                partition: entry.partition,
                seq: entry.seq,
                entry_hash: entry.entry_hash.clone(),
                first_offset,
                last_offset: entry.last_offset,
                written_at: entry.written_at.clone(),
            },
        );
    }

    fn take_heads(&self) -> Vec<SignedHead> {
        self.heads.lock().map(|mut h| std::mem::take(&mut *h).into_values().collect()).unwrap_or_default()
    }

    /// Puts heads back after a failed digest write (newer heads noted meanwhile win).
    fn restore_heads(&self, heads: Vec<SignedHead>) {
        let Ok(mut now) = self.heads.lock() else { return };
        for head in heads {
            let key = (head.ingest_source.clone(), head.partition);
            match now.get_mut(&key) {
                Some(newer) => newer.first_offset = newer.first_offset.min(head.first_offset),
                None => {
                    now.insert(key, head);
                }
            }
        }
    }
}

impl Archive {
    /// This archive, signing digests with `signer` for everything it appends or resumes.
    pub fn with_signer(mut self, signer: std::sync::Arc<Signer>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The signer, when the archive signs.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_deref()
    }

    /// Whether the archive holds any digest (it is signed: every writer needs the key).
    pub async fn is_signed(&self) -> Result<bool> {
        use futures::TryStreamExt;
        let dir = self.root.clone().join("digests");
        let first =
            retry::patiently(self.patience, "list", &dir, || async { self.store.list(Some(&dir)).try_next().await })
                .await
                .map_err(|source| Error::Store { operation: "list", path: dir.to_string(), source })?;
        Ok(first.is_some())
    }

    /// The newest digest of the archive: its seq and the SHA-256 of its bytes.
    async fn newest_digest(&self) -> Result<Option<(u64, String)>> {
        let dir = self.root.clone().join("digests");
        let newest = self
            .list_dir(&dir)
            .await?
            .into_iter()
            .filter_map(|m| Some((m.location.filename().and_then(digest_seq)?, m.location)))
            .max_by_key(|(seq, _)| *seq);
        let Some((seq, path)) = newest else { return Ok(None) };
        let bytes = self.read_bytes(&path).await?;
        Ok(Some((seq, hex::encode(Sha256::digest(&bytes)))))
    }

    /// Signs and stores a digest of every head appended or resumed since the last one (see the module
    /// docs); `closing` marks the writer's last. `None` when the archive does not sign. On failure the
    /// heads are kept for the next attempt.
    pub async fn sign_digest(&self, closing: bool) -> Result<Option<Digest>> {
        let Some(signer) = self.signer.clone() else { return Ok(None) };
        let mut tail = signer.chain.lock().await;
        if tail.is_none() {
            *tail = Some(ChainTail { newest: self.newest_digest().await?, period_start: signer.started_at.clone() });
        }
        let Some(known) = tail.as_mut() else { return Err(Error::Internal("digest chain state lost".into())) };
        let heads = signer.take_heads();
        let mut digest = Digest {
            version: DIGEST_VERSION,
            seq: 0,
            prev_sha256: String::new(),
            key_id: signer.key.id().to_string(),
            writer: signer.writer.clone(),
            writer_started_at: signer.started_at.clone(),
            period_start: known.period_start.clone(),
            written_at: String::new(),
            interval_secs: signer.interval.as_secs(),
            closing,
            heads,
            signature: String::new(),
        };
        loop {
            (digest.seq, digest.prev_sha256) = match &known.newest {
                Some((seq, sha)) => (seq + 1, sha.clone()),
                None => (0, String::new()),
            };
            digest.written_at = vigil_schema::format_time_us(now_us());
            digest.signature.clear();
            digest.signature = signer.key.sign(&digest.signed_bytes());
            let bytes = match serde_json::to_vec_pretty(&digest) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    signer.restore_heads(digest.heads);
                    return Err(Error::Internal(e.to_string()));
                }
            };
            let path = digest_path(&self.root, digest.seq);
            let put = || {
                let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
                self.store.put_opts(&path, PutPayload::from(bytes.clone()), options)
            };
            let stored = match retry::patiently(self.patience, "put", &path, put).await {
                Ok(_) => true,
                Err(object_store::Error::AlreadyExists { .. }) => {
                    // Another writer took the slot, or an attempt of ours whose answer was lost.
                    match self.read_bytes(&path).await {
                        Ok(there) if there == bytes => true,
                        Ok(there) => {
                            known.newest = Some((digest.seq, hex::encode(Sha256::digest(&there))));
                            false
                        }
                        Err(e) => {
                            signer.restore_heads(digest.heads);
                            return Err(e);
                        }
                    }
                }
                Err(source) => {
                    signer.restore_heads(digest.heads);
                    return Err(Error::Store { operation: "put", path: path.to_string(), source });
                }
            };
            if stored {
                known.newest = Some((digest.seq, hex::encode(Sha256::digest(&bytes))));
                known.period_start = digest.written_at.clone();
                tracing::debug!(seq = digest.seq, heads = digest.heads.len(), closing, "digest signed");
                return Ok(Some(digest));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RangeCommit, prepare};
    use std::sync::Arc;

    #[tokio::test]
    async fn digests_chain_sign_and_name_heads() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate().unwrap();
        let public = key.public();
        let signer = Arc::new(Signer::new(key, Duration::from_secs(60)));
        let archive = Archive::open(dir.path().to_str().unwrap()).unwrap().with_signer(signer);
        assert!(!archive.is_signed().await.unwrap());
        let commit = RangeCommit {
            ingest_source: "file-x",
            partition: 0,
            first_offset: 1,
            last_offset: 5,
            ..Default::default()
        };
        let entry = archive.commit(prepare(&commit, 1).unwrap(), None).await.unwrap();
        let first = archive.sign_digest(false).await.unwrap().unwrap();
        assert_eq!((first.seq, first.prev_sha256.as_str(), first.closing), (0, "", false));
        assert_eq!(first.heads.len(), 1);
        assert_eq!((first.heads[0].seq, &first.heads[0].entry_hash), (0, &entry.entry_hash));
        assert!(public.verifies(&first.signed_bytes(), &first.signature));
        // A second writer appends between: the next digest chains after it.
        let other = Arc::new(Signer::new(PrivateKey::generate().unwrap(), Duration::from_secs(60)));
        let second_writer = Archive::open(dir.path().to_str().unwrap()).unwrap().with_signer(other);
        let theirs = second_writer.sign_digest(true).await.unwrap().unwrap();
        assert_eq!(theirs.seq, 1);
        let last = archive.sign_digest(true).await.unwrap().unwrap();
        assert_eq!(last.seq, 2);
        assert!(last.heads.is_empty() && last.closing);
        let bytes = std::fs::read(dir.path().join("digests/000000000001.json")).unwrap();
        assert_eq!(last.prev_sha256, hex::encode(Sha256::digest(&bytes)));
        assert!(archive.is_signed().await.unwrap());
        let mut edited = last.clone();
        edited.closing = false;
        assert!(!public.verifies(&edited.signed_bytes(), &last.signature));
    }
}

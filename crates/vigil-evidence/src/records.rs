//! Records the archive keeps beside the data it was given: the text of every rule pack that ran
//! (`rules`) and the triage of alerts (`triage`). Both are tables auditors query like `events`
//! (`vigil query "SELECT ... FROM rules"`), and both are chained, hashed and signed like every data file:
//!
//! ```text
//! {root}/rules/{sha256}.parquet         one rule pack: a row per rule (file, header fields, full text, hash)
//! {root}/triage/{sha256}.parquet        one triage record of one alert
//! {root}/manifests/@rules/0/{seq}.json  the chain of rule packs, one entry per pack ever run
//! {root}/manifests/@triage/0/{seq}.json the chain of triage records, appended, never edited
//! ```
//!
//! The chain names start with `@`, which no Kafka topic and no file input (`file-...`) can, so they never
//! meet a source's chain. An entry covers one offset per row (`counts.records`), so `vigil verify` checks
//! these chains like any other: contiguous offsets, file hash, size and rows, and (with a signing key)
//! the digest that signs their head. A rule text edited in the archive is a `file_hash_mismatch` naming the
//! `rules/` file.
//!
//! Files are named by the SHA-256 of their bytes and created with `PutMode::Create`, so two writers never
//! overwrite each other. A rule pack is recorded once: [`Archive::record_rules`] first looks for an entry
//! with the pack's hash. Two pipeline members starting together may race for one slot: the loser reads
//! the winner's entry and, when it holds the same pack, removes its own file and is done.

use std::sync::Arc;

use arrow::array::{ArrayRef, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};
use vigil_schema::{PartitionId, format_time_us};

use crate::manifest::{ChainHead, Counts, FileEntry, MANIFEST_VERSION, ManifestEntry};
use crate::{Archive, Error, Result, retry};

/// Chain (ingest source) of rule packs.
pub const RULES_CHAIN: &str = "@rules";
/// Chain (ingest source) of triage records.
pub const TRIAGE_CHAIN: &str = "@triage";
/// Data kind (top folder and [`FileEntry::kind`]) of rule texts.
pub const RULES_KIND: &str = "rules";
/// Data kind of triage records.
pub const TRIAGE_KIND: &str = "triage";

/// One rule of a pack, as it ran: what [`Archive::record_rules`] stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleText {
    /// Rule id.
    pub rule_id: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: String,
    /// SOC 2 criteria it serves.
    pub criteria: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Kind (`stateless`, `threshold`, ...).
    pub kind: String,
    /// Description from the header.
    pub description: String,
    /// Remediation from the header.
    pub remediation: String,
    /// The file it was loaded from, as given.
    pub file: String,
    /// The file's whole text as read (header included; a Sigma rule's YAML).
    pub text: String,
    /// The rule hash alerts carry (`rule_hash`).
    pub rule_hash: String,
}

/// Schema of the `rules` table.
pub fn rules_schema() -> SchemaRef {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    Arc::new(Schema::new(vec![
        Field::new("pack_hash", DataType::Utf8, false),
        Field::new("rule_id", DataType::Utf8, false),
        Field::new("rule_hash", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("criteria", list.clone(), false),
        Field::new("tags", list, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, false),
        Field::new("remediation", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("text_sha256", DataType::Utf8, false),
        Field::new(
            "recorded_at",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// Triage statuses `vigil alerts triage --status` accepts.
pub const TRIAGE_STATUSES: [&str; 4] = ["open", "investigating", "resolved", "false_positive"];

/// One triage record: what someone decided about one alert, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriageRecord {
    /// The alert.
    pub alert_id: String,
    /// Its rule (copied from the alert, for queries).
    pub rule_id: String,
    /// When the alert was raised (microseconds).
    pub alert_time_us: i64,
    /// One of [`TRIAGE_STATUSES`].
    pub status: String,
    /// Who triaged it.
    pub triaged_by: String,
    /// A ticket reference.
    pub ticket: Option<String>,
    /// A note.
    pub note: Option<String>,
    /// When it was recorded (microseconds).
    pub time_us: i64,
}

/// Schema of the `triage` table.
pub fn triage_schema() -> SchemaRef {
    let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("triage_id", DataType::Utf8, false),
        Field::new("alert_id", DataType::Utf8, false),
        Field::new("rule_id", DataType::Utf8, false),
        Field::new("alert_time", ts.clone(), false),
        Field::new("status", DataType::Utf8, false),
        Field::new("triaged_by", DataType::Utf8, false),
        Field::new("ticket", DataType::Utf8, true),
        Field::new("note", DataType::Utf8, true),
        Field::new("time", ts, false),
    ]))
}

fn list_array(values: impl Iterator<Item = Vec<String>>) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new());
    for list in values {
        for v in list {
            builder.values().append_value(v);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

fn texts<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn rules_batch(pack_hash: &str, rules: &[RuleText], recorded_us: i64) -> Result<RecordBatch> {
    let n = rules.len();
    let columns: Vec<ArrayRef> = vec![
        texts(std::iter::repeat_n(pack_hash, n)),
        texts(rules.iter().map(|r| r.rule_id.as_str())),
        texts(rules.iter().map(|r| r.rule_hash.as_str())),
        texts(rules.iter().map(|r| r.title.as_str())),
        texts(rules.iter().map(|r| r.severity.as_str())),
        list_array(rules.iter().map(|r| r.criteria.clone())),
        list_array(rules.iter().map(|r| r.tags.clone())),
        texts(rules.iter().map(|r| r.kind.as_str())),
        texts(rules.iter().map(|r| r.description.as_str())),
        texts(rules.iter().map(|r| r.remediation.as_str())),
        texts(rules.iter().map(|r| r.file.as_str())),
        texts(rules.iter().map(|r| r.text.as_str())),
        Arc::new(StringArray::from_iter_values(rules.iter().map(|r| hex::encode(Sha256::digest(r.text.as_bytes()))))),
        Arc::new(TimestampMicrosecondArray::from(vec![recorded_us; n]).with_timezone("UTC")),
    ];
    Ok(RecordBatch::try_new(rules_schema(), columns)?)
}

fn triage_batch(record: &TriageRecord) -> Result<(RecordBatch, String)> {
    let mut hasher = Sha256::new();
    for part in [
        record.alert_id.as_str(),
        &record.status,
        &record.triaged_by,
        record.ticket.as_deref().unwrap_or(""),
        record.note.as_deref().unwrap_or(""),
        &record.time_us.to_string(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let id = hex::encode(hasher.finalize());
    let ts = |us: i64| Arc::new(TimestampMicrosecondArray::from(vec![us]).with_timezone("UTC")) as ArrayRef;
    let columns: Vec<ArrayRef> = vec![
        texts(std::iter::once(id.as_str())),
        texts(std::iter::once(record.alert_id.as_str())),
        texts(std::iter::once(record.rule_id.as_str())),
        ts(record.alert_time_us),
        texts(std::iter::once(record.status.as_str())),
        texts(std::iter::once(record.triaged_by.as_str())),
        Arc::new(StringArray::from(vec![record.ticket.clone()])),
        Arc::new(StringArray::from(vec![record.note.clone()])),
        ts(record.time_us),
    ];
    Ok((RecordBatch::try_new(triage_schema(), columns)?, id))
}

fn encode(what: &str, batch: &RecordBatch) -> Result<Bytes> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::default()))
        .build();
    let err = |source| Error::Encode { what: what.to_string(), source };
    let mut writer = parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).map_err(err)?;
    writer.write(batch).map_err(err)?;
    Ok(Bytes::from(writer.into_inner().map_err(err)?))
}

/// What [`Archive::record_rules`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The pack was stored, in this entry of the `@rules` chain.
    Stored(Box<ManifestEntry>),
    /// The archive already held the pack (entry `seq` of the `@rules` chain).
    AlreadyThere(u64),
}

impl Archive {
    /// Stores a rule pack's texts in the `rules` table, chained in `@rules`, unless the archive already
    /// holds a pack with `pack_hash` (see the module docs). A signing archive signs the new head with its
    /// next digest. Call it where the pipeline opens the archive, before any range is committed.
    pub async fn record_rules(&self, pack_hash: &str, rules: &[RuleText]) -> Result<Recorded> {
        loop {
            let chain = self.chain(&PartitionId::new(RULES_CHAIN, 0)).await?;
            if let Some(there) = chain.iter().find(|e| e.has_data() && e.rule_pack_hash == pack_hash) {
                return Ok(Recorded::AlreadyThere(there.seq));
            }
            if rules.is_empty() {
                // Nothing to store: a pack without rules raises nothing to resolve.
                return Ok(Recorded::AlreadyThere(chain.last().map_or(0, |e| e.seq)));
            }
            let now = crate::now_us();
            let batch = rules_batch(pack_hash, rules, now)?;
            let head = chain.last().map(ChainHead::from);
            let input = format!("rule pack {pack_hash}");
            match self.append_record(RULES_CHAIN, RULES_KIND, &batch, head, pack_hash, &input, None).await? {
                Appended::Done(entry) => return Ok(Recorded::Stored(entry)),
                // Someone appended first: look again (it may be this very pack).
                Appended::SlotTaken => continue,
            }
        }
    }

    /// Appends one triage record to the `triage` table (chained in `@triage`; never edits an earlier
    /// one). Returns the record's `triage_id` and its manifest entry.
    pub async fn record_triage(&self, record: &TriageRecord) -> Result<(String, ManifestEntry)> {
        if !TRIAGE_STATUSES.contains(&record.status.as_str()) {
            return Err(Error::Internal(format!("unknown triage status `{}`", record.status)));
        }
        let (batch, id) = triage_batch(record)?;
        loop {
            let head = self.chain_head(&PartitionId::new(TRIAGE_CHAIN, 0)).await?;
            let input = format!("triage of alert {}", record.alert_id);
            let time = Some(record.time_us);
            match self.append_record(TRIAGE_CHAIN, TRIAGE_KIND, &batch, head, "", &input, time).await? {
                Appended::Done(entry) => return Ok((id, *entry)),
                Appended::SlotTaken => continue,
            }
        }
    }

    /// Stores `batch` as `{kind}/{sha256}.parquet` (created, never replaced) and appends its entry to
    /// `chain` after `head`. When another writer took the slot, removes the file (unless an entry lists
    /// it) and says so.
    #[allow(clippy::too_many_arguments)]
    async fn append_record(
        &self,
        chain: &str,
        kind: &str,
        batch: &RecordBatch,
        head: Option<ChainHead>,
        pack_hash: &str,
        input: &str,
        time_us: Option<i64>,
    ) -> Result<Appended> {
        let bytes = encode(kind, batch)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let relative = format!("{kind}/{sha}.parquet");
        let path = self.absolute(&Path::from(relative.as_str()));
        let size = bytes.len() as u64;
        let put = || {
            let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
            self.store.put_opts(&path, PutPayload::from(bytes.clone()), options)
        };
        match retry::patiently(self.patience, "put", &path, put).await {
            // The name is the content's hash: what is there is these bytes.
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(source) => return Err(Error::Store { operation: "put", path: path.to_string(), source }),
        }
        let rows = batch.num_rows() as u64;
        let first = head.as_ref().map_or(0, |h| h.last_offset + 1);
        let entry = ManifestEntry {
            version: MANIFEST_VERSION,
            seq: 0,
            ingest_source: chain.to_string(),
            partition: 0,
            first_offset: first,
            last_offset: first + rows as i64 - 1,
            format: kind.to_string(),
            input: input.to_string(),
            files: vec![FileEntry {
                kind: kind.to_string(),
                path: relative.clone(),
                sha256: sha,
                size,
                rows,
                time_min: time_us.map(format_time_us),
                time_max: time_us.map(format_time_us),
                offset: None,
            }],
            counts: Counts { records: rows, ..Counts::default() },
            schema_version: vigil_schema::SCHEMA_VERSION,
            rule_pack_hash: pack_hash.to_string(),
            source_bytes: None,
            source_prefix_sha256: None,
            lost_reason: None,
            disposal: None,
            written_at: String::new(),
            prev_hash: String::new(),
            entry_hash: String::new(),
        };
        match self.append(entry, head).await {
            Ok(entry) => Ok(Appended::Done(Box::new(entry))),
            Err(Error::SecondWriter { .. }) => {
                let listed = self
                    .chain(&PartitionId::new(chain, 0))
                    .await?
                    .iter()
                    .any(|e| e.files.iter().any(|f| f.path == relative));
                if !listed {
                    self.delete(&path).await?;
                }
                Ok(Appended::SlotTaken)
            }
            Err(e) => Err(e),
        }
    }
}

enum Appended {
    Done(Box<ManifestEntry>),
    SlotTaken,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{VerifyOptions, verify};

    fn rule(id: &str, text: &str) -> RuleText {
        RuleText {
            rule_id: id.into(),
            title: format!("title of {id}"),
            severity: "high".into(),
            criteria: vec!["CC6.1".into()],
            kind: "stateless".into(),
            file: format!("rules/{id}.sql"),
            text: text.into(),
            rule_hash: hex::encode(Sha256::digest(text.as_bytes())),
            ..RuleText::default()
        }
    }

    #[tokio::test]
    async fn a_pack_is_stored_once_and_verified_and_an_edit_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
        let pack = [rule("a", "-- id: a\nSELECT 1"), rule("b", "-- id: b\nSELECT 2")];
        let Recorded::Stored(first) = archive.record_rules("p1", &pack).await.unwrap() else { panic!("not stored") };
        assert_eq!((first.first_offset, first.last_offset, first.counts.records), (0, 1, 2));
        assert_eq!(archive.record_rules("p1", &pack).await.unwrap(), Recorded::AlreadyThere(0));
        let changed = [rule("a", "-- id: a\nSELECT 10"), rule("b", "-- id: b\nSELECT 2")];
        let Recorded::Stored(second) = archive.record_rules("p2", &changed).await.unwrap() else { panic!() };
        assert_eq!((second.seq, second.first_offset, second.prev_hash.as_str()), (1, 2, first.entry_hash.as_str()));
        let (_, t) = archive
            .record_triage(&TriageRecord {
                alert_id: "x".into(),
                rule_id: "a".into(),
                status: "resolved".into(),
                triaged_by: "ana".into(),
                time_us: 1,
                ..TriageRecord::default()
            })
            .await
            .unwrap();
        assert_eq!((t.ingest_source.as_str(), t.seq, t.counts.records), (TRIAGE_CHAIN, 0, 1));
        let report = verify(&archive, &VerifyOptions::default()).await.unwrap();
        assert!(report.ok(), "{:?}", report.findings);
        assert_eq!(report.files_checked, 3);
        // Someone edits a rule's text in place.
        let file = dir.path().join(&second.files[0].path);
        let mut bytes = std::fs::read(&file).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        std::fs::write(&file, bytes).unwrap();
        let report = verify(&archive, &VerifyOptions::default()).await.unwrap();
        let named: Vec<(&str, &str)> = report.findings.iter().map(|f| (f.kind.as_str(), f.object.as_str())).collect();
        assert_eq!(named, [("file_hash_mismatch", second.files[0].path.as_str())]);
    }

    #[tokio::test]
    async fn a_signed_archive_signs_the_record_chains_and_verify_authenticates_them() {
        use crate::digest::Signer;
        use crate::keys::PrivateKey;
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate().unwrap();
        let public = key.public();
        let signer = Arc::new(Signer::new(key, std::time::Duration::from_secs(60)));
        let archive = Archive::open(dir.path().to_str().unwrap()).unwrap().with_signer(signer);
        archive.record_rules("p1", &[rule("a", "SELECT 1")]).await.unwrap();
        let triage = TriageRecord {
            alert_id: "x".into(),
            status: "open".into(),
            triaged_by: "b".into(),
            ..TriageRecord::default()
        };
        archive.record_triage(&triage).await.unwrap();
        let digest = archive.sign_digest(true).await.unwrap().unwrap();
        let chains: Vec<&str> = digest.heads.iter().map(|h| h.ingest_source.as_str()).collect();
        assert_eq!(chains, [RULES_CHAIN, TRIAGE_CHAIN]);
        let options = VerifyOptions { public_keys: vec![public], ..VerifyOptions::default() };
        let report = verify(&archive, &options).await.unwrap();
        assert!(report.ok() && report.authenticated, "{:?}", report.findings);
        // A triage record added afterwards by someone without the key is in no signed digest.
        let unsigned = Archive::open(dir.path().to_str().unwrap()).unwrap();
        unsigned.record_triage(&TriageRecord { status: "resolved".into(), ..triage }).await.unwrap();
        let report = verify(&archive, &VerifyOptions { now_us: Some(crate::now_us() + 3_600_000_000), ..options })
            .await
            .unwrap();
        assert!(report.findings.iter().any(|f| f.kind == "entry_unsigned"), "{:?}", report.findings);
    }

    #[tokio::test]
    async fn an_unknown_status_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
        let record = TriageRecord { status: "done".into(), ..TriageRecord::default() };
        assert!(archive.record_triage(&record).await.is_err());
        assert!(archive.chain(&PartitionId::new(TRIAGE_CHAIN, 0)).await.unwrap().is_empty());
    }
}

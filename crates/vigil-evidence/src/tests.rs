//! Tests of the archive: ranges, chains, resume, blobs and retention against a local store.

use super::*;
use vigil_schema::{EventBatchBuilder, EventRow, PartitionId, Provenance};

fn events(first: i64, last: i64) -> RecordBatch {
    let mut b = EventBatchBuilder::with_capacity((last - first + 1) as usize);
    for offset in first..=last {
        let row = EventRow { time_us: 1_722_588_804_000_000 + offset, ..EventRow::new("test") };
        let prov = Provenance { ingest_source: "t", partition: 0, offset, ingest_time_us: 0 };
        b.append(&row, format!("r{offset}").as_bytes(), &prov);
    }
    b.finish()
}

fn commit_of<'a>(batch: &'a [RecordBatch], first: i64, last: i64) -> RangeCommit<'a> {
    RangeCommit { ingest_source: "t", first_offset: first, last_offset: last, events: batch, ..Default::default() }
}

#[tokio::test]
async fn an_interrupted_range_is_removed_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    let first = [events(1, 10)];
    let entry = archive.commit(prepare(&commit_of(&first, 1, 10), 3).unwrap(), None).await.unwrap();
    // A crash after the data files of 11..=20 were written but before their entry: intent and files remain.
    let second = [events(11, 20)];
    let prepared = prepare(&commit_of(&second, 11, 20), 3).unwrap();
    let intent = layout::pending_path(archive.root(), "t", 0, 1);
    let listed: Vec<String> = prepared.files.iter().map(|(p, _)| p.to_string()).collect();
    archive.store.put(&intent, PutPayload::from(serde_json::to_vec(&listed).unwrap())).await.unwrap();
    for (path, bytes) in prepared.files {
        archive.store.put(&path, PutPayload::from(bytes)).await.unwrap();
    }
    let resume = archive.resume(&PartitionId::new("t", 0)).await.unwrap();
    assert_eq!(resume.head, Some(ChainHead::from(&entry)));
    assert_eq!(resume.removed, listed);
    for file in &listed {
        assert!(!dir.path().join(file).exists(), "{file} should be gone");
    }
    // The committed range is untouched, and the chain continues.
    assert!(dir.path().join(&entry.files[0].path).exists());
    let again = archive.resume(&PartitionId::new("t", 0)).await.unwrap();
    assert!(again.removed.is_empty());
    let next = archive.commit(prepare(&commit_of(&second, 11, 15), 3).unwrap(), again.head.as_ref()).await.unwrap();
    assert_eq!((next.seq, next.prev_hash.as_str()), (1, entry.entry_hash.as_str()));
    assert!(archive.list_dir(&layout::manifest_dir(archive.root(), "t", 0)).await.unwrap().len() == 2);
}

#[tokio::test]
async fn a_lost_range_is_an_entry_without_files() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    let commit = RangeCommit {
        ingest_source: "t",
        first_offset: 0,
        last_offset: 99,
        lost_reason: Some("deleted by retention"),
        ..Default::default()
    };
    let entry = archive.commit(prepare(&commit, 3).unwrap(), None).await.unwrap();
    assert!(entry.files.is_empty());
    assert_eq!(entry.counts.lost, 100);
    assert_eq!(archive.chain(&PartitionId::new("t", 0)).await.unwrap(), vec![entry]);
}

fn expire_options(retention_days: u32, now_us: i64, dry_run: bool) -> expire::ExpireOptions {
    expire::ExpireOptions { retention_days, min_retention_days: 0, allow_short_retention: false, now_us, dry_run }
}

#[tokio::test]
async fn expire_records_the_disposal_then_deletes_and_verify_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    let first = [events(1, 10)];
    let old = archive.commit(prepare(&commit_of(&first, 1, 10), 3).unwrap(), None).await.unwrap();
    let stale_head = ChainHead::from(&old);
    // A dry run lists and touches nothing.
    let dry = expire::expire(&archive, &expire_options(0, now_us(), true)).await.unwrap();
    assert_eq!((dry.files.len(), dry.deleted, dry.disposals.len()), (1, 0, 0));
    assert!(dir.path().join(&old.files[0].path).exists());
    assert_eq!(archive.chain(&PartitionId::new("t", 0)).await.unwrap().len(), 1);
    // Nothing is past a retention of 400 days.
    let none = expire::expire(&archive, &expire_options(400, now_us(), false)).await.unwrap();
    assert!(none.files.is_empty() && none.disposals.is_empty());

    let report = expire::expire(&archive, &expire_options(0, now_us(), false)).await.unwrap();
    assert_eq!((report.files.len(), report.deleted, report.disposals.clone()), (1, 1, vec!["t/0#1".to_string()]));
    assert!(!dir.path().join(&old.files[0].path).exists());
    let chain = archive.chain(&PartitionId::new("t", 0)).await.unwrap();
    let disposal = chain[1].disposal.as_ref().unwrap();
    assert_eq!((disposal.entries.clone(), disposal.files[0].path.clone()), (vec![0], old.files[0].path.clone()));
    assert_eq!((chain[1].first_offset, chain[1].last_offset, chain[1].prev_hash.clone()), (10, 10, old.entry_hash));

    // The pipeline still holds the head from before the disposal: its next entry is chained after it.
    let second = [events(11, 20)];
    let next = archive.commit(prepare(&commit_of(&second, 11, 20), 3).unwrap(), Some(&stale_head)).await.unwrap();
    assert_eq!((next.seq, next.prev_hash.as_str()), (2, chain[1].entry_hash.as_str()));
    let verified = verify::verify(&archive, &verify::VerifyOptions::default()).await.unwrap();
    // A retention of 0 days is below what an audit needs: named, but the archive is otherwise whole.
    let kinds: Vec<&str> = verified.findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["disposal_below_floor"], "{:?}", verified.findings);
    assert!(verified.warnings.iter().all(|w| w.kind == "archive_unsigned"), "{:?}", verified.warnings);
    // Expiring again disposes of the new range only.
    let again = expire::expire(&archive, &expire_options(0, now_us(), false)).await.unwrap();
    assert_eq!(again.files.iter().map(|f| f.entry.as_str()).collect::<Vec<_>>(), vec!["t/0#2"]);
}

#[tokio::test]
async fn expire_below_the_floor_is_refused_unless_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    let first = [events(1, 10)];
    archive.commit(prepare(&commit_of(&first, 1, 10), 3).unwrap(), None).await.unwrap();
    let floor = |allow| expire::ExpireOptions {
        retention_days: 30,
        min_retention_days: 365,
        allow_short_retention: allow,
        now_us: now_us() + 31 * 86_400_000_000,
        dry_run: false,
    };
    let err = expire::expire(&archive, &floor(false)).await.unwrap_err().to_string();
    assert!(err.contains("below the minimum of 365 days") && err.contains("--allow-short-retention"), "{err}");
    assert!(dir.path().join("events").read_dir().unwrap().next().is_some(), "nothing deleted");
    // The store's clock (this disk's) says the entry is minutes old, not 31 days: nothing is due even
    // with the override, whatever the writer's clock says.
    let report = expire::expire(&archive, &floor(true)).await.unwrap();
    assert!(report.files.is_empty() && report.store_time.is_some(), "{report:?}");
}

#[tokio::test]
async fn resume_leaves_what_a_planted_intent_lists_of_other_chains() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    let first = [events(1, 10)];
    let victim = archive.commit(prepare(&commit_of(&first, 1, 10), 3).unwrap(), None).await.unwrap();
    let other = RangeCommit { ingest_source: "u", ..commit_of(&first, 1, 10) };
    archive.commit(prepare(&other, 3).unwrap(), None).await.unwrap();
    // Someone plants an intent in chain u's folder listing chain t's committed files.
    let planted: Vec<String> = victim.files.iter().map(|f| f.path.clone()).collect();
    let intent = layout::pending_path(archive.root(), "u", 0, 1);
    archive.store.put(&intent, PutPayload::from(serde_json::to_vec(&planted).unwrap())).await.unwrap();
    let resume = archive.resume(&PartitionId::new("u", 0)).await.unwrap();
    assert!(resume.removed.is_empty(), "{:?}", resume.removed);
    for file in &planted {
        assert!(dir.path().join(file).exists(), "{file} was deleted");
    }
    let verified = verify::verify(&archive, &verify::VerifyOptions::default()).await.unwrap();
    assert!(verified.findings.iter().any(|f| f.kind == "pending_invalid"), "{:?}", verified.findings);
}

#[tokio::test]
async fn blobs_are_stored_whole_listed_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    // One blob in memory, one spooled to a file larger than a single put (stored in parts).
    let big: Vec<u8> = (0..BLOB_SINGLE_PUT + 3 * BLOB_READ + 17).map(|i| (i % 251) as u8).collect();
    let spool = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spool.path(), &big).unwrap();
    let spooled = DeadLetterBlob::spooled(
        4,
        Arc::new(spool.into_temp_path()),
        big.len() as u64,
        hex::encode(Sha256::digest(&big)),
    );
    let blobs = [DeadLetterBlob::in_memory(2, Bytes::from_static(b"whole record")), spooled];
    let dead = vigil_normalize_free_dead_letters(&[2, 4]);
    let commit = RangeCommit {
        ingest_source: "file-x",
        first_offset: 1,
        last_offset: 4,
        dead_letters: Some(&dead),
        skipped: 2,
        blobs: &blobs,
        source_prefix: Some(SourcePrefix { bytes: 99, sha256: "ab".repeat(32) }),
        ..Default::default()
    };
    let entry = archive.commit(prepare(&commit, 3).unwrap(), None).await.unwrap();
    let listed: Vec<_> = entry.files.iter().filter(|f| f.kind == BLOB_KIND).collect();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[1].offset, listed[1].size), (Some(4), big.len() as u64));
    assert_eq!(std::fs::read(dir.path().join(&listed[1].path)).unwrap(), big);
    assert_eq!(std::fs::read(dir.path().join(&listed[0].path)).unwrap(), b"whole record");
    assert_eq!((entry.source_bytes, ChainHead::from(&entry).source_bytes), (Some(99), Some(99)));
    let head = archive.source_head(&PartitionId::new("file-x", 0)).await.unwrap().unwrap();
    assert_eq!((head.head.seq, head.first_source_bytes), (0, Some(99)));
    let verified = verify::verify(&archive, &verify::VerifyOptions::default()).await.unwrap();
    assert!(verified.ok(), "{:?}", verified.findings);
    assert_eq!(verified.files_checked, 3);

    // A changed blob is caught.
    let path = dir.path().join(&listed[1].path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[BLOB_SINGLE_PUT + 5] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let verified = verify::verify(&archive, &verify::VerifyOptions::default()).await.unwrap();
    let kinds: Vec<&str> = verified.findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, vec!["file_hash_mismatch"], "{:?}", verified.findings);
}

#[tokio::test]
async fn a_spooled_blob_that_changed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    let spool = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spool.path(), b"not what was read").unwrap();
    let blob = DeadLetterBlob::spooled(1, Arc::new(spool.into_temp_path()), 4, hex::encode(Sha256::digest(b"read")));
    let dead = vigil_normalize_free_dead_letters(&[1]);
    let blobs = [blob];
    let commit = RangeCommit {
        ingest_source: "t",
        first_offset: 1,
        last_offset: 1,
        dead_letters: Some(&dead),
        blobs: &blobs,
        ..Default::default()
    };
    let err = archive.commit(prepare(&commit, 3).unwrap(), None).await.unwrap_err();
    assert!(err.to_string().contains("spooled dead letter"), "{err}");
    assert!(archive.chain(&PartitionId::new("t", 0)).await.unwrap().is_empty());
}

/// Dead-letter rows at `offsets` (the schema, filled by hand: this crate does not depend on the
/// normalizers).
fn vigil_normalize_free_dead_letters(offsets: &[i64]) -> RecordBatch {
    use arrow::array::{ArrayRef, BinaryArray, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
    let n = offsets.len();
    let text = |v: &str| Arc::new(StringArray::from(vec![v; n])) as ArrayRef;
    let columns: Vec<ArrayRef> = vec![
        text("aws.cloudtrail"),
        text("cloudtrail"),
        text("too_large"),
        text("kept whole in a blob"),
        Arc::new(BinaryArray::from(vec![&b"prefix"[..]; n])),
        text("id"),
        text("t"),
        Arc::new(Int32Array::from(vec![0; n])),
        Arc::new(Int64Array::from(offsets.to_vec())),
        Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC")),
    ];
    RecordBatch::try_new(vigil_schema::dead_letter_schema(), columns).unwrap()
}

#[tokio::test]
async fn a_second_writer_on_one_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    let first = [events(1, 10)];
    let second = [events(11, 20)];
    archive.commit(prepare(&commit_of(&first, 1, 10), 3).unwrap(), None).await.unwrap();
    let err = archive.commit(prepare(&commit_of(&second, 11, 20), 3).unwrap(), None).await.unwrap_err();
    assert!(matches!(err, Error::SecondWriter { seq: 0, .. }), "{err}");
}

#[tokio::test]
async fn verify_flags_a_disposal_before_retention_ended() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    let first = [events(1, 10)];
    archive.commit(prepare(&commit_of(&first, 1, 10), 3).unwrap(), None).await.unwrap();
    // A writer whose clock is 401 days ahead: the store's clock says nothing is due.
    let later = now_us() + 401 * 86_400_000_000;
    let report = expire::expire(&archive, &expire_options(400, later, false)).await.unwrap();
    assert_eq!((report.files.len(), report.deleted), (0, 0), "{report:?}");
    // A disposal written anyway (by another tool, or an older vigil) is named by verify.
    let entry = archive.chain(&PartitionId::new("t", 0)).await.unwrap().remove(0);
    let disposal = Disposal {
        retention_days: 400,
        entries: vec![0],
        files: entry.files.iter().map(|f| DisposedFile { path: f.path.clone(), sha256: f.sha256.clone() }).collect(),
        min_retention_days: Some(365),
        floor_overridden: false,
    };
    let early = expire::disposal_entry("t", 0, disposal);
    archive.append(early, Some(ChainHead::from(&entry))).await.unwrap();
    let verified = verify::verify(&archive, &verify::VerifyOptions::default()).await.unwrap();
    let kinds: Vec<&str> = verified.findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, vec!["disposal_early"], "{:?}", verified.findings);
}

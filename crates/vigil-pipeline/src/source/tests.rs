//! The file reader's tests: framing, identity checks, spooling and limits.

use std::collections::HashMap;
use std::sync::Mutex;

use super::framing::*;
use super::origin::*;
use super::*;
use vigil_evidence::ChainHead;

#[test]
fn documents_unwrap_envelopes_arrays_and_sequences() {
    let doc = br#"{"Records":[{"a":1},{"b":2}]} [{"c":3}] {"d":4}"#;
    let (ranges, parsed) = document_records(doc, Some("Records"));
    let records: Vec<&[u8]> = ranges.into_iter().map(|r| &doc[r]).collect();
    assert!(parsed);
    assert_eq!(records, vec![&br#"{"a":1}"#[..], br#"{"b":2}"#, br#"{"c":3}"#, br#"{"d":4}"#]);
    let broken = br#"{"Records":[{"a":1}"#;
    let (ranges, parsed) = document_records(broken, Some("Records"));
    assert_eq!((ranges.first(), ranges.len(), parsed), (Some(&(0..broken.len())), 1, false));
}

#[test]
fn ndjson_lines_are_told_from_documents() {
    assert!(is_ndjson_record(br#"{"eventName":"X"}"#, Some("Records")));
    assert!(!is_ndjson_record(br#"{"Records":[]}"#, Some("Records")));
    assert!(!is_ndjson_record(b"[", None));
    assert!(!is_ndjson_record(b"{", None));
    assert!(is_ndjson_record(br#"{"Records":"x"}"#, Some("Records")));
}

#[test]
fn long_lines_are_spilled_whole_not_loaded() {
    let text = b"abc\r\n0123456789\r\nlast";
    let mut reader = BufReader::with_capacity(4, &text[..]);
    let mut buf = Vec::new();
    let mut content = Content::default();
    assert!(matches!(read_line(&mut reader, &mut buf, 5, &mut content, true).unwrap(), Line::Text(b"\r\n")));
    assert_eq!(buf, b"abc");
    content.feed(&buf);
    content.feed(b"\r\n");
    let Line::Spilled(spill, b"\n") = read_line(&mut reader, &mut buf, 5, &mut content, true).unwrap() else {
        panic!("a long line is spilled")
    };
    assert_eq!(content.len, 5 + 11, "the spilled line is hashed as content, its \\r included");
    let (prefix, blob) = spill.finish(2).unwrap();
    let blob = blob.unwrap();
    assert_eq!(prefix, b"0123456789\r");
    assert_eq!((blob.size, blob.sha256.clone()), (11, hex::encode(Sha256::digest(b"0123456789\r"))));
    let vigil_evidence::BlobData::File(path) = &blob.data else { panic!("spooled to a file") };
    assert_eq!(std::fs::read((**path).as_ref()).unwrap(), b"0123456789\r");
    content.feed(b"\n");
    assert!(matches!(read_line(&mut reader, &mut buf, 5, &mut content, true).unwrap(), Line::Text(b"")));
    assert_eq!(buf, b"last");
    assert!(matches!(read_line(&mut reader, &mut buf, 5, &mut content, true).unwrap(), Line::Eof));
}

const SETTINGS: ReaderSettings = ReaderSettings { max_record_bytes: 4 << 20, max_document_bytes: 128 << 20 };

/// A stand-in archive: chain heads by identity, as the pipeline would have committed them.
#[derive(Default, Clone)]
struct Chains(Arc<Mutex<HashMap<String, SourceHead>>>);

impl Chains {
    fn lookup(&self) -> ChainLookup {
        let chains = self.0.clone();
        Arc::new(move |name: &str| Ok(chains.lock().unwrap().get(name).cloned()))
    }

    /// Records what a pipeline commits after reading `events` as one range: the last record's mark.
    fn commit(&self, events: &[ReadEvent]) {
        let Some(ReadEvent::Start { ingest_source, .. }) = events.first() else { panic!("no start") };
        let (last_offset, mark) = last_record(events).expect("records");
        let mut chains = self.0.lock().unwrap();
        let first = chains.get(ingest_source).map_or(mark.bytes, |h| h.first_source_bytes.unwrap_or(0));
        let head = ChainHead {
            seq: 0,
            entry_hash: String::new(),
            last_offset,
            source_bytes: Some(mark.bytes),
            source_prefix_sha256: Some(hex::encode(mark.sha256)),
        };
        chains.insert(ingest_source.clone(), SourceHead { head, first_source_bytes: Some(first) });
    }
}

fn last_record(events: &[ReadEvent]) -> Option<(i64, PrefixMark)> {
    events.iter().rev().find_map(|e| match e {
        ReadEvent::Chunk(c) => c.records.iter().last().map(|(o, _)| o).zip(c.marks.last().copied()),
        ReadEvent::TooLarge(o) => Some((o.offset, o.mark)),
        _ => None,
    })
}

fn read_origin(origin: Origin, framing: Framing, settings: ReaderSettings, chains: &Chains) -> Vec<ReadEvent> {
    let (tx, mut rx) = mpsc::channel(8);
    let lookup = chains.lookup();
    let reader = std::thread::spawn(move || {
        let file = InputFile { display: "test".into(), path: None };
        if let Err(e) = read_all(&file, origin, framing, settings, &lookup, &tx) {
            tx.blocking_send(ReadEvent::Failed(Error::Input { input: "test".into(), reason: e.to_string() })).unwrap();
        }
    });
    let mut events = Vec::new();
    while let Some(event) = rx.blocking_recv() {
        events.push(event);
    }
    reader.join().unwrap();
    events
}

fn read_path(path: &Path, chains: &Chains) -> Vec<ReadEvent> {
    read_origin(Origin::Path(path.to_path_buf()), Framing::Lines, SETTINGS, chains)
}

fn read_stdin(bytes: Vec<u8>, chains: &Chains) -> Vec<ReadEvent> {
    let live = open_stream(Box::new(std::io::Cursor::new(bytes))).unwrap();
    read_origin(Origin::Stdin { live, spool: Spool::default() }, Framing::Lines, SETTINGS, chains)
}

/// Identity, records (offset, bytes), already archived.
fn summary(events: &[ReadEvent]) -> (String, Vec<(i64, Vec<u8>)>, u64) {
    let mut identity = String::new();
    let mut records = Vec::new();
    let mut already = u64::MAX;
    for event in events {
        match event {
            ReadEvent::Start { ingest_source, .. } => identity = ingest_source.clone(),
            ReadEvent::Chunk(c) => records.extend(c.records.iter().map(|(o, b)| (o, b.to_vec()))),
            ReadEvent::TooLarge(o) => records.push((o.offset, o.prefix.clone())),
            ReadEvent::End { already_archived, .. } => already = *already_archived,
            ReadEvent::Failed(e) => panic!("{e}"),
        }
    }
    (identity, records, already)
}

/// A log whose first 4 KiB are the same as every other's made by this function, then `tail`.
fn colliding(tail: &str) -> Vec<u8> {
    let mut text = String::new();
    let mut n = 0;
    while text.len() < FINGERPRINT_BYTES + 100 {
        n += 1;
        text.push_str(&format!("shared line {n:05} of the common header of two different logs\n"));
    }
    text.push_str(tail);
    text.into_bytes()
}

#[test]
fn every_record_carries_the_hash_of_the_content_through_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    let text = b"one\r\n\n  \ntwo\nthree";
    std::fs::write(&path, text).unwrap();
    let events = read_path(&path, &Chains::default());
    let ReadEvent::Chunk(chunk) = &events[1] else { panic!("{events:?}") };
    let ends: Vec<usize> = vec![3, 12, 18];
    for ((offset, _), (mark, end)) in chunk.records.iter().zip(chunk.marks.iter().zip(ends)) {
        assert_eq!(mark.bytes, end as u64, "offset {offset}");
        assert_eq!(mark.sha256, <[u8; 32]>::from(Sha256::digest(&text[..end])), "offset {offset}");
    }
    assert!(matches!(events[2], ReadEvent::End { last_offset: 5, already_archived: 0 }));
}

#[test]
fn a_file_is_its_chain_only_when_the_committed_bytes_match() {
    let dir = tempfile::tempdir().unwrap();
    let chains = Chains::default();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(&a, colliding("a1\na2\n")).unwrap();
    let first = read_path(&a, &chains);
    let (identity, records, _) = summary(&first);
    assert!(identity.starts_with("file-") && identity.len() == 21, "{identity}");
    chains.commit(&first);

    // The same file again: resumed after its last record, nothing sent.
    let (again, records_again, already) = summary(&read_path(&a, &chains));
    assert_eq!((again.as_str(), records_again.len(), already), (identity.as_str(), 0, records.len() as u64));

    // Another file with the same first 4 KiB: a new identity, every record read.
    std::fs::write(&b, colliding("b1\nb2\nb3\n")).unwrap();
    let other = read_path(&b, &chains);
    let (derived, b_records, b_already) = summary(&other);
    assert_eq!(b_already, 0);
    assert_eq!(b_records.len(), records.len() + 1);
    let anchor = chains.0.lock().unwrap()[&identity].first_source_bytes.unwrap() as usize;
    let expected = format!("{identity}-{}", &hex::encode(Sha256::digest(&std::fs::read(&b).unwrap()[..anchor]))[..8]);
    assert_eq!(derived, expected);
    chains.commit(&other);
    // ... which is itself recognised on a rerun, and the first file still is the first chain's.
    let (rerun, rerun_records, _) = summary(&read_path(&b, &chains));
    assert_eq!((rerun.as_str(), rerun_records.len()), (derived.as_str(), 0));
    assert_eq!(summary(&read_path(&a, &chains)).0, identity);

    // Appending continues the chain: only the new line.
    std::fs::write(&a, colliding("a1\na2\na3\n")).unwrap();
    let (appended, new, _) = summary(&read_path(&a, &chains));
    assert_eq!(appended, identity);
    assert_eq!(new, vec![((records.len() + 1) as i64, b"a3".to_vec())]);

    // A third colliding file that also shares the derived chain's anchor goes one level further.
    let c = dir.path().join("c.log");
    std::fs::write(&c, colliding("b1\nb2\nc3\n")).unwrap();
    let (third, c_records, _) = summary(&read_path(&c, &chains));
    assert!(third.starts_with(&format!("{derived}-")), "{third}");
    assert_eq!(c_records.len(), b_records.len());
}

#[test]
fn a_gzip_file_is_checked_on_its_decompressed_content() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let chains = Chains::default();
    let a = dir.path().join("a.log");
    std::fs::write(&a, colliding("a1\n")).unwrap();
    let first = read_path(&a, &chains);
    chains.commit(&first);
    let gz = dir.path().join("b.log.gz");
    let mut encoder = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
    encoder.write_all(&colliding("b1\nb2\n")).unwrap();
    encoder.finish().unwrap();
    let (identity, records, already) = summary(&read_path(&gz, &chains));
    assert_ne!(identity, summary(&first).0);
    assert_eq!((records.len(), already), (summary(&first).1.len() + 1, 0));
    // The same content compressed is the same file.
    let gz_a = dir.path().join("a.log.gz");
    let mut encoder = flate2::write::GzEncoder::new(File::create(&gz_a).unwrap(), flate2::Compression::fast());
    encoder.write_all(&colliding("a1\n")).unwrap();
    encoder.finish().unwrap();
    assert_eq!(summary(&read_path(&gz_a, &chains)).0, summary(&first).0);
}

#[test]
fn stdin_is_spooled_while_its_identity_is_undecided() {
    let chains = Chains::default();
    // A committed prefix larger than the in-memory spool: the replay comes from a temporary file.
    let mut big = colliding("");
    for n in 0..40_000 {
        big.extend_from_slice(format!("archived line {n:06} of the first stdin stream\n").as_bytes());
    }
    let first = read_stdin(big.clone(), &chains);
    chains.commit(&first);
    let (identity, records, _) = summary(&first);
    // The same stream appended: resumed.
    let mut appended = big.clone();
    appended.extend_from_slice(b"new line\n");
    let (same, new, already) = summary(&read_stdin(appended, &chains));
    assert_eq!((same.as_str(), already), (identity.as_str(), records.len() as u64));
    assert_eq!(new, vec![(records.len() as i64 + 1, b"new line".to_vec())]);
    // Another stream with the same first 4 KiB and one changed byte near the end of the committed part:
    // every record is read again, from the spool, under a new identity.
    let mut other = big.clone();
    let at = other.len() - 10;
    other[at] = b'X';
    let (derived, again, already) = summary(&read_stdin(other.clone(), &chains));
    assert_ne!(derived, identity);
    assert_eq!((again.len(), already), (records.len(), 0));
    let expected: Vec<Vec<u8>> = other.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    assert_eq!(again.into_iter().map(|(_, r)| r).collect::<Vec<_>>(), expected);
}

#[test]
fn oversized_records_and_documents_are_kept_whole() {
    let settings = ReaderSettings { max_record_bytes: 16, max_document_bytes: 64 };
    let chains = Chains::default();
    let read = |bytes: &[u8], framing| {
        let live = open_stream(Box::new(std::io::Cursor::new(bytes.to_vec()))).unwrap();
        read_origin(Origin::Stdin { live, spool: Spool::default() }, framing, settings, &chains)
    };
    let blob_bytes = |o: &Oversized| match &o.blob.data {
        vigil_evidence::BlobData::File(p) => std::fs::read((**p).as_ref()).unwrap(),
        vigil_evidence::BlobData::Memory(b) => b.to_vec(),
    };
    // A line over the limit, between two that fit.
    let long = "x".repeat(100);
    let events = read(format!("a\n{long}\nb\n").as_bytes(), Framing::Lines);
    let too_large: Vec<&Oversized> =
        events.iter().filter_map(|e| if let ReadEvent::TooLarge(o) = e { Some(o) } else { None }).collect();
    assert_eq!(too_large.len(), 1);
    assert_eq!((too_large[0].offset, too_large[0].code), (2, ReasonCode::TooLarge));
    assert_eq!(blob_bytes(too_large[0]), long.as_bytes());
    assert_eq!(summary(&events).1.len(), 3);

    // A document over max_document_bytes: one dead letter holding all of it, then the end.
    let doc = format!("[\n{}\n]\n", (0..20).map(|n| format!("{{\"n\":{n}}}")).collect::<Vec<_>>().join(",\n"));
    let events = read(doc.as_bytes(), Framing::Json { envelope_key: None });
    let ReadEvent::TooLarge(whole) = &events[1] else { panic!("{events:?}") };
    assert_eq!(blob_bytes(whole), doc.as_bytes());
    assert_eq!(whole.mark.bytes, doc.len() as u64);
    assert!(matches!(events[2], ReadEvent::End { last_offset: 1, .. }), "{events:?}");

    // A broken document over max_record_bytes: invalid_json, whole.
    let broken = "[\n{\"a\":\"0123456789abcdef\"},\n{\"b\":";
    let events = read(broken.as_bytes(), Framing::Json { envelope_key: None });
    let ReadEvent::TooLarge(dead) = &events[1] else { panic!("{events:?}") };
    assert_eq!((dead.code, blob_bytes(dead)), (ReasonCode::InvalidJson, broken.as_bytes().to_vec()));

    // A one-line envelope over max_record_bytes (as CloudTrail writes its S3 objects) is still a
    // document: its records are read.
    let one_line = r#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#;
    let events = read(one_line.as_bytes(), Framing::Json { envelope_key: Some("Records") });
    let (_, records, _) = summary(&events);
    assert_eq!(records.len(), 2, "{events:?}");
    // ... and a one-line record over it is one oversized record, whole.
    let record = format!(r#"{{"eventName":"{}"}}"#, "x".repeat(40));
    let text = format!("{record}\n{}\n", r#"{"a":1}"#);
    let events = read(text.as_bytes(), Framing::Json { envelope_key: Some("Records") });
    let ReadEvent::TooLarge(whole) = &events[1] else { panic!("{events:?}") };
    assert_eq!(blob_bytes(whole), record.as_bytes());
    assert_eq!(summary(&events).1.len(), 2);
}

#[cfg(unix)]
#[test]
fn directory_walks_do_not_follow_links() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/a.log"), "a\n").unwrap();
    std::fs::write(dir.path().join("b.log"), "b\n").unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("sub/loop")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("b.log"), dir.path().join("link.log")).unwrap();
    let files = expand_input(dir.path().to_str().unwrap()).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.path.as_ref().unwrap().strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(names, vec!["b.log", "sub/a.log"]);
    // A link given as the input itself is followed.
    let linked = expand_input(dir.path().join("link.log").to_str().unwrap()).unwrap();
    assert_eq!(linked.len(), 1);
    let through = expand_input(dir.path().join("sub/loop").to_str().unwrap()).unwrap();
    assert_eq!(through.len(), 1, "the loop is walked once: {through:?}");
}

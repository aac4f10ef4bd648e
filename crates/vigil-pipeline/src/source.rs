//! File and stdin sources: find the files of an input, decompress, fingerprint, and cut records out of
//! the byte stream as the format's framing says, on a reader thread that hands chunks to the pipeline.
//!
//! A file's identity (`ingest_source`) is `file-` and 16 hex digits of SHA-256 over its first 4 KiB of
//! (decompressed) content, as Vector fingerprints files: the same log under another name or compressed
//! is the same source, so replays resume instead of duplicating, and an appended file continues its
//! chain. Offsets are 1-based: the line number for line-delimited input, the record number within a
//! JSON document (an envelope or array). Blank lines hold no record and leave a gap in the offsets that
//! the manifest counts as `skipped`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use vigil_normalize::scan::{array_elements, is_single_value, object_members, top_level_values};
use vigil_normalize::{Framing, RawRecords};

use crate::{Error, Result};

const FINGERPRINT_BYTES: usize = 4096;
/// A chunk handed to the pipeline holds this many records, or fewer when they reach [`CHUNK_BYTES`]; with
/// 8 chunks in the channel, the reader runs at most 8 MiB ahead whatever the records' sizes.
const CHUNK_RECORDS: usize = 4096;
const CHUNK_BYTES: usize = 1 << 20;
const READ_BUFFER: usize = 256 << 10;

/// One file (or stdin) of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Path as shown to people; `-` for stdin.
    pub display: String,
    /// The file; `None` for stdin.
    pub path: Option<PathBuf>,
}

impl InputFile {
    /// The (year, month) of the file's modification time (UTC); `None` for stdin or when unknown.
    pub fn modified_date(&self) -> Option<(i32, u32)> {
        use chrono::Datelike;
        let modified = std::fs::metadata(self.path.as_ref()?).ok()?.modified().ok()?;
        let date = chrono::DateTime::<chrono::Utc>::from(modified);
        Some((date.year(), date.month()))
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// The files of an input path: the file itself, every file below a directory (sorted, hidden ones
/// skipped), or stdin for `-`.
pub fn expand_input(path: &str) -> Result<Vec<InputFile>> {
    if path == "-" {
        return Ok(vec![InputFile { display: "-".into(), path: None }]);
    }
    let p = Path::new(path);
    let io = |e: std::io::Error| Error::Input { input: path.to_string(), reason: e.to_string() };
    if p.is_dir() {
        let mut files = Vec::new();
        walk(p, &mut files).map_err(io)?;
        Ok(files.into_iter().map(|f| InputFile { display: f.display().to_string(), path: Some(f) }).collect())
    } else if p.is_file() {
        Ok(vec![InputFile { display: path.to_string(), path: Some(p.to_path_buf()) }])
    } else {
        Err(Error::Input { input: path.to_string(), reason: "no such file or directory".into() })
    }
}

/// What the reader thread hands over.
#[derive(Debug)]
pub enum ReadEvent {
    /// The file's identity, before any record.
    Start {
        /// `file-<fingerprint>`.
        ingest_source: String,
    },
    /// Records in offset order.
    Chunk(RawRecords),
    /// A record over the size limit: its offset and its first bytes.
    TooLarge(i64, Vec<u8>),
    /// End of input; `last_offset` is the last offset read (a trailing blank line included).
    End {
        /// Last offset read.
        last_offset: i64,
    },
    /// Reading failed; nothing after this.
    Failed(Error),
}

fn open(file: &InputFile) -> std::io::Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = match &file.path {
        Some(p) => Box::new(File::open(p)?),
        None => Box::new(std::io::stdin()),
    };
    let mut reader = BufReader::with_capacity(READ_BUFFER, raw);
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip { Box::new(flate2::read::MultiGzDecoder::new(reader)) } else { Box::new(reader) })
}

/// Reads the input on a new thread and sends its records; returns the receiving end.
pub fn spawn_reader(file: InputFile, framing: Framing, settings: ReaderSettings) -> mpsc::Receiver<ReadEvent> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::Builder::new()
        .name("vigil-reader".into())
        .spawn(move || {
            let display = file.display.clone();
            if let Err(e) = read_all(&file, framing, settings, &tx) {
                let _ = tx.blocking_send(ReadEvent::Failed(Error::Input { input: display, reason: e.to_string() }));
            }
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start a reader thread"))
        .ok();
    rx
}

/// Limits the reader applies.
#[derive(Debug, Clone, Copy)]
pub struct ReaderSettings {
    /// Larger records are cut to this size and dead-lettered `too_large`.
    pub max_record_bytes: usize,
    /// Larger JSON documents are refused.
    pub max_document_bytes: usize,
}

struct Sender<'a> {
    tx: &'a mpsc::Sender<ReadEvent>,
    chunk: RawRecords,
}

impl Sender<'_> {
    fn send(&self, event: ReadEvent) -> std::io::Result<()> {
        self.tx.blocking_send(event).map_err(|_| std::io::Error::other("the pipeline stopped reading"))
    }

    fn record(&mut self, offset: i64, bytes: &[u8]) -> std::io::Result<()> {
        self.chunk.push(offset, bytes);
        if self.chunk.len() >= CHUNK_RECORDS || self.chunk.byte_len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.chunk.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            self.send(ReadEvent::Chunk(chunk))?;
        }
        Ok(())
    }
}

/// Reads one line (without `\n` / `\r\n`) into `buf`, keeping at most `max` bytes. Returns `None` at end
/// of input, else whether the line was cut.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut cut = false;
    let mut any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        if take > room {
            cut = true;
        }
        buf.extend_from_slice(&available[..take.min(room)]);
        reader.consume(if done { take + 1 } else { take });
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if !cut && buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(cut))
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// Whether a JSON text is one record on its own line (as opposed to the start of a document, an array,
/// or an envelope object).
fn is_ndjson_record(line: &[u8], envelope_key: Option<&str>) -> bool {
    let trimmed = line.trim_ascii();
    if !trimmed.starts_with(b"{") || !is_single_value(trimmed) {
        return false;
    }
    match (envelope_key, object_members(trimmed)) {
        (Some(key), Ok(members)) => !members
            .iter()
            .any(|m| &trimmed[m.key.clone()] == key.as_bytes() && trimmed[m.value.clone()].starts_with(b"[")),
        _ => true,
    }
}

/// The records of a JSON document: array elements, envelope elements, or the values themselves.
fn document_records(doc: &[u8], envelope_key: Option<&str>) -> Vec<std::ops::Range<usize>> {
    let Ok(values) = top_level_values(doc) else {
        return std::iter::once(0..doc.len()).collect();
    };
    let mut out = Vec::new();
    for value in values {
        let text = &doc[value.clone()];
        let inner = if text.starts_with(b"[") {
            array_elements(doc, value.start).ok()
        } else {
            envelope_key.and_then(|key| {
                let members = object_members(text).ok()?;
                let member = members.iter().find(|m| &text[m.key.clone()] == key.as_bytes())?;
                let at = value.start + member.value.start;
                array_elements(doc, at).ok()
            })
        };
        match inner {
            Some(elements) => out.extend(elements),
            None => out.push(value),
        }
    }
    out
}

fn read_all(
    file: &InputFile,
    framing: Framing,
    settings: ReaderSettings,
    tx: &mpsc::Sender<ReadEvent>,
) -> std::io::Result<()> {
    let mut stream = open(file)?;
    let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
    (&mut stream).take(FINGERPRINT_BYTES as u64).read_to_end(&mut head)?;
    let fingerprint = hex::encode(&Sha256::digest(&head)[..8]);
    let mut out = Sender { tx, chunk: RawRecords::default() };
    out.send(ReadEvent::Start { ingest_source: format!("file-{fingerprint}") })?;
    let mut reader = BufReader::with_capacity(READ_BUFFER, std::io::Cursor::new(head).chain(stream));
    let mut line = Vec::new();
    let mut line_no = 0i64;
    let envelope_key = match framing {
        Framing::Json { envelope_key } => Some(envelope_key),
        Framing::Lines => None,
    };
    let is_stdin = file.path.is_none();
    let mut framing_decided = envelope_key.is_none();
    while let Some(cut) = read_line(&mut reader, &mut line, settings.max_record_bytes)? {
        line_no += 1;
        if is_blank(&line) {
            continue;
        }
        if let Some(key) = envelope_key.filter(|_| !framing_decided) {
            framing_decided = true;
            if !cut && !is_ndjson_record(&line, key) {
                return read_document(reader, line, key, settings, &mut out);
            }
        }
        if cut {
            out.flush()?;
            out.send(ReadEvent::TooLarge(line_no, std::mem::take(&mut line)))?;
        } else {
            out.record(line_no, &line)?;
        }
        if is_stdin && reader.buffer().is_empty() {
            out.flush()?; // the next read may wait for input: hand over what we have
        }
    }
    out.flush()?;
    out.send(ReadEvent::End { last_offset: line_no })
}

fn read_document(
    mut reader: impl BufRead,
    first_line: Vec<u8>,
    envelope_key: Option<&str>,
    settings: ReaderSettings,
    out: &mut Sender<'_>,
) -> std::io::Result<()> {
    let mut doc = first_line;
    doc.push(b'\n');
    (&mut reader).take(settings.max_document_bytes as u64).read_to_end(&mut doc)?;
    if !reader.fill_buf()?.is_empty() {
        return Err(std::io::Error::other(format!(
            "the JSON document is larger than max_document_bytes ({} bytes); convert it to one record per line or raise the limit",
            settings.max_document_bytes
        )));
    }
    let records = document_records(&doc, envelope_key);
    let mut offset = 0i64;
    for range in records {
        offset += 1;
        let bytes = &doc[range];
        if bytes.len() > settings.max_record_bytes {
            out.flush()?;
            out.send(ReadEvent::TooLarge(offset, bytes[..settings.max_record_bytes].to_vec()))?;
        } else {
            out.record(offset, bytes)?;
        }
    }
    out.flush()?;
    out.send(ReadEvent::End { last_offset: offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_unwrap_envelopes_arrays_and_sequences() {
        let doc = br#"{"Records":[{"a":1},{"b":2}]} [{"c":3}] {"d":4}"#;
        let records: Vec<&[u8]> = document_records(doc, Some("Records")).into_iter().map(|r| &doc[r]).collect();
        assert_eq!(records, vec![&br#"{"a":1}"#[..], br#"{"b":2}"#, br#"{"c":3}"#, br#"{"d":4}"#]);
        let broken = br#"{"Records":[{"a":1}"#;
        assert_eq!(document_records(broken, Some("Records")), vec![0..broken.len()]);
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
    fn long_lines_are_cut_not_loaded() {
        let text = b"abc\r\n0123456789\nlast";
        let mut reader = BufReader::with_capacity(4, &text[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf, 5).unwrap(), Some(false));
        assert_eq!(buf, b"abc");
        assert_eq!(read_line(&mut reader, &mut buf, 5).unwrap(), Some(true));
        assert_eq!(buf, b"01234");
        assert_eq!(read_line(&mut reader, &mut buf, 5).unwrap(), Some(false));
        assert_eq!(buf, b"last");
        assert_eq!(read_line(&mut reader, &mut buf, 5).unwrap(), None);
    }
}

//! File and stdin sources: find the files of an input, decompress, tell which file it is, and cut records
//! out of the byte stream as the format's framing says, on a reader thread that hands chunks to the
//! pipeline.
//!
//! **Which file it is.** A file's identity (`ingest_source`) starts as `file-` and 16 hex digits of
//! SHA-256 over its first 4 KiB of (decompressed) content, as Vector fingerprints files: the same log
//! under another name or compressed is the same source, so replays resume instead of duplicating. The
//! fingerprint only proposes; the content decides. Every manifest entry of a file chain records
//! `source_bytes`, the content length through the end of its last record, and the SHA-256 of those bytes
//! ([`PrefixMark`]). A file is the chain's file only when its records up to the chain's last committed
//! offset end exactly at the head's `source_bytes` and those bytes hash to the head's SHA-256; then the
//! run resumes after that offset, and an appended file continues its chain. Otherwise it is another file
//! whose first 4 KiB happen to be the same: it gets the identity `<candidate>-<8 hex>`, the hex being the
//! SHA-256 of its first `A` bytes, where `A` is the `source_bytes` of the candidate chain's *first* entry
//! (fixed for good, so the name does not move as the other file grows; 4096 for chains written before
//! the field existed). That chain may exist as well (a third file, or this file on a rerun): the same
//! check applies to it, up to [`MAX_IDENTITY_DEPTH`] levels. The full SHA-256 decides; the 8 hex digits
//! only name. A chain written before these fields existed has no prefix hash: it is trusted by
//! fingerprint as before, and its next entries carry the hash.
//!
//! The check reads the file's records up to the committed offset (hashing them, sending nothing) before
//! it says which chain the file continues; when the file turns out to be another one, it is read again
//! from its start. A regular file is simply reopened. Stdin cannot be reopened: while a stdin check is
//! undecided, the content read is kept in a spool (memory up to 1 MiB, then a temporary file), and a
//! second pass reads the spool before the rest of stdin. The spool holds at most the committed prefix
//! plus one record, on disk, and only while a check is open: memory stays bounded.
//!
//! **Offsets** are 1-based: the line number for line-delimited input, the record number within a JSON
//! document (an envelope or array). Blank lines hold no record and leave a gap in the offsets that the
//! manifest counts as `skipped`.
//!
//! **Records too large to hold.** A line over `max_record_bytes`, a document element over it, and a JSON
//! document over `max_document_bytes` are never cut: the reader streams the record to a temporary file
//! while hashing it ([`Spill`]), keeps its first [`DEAD_LETTER_PREFIX`] bytes for the dead-letter row,
//! and hands over a [`DeadLetterBlob`] that the archive stores whole. A document over the limit becomes
//! one dead letter (offset 1) and the input's end; the run goes on with the next file. Until the framing
//! of a JSON input is known, its first line is read up to `max_document_bytes`, so a one-line document
//! (as CloudTrail writes its S3 objects) is read as a document, not dead-lettered as one long record.
//!
//! **Directories** are walked without following symbolic links (a `loop -> .` link would read every file
//! again and again): links, and entries that are neither files nor directories, are skipped with a
//! warning naming them. An input path that is itself a link is followed: naming it is the user's choice.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use vigil_evidence::{DeadLetterBlob, SourceHead, SourcePrefix};
use vigil_normalize::scan::{array_elements, is_single_value, object_members, top_level_values};
use vigil_normalize::{Framing, RawRecords, ReasonCode};

use crate::{Error, Result};

/// Bytes of content the first-guess identity is computed over.
pub const FINGERPRINT_BYTES: usize = 4096;
/// How many derived identities (`file-<fp>-<hex>-<hex>...`) a file may go through before the reader gives
/// up: each level is another archived file sharing this one's first bytes.
pub const MAX_IDENTITY_DEPTH: usize = 16;
/// Bytes of an oversized record kept in its dead-letter row; the whole record is a blob.
pub const DEAD_LETTER_PREFIX: usize = 64 << 10;
/// A chunk handed to the pipeline holds this many records, or fewer when they reach [`CHUNK_BYTES`]; with
/// 8 chunks in the channel, the reader runs at most 8 MiB ahead whatever the records' sizes.
const CHUNK_RECORDS: usize = 4096;
const CHUNK_BYTES: usize = 1 << 20;
const READ_BUFFER: usize = 256 << 10;
/// A stdin spool stays in memory up to this size, then moves to a temporary file.
const SPOOL_MEMORY: usize = 1 << 20;

/// One file (or stdin) of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Path as shown to people; `-` for stdin.
    pub display: String,
    /// The file; `None` for stdin.
    pub path: Option<PathBuf>,
}

impl InputFile {
    /// The (year, month, day) of the file's modification time (UTC); `None` for stdin or when unknown.
    pub fn modified_date(&self) -> Option<(i32, u32, u32)> {
        use chrono::Datelike;
        let modified = std::fs::metadata(self.path.as_ref()?).ok()?.modified().ok()?;
        let date = chrono::DateTime::<chrono::Utc>::from(modified);
        Some((date.year(), date.month(), date.day()))
    }
}

/// Every regular file below `dir`, sorted, without following symbolic links.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(std::fs::DirEntry::path);
    for entry in entries {
        let path = entry.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        // The entry's own type: a symbolic link is a link here, whatever it points to.
        match entry.file_type() {
            Ok(kind) if kind.is_symlink() => tracing::warn!(
                path = %path.display(),
                "skipped a symbolic link: directory walks do not follow links; give its target as an input to read it"
            ),
            Ok(kind) if kind.is_dir() => walk(&path, out)?,
            Ok(kind) if kind.is_file() => out.push(path),
            Ok(_) => tracing::warn!(path = %path.display(), "skipped: not a regular file or directory"),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipped: its type cannot be read"),
        }
    }
    Ok(())
}

/// The files of an input path: the file itself, every file below a directory (sorted, hidden ones and
/// symbolic links skipped), or stdin for `-`. The path itself may be a link (it is followed).
pub fn expand_input(path: &str) -> Result<Vec<InputFile>> {
    if path == "-" {
        return Ok(vec![InputFile { display: "-".into(), path: None }]);
    }
    let p = Path::new(path);
    let io = |source: std::io::Error| Error::InputIo { input: path.to_string(), source };
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

/// The file's content through the end of one record: its length and SHA-256. The mark of a range's last
/// record is what its manifest entry commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixMark {
    /// Bytes of content.
    pub bytes: u64,
    /// SHA-256 of them.
    pub sha256: [u8; 32],
}

impl PrefixMark {
    /// As the archive records it.
    pub fn to_prefix(&self) -> SourcePrefix {
        SourcePrefix { bytes: self.bytes, sha256: hex::encode(self.sha256) }
    }
}

/// Records in offset order, each with the mark of the content through its end.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The records.
    pub records: RawRecords,
    /// One per record, in the same order.
    pub marks: Vec<PrefixMark>,
}

/// A record too large for a batch, kept whole as a blob.
#[derive(Debug)]
pub struct Oversized {
    /// Its offset.
    pub offset: i64,
    /// `too_large`, or `invalid_json` for a broken document.
    pub code: ReasonCode,
    /// Why, for people.
    pub reason: String,
    /// Its first [`DEAD_LETTER_PREFIX`] bytes, for the dead-letter row.
    pub prefix: Vec<u8>,
    /// The whole record (spooled to a temporary file).
    pub blob: DeadLetterBlob,
    /// The content through its end.
    pub mark: PrefixMark,
}

/// What the reader thread hands over.
#[derive(Debug)]
pub enum ReadEvent {
    /// The file's identity, once decided, before any record.
    Start {
        /// `file-<fingerprint>[-<hex>...]`.
        ingest_source: String,
        /// The last offset of the chain's head the reader resumes after (0 for a new chain).
        resume_after: i64,
    },
    /// Records after `resume_after`, in offset order.
    Chunk(Chunk),
    /// A record over the size limit, kept whole.
    TooLarge(Oversized),
    /// End of input.
    End {
        /// The last offset read (a trailing blank line included).
        last_offset: i64,
        /// Records at or before `resume_after`: already archived, not sent.
        already_archived: u64,
    },
    /// Reading failed; nothing after this.
    Failed(Error),
}

/// Looks up the head of a file chain in the archive (`Archive::source_head` of partition 0).
pub type ChainLookup = Arc<dyn Fn(&str) -> std::result::Result<Option<SourceHead>, String> + Send + Sync>;

/// Reads the input on a new thread and sends its records; returns the receiving end.
pub fn spawn_reader(
    file: InputFile,
    framing: Framing,
    settings: ReaderSettings,
    lookup: ChainLookup,
) -> mpsc::Receiver<ReadEvent> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::Builder::new()
        .name("vigil-reader".into())
        .spawn(move || {
            let display = file.display.clone();
            let read = Origin::open(&file).and_then(|origin| read_all(&file, origin, framing, settings, &lookup, &tx));
            if let Err(e) = read {
                let _ = tx.blocking_send(ReadEvent::Failed(Error::InputIo { input: display, source: e }));
            }
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start a reader thread"))
        .ok();
    rx
}

/// Limits the reader applies.
#[derive(Debug, Clone, Copy)]
pub struct ReaderSettings {
    /// Larger records are dead-lettered `too_large`, kept whole as blobs.
    pub max_record_bytes: usize,
    /// A larger JSON document is dead-lettered whole (one blob), and the input ends there.
    pub max_document_bytes: usize,
}

fn open_stream(raw: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read + Send>> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, raw);
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip { Box::new(flate2::read::MultiGzDecoder::new(reader)) } else { Box::new(reader) })
}

/// Content read from stdin while it may have to be read again.
#[derive(Default)]
struct Spool {
    memory: Vec<u8>,
    file: Option<tempfile::NamedTempFile>,
    len: u64,
}

impl Spool {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() && self.memory.len() + bytes.len() > SPOOL_MEMORY {
            let mut file = tempfile::NamedTempFile::new()?;
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(bytes)?,
            None => self.memory.extend_from_slice(bytes),
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// A reader of what the spool holds now.
    fn replay(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(match &self.file {
            Some(file) => Box::new(file.reopen()?.take(self.len)),
            None => Box::new(std::io::Cursor::new(self.memory.clone())),
        })
    }
}

/// Where the content comes from: a file, reopened for each pass, or stdin, replayed from its spool.
enum Origin {
    Path(PathBuf),
    Stdin { live: Box<dyn Read + Send>, spool: Spool },
}

impl Origin {
    fn open(file: &InputFile) -> std::io::Result<Self> {
        Ok(match &file.path {
            Some(p) => Origin::Path(p.clone()),
            None => Origin::Stdin { live: open_stream(Box::new(std::io::stdin()))?, spool: Spool::default() },
        })
    }

    /// The content from its first byte. On stdin, bytes read live are added to the spool while `tee` is set.
    fn pass(&mut self, tee: &Arc<AtomicBool>) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Origin::Path(p) => open_stream(Box::new(File::open(p)?))?,
            Origin::Stdin { live, spool } => {
                Box::new(Replay { spooled: Some(spool.replay()?), live, spool, tee: tee.clone() })
            }
        })
    }
}

struct Replay<'a> {
    spooled: Option<Box<dyn Read + Send>>,
    live: &'a mut Box<dyn Read + Send>,
    spool: &'a mut Spool,
    tee: Arc<AtomicBool>,
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(spooled) = &mut self.spooled {
            let n = spooled.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.spooled = None;
        }
        let n = self.live.read(buf)?;
        if self.tee.load(Ordering::Relaxed) {
            self.spool.append(&buf[..n])?;
        }
        Ok(n)
    }
}

/// SHA-256 of the content read so far.
#[derive(Clone, Default)]
struct Content {
    sha: Sha256,
    len: u64,
}

impl Content {
    fn feed(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    fn mark(&self) -> PrefixMark {
        PrefixMark { bytes: self.len, sha256: self.sha.clone().finalize().into() }
    }
}

/// An oversized record on its way to a temporary file: hashed, its first bytes kept. Without a file
/// (a record already archived, read only to check the file's identity), it is only hashed.
struct Spill {
    file: Option<std::io::BufWriter<tempfile::NamedTempFile>>,
    sha: Sha256,
    size: u64,
    prefix: Vec<u8>,
}

impl Spill {
    fn new(keep: bool) -> std::io::Result<Self> {
        let file = if keep {
            Some(std::io::BufWriter::with_capacity(READ_BUFFER, tempfile::NamedTempFile::new()?))
        } else {
            None
        };
        Ok(Spill { file, sha: Sha256::new(), size: 0, prefix: Vec::new() })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sha.update(bytes);
        self.size += bytes.len() as u64;
        let room = DEAD_LETTER_PREFIX.saturating_sub(self.prefix.len());
        self.prefix.extend_from_slice(&bytes[..room.min(bytes.len())]);
        if let Some(file) = &mut self.file {
            file.write_all(bytes)?;
        }
        Ok(())
    }

    /// The kept prefix and the blob (`None` when there is no file).
    fn finish(self, offset: i64) -> std::io::Result<(Vec<u8>, Option<DeadLetterBlob>)> {
        let sha = hex::encode(self.sha.finalize());
        let blob = match self.file {
            Some(writer) => {
                let file = writer.into_inner().map_err(std::io::IntoInnerError::into_error)?;
                let path: Arc<dyn AsRef<Path> + Send + Sync> = Arc::new(file.into_temp_path());
                Some(DeadLetterBlob::spooled(offset, path, self.size, sha))
            }
            None => None,
        };
        Ok((self.prefix, blob))
    }
}

/// Whether the reader goes on, or found that the file is not the chain's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    Mismatch,
}

/// Sends what a pass reads, deciding first (for a chain with a prefix hash) whether the file is the
/// chain's file.
struct Framer<'a> {
    tx: &'a mpsc::Sender<ReadEvent>,
    chunk: Chunk,
    ingest_source: String,
    /// Records at or before this offset are already archived: counted, not sent.
    resume_after: i64,
    /// While set, the identity is undecided: the head's committed content length and SHA-256.
    check: Option<(u64, [u8; 32])>,
    /// Cleared once decided: stdin needs no spool any more.
    tee: Arc<AtomicBool>,
    already: u64,
    /// The mark of the last record at or before `resume_after`.
    withheld: Option<PrefixMark>,
}

impl<'a> Framer<'a> {
    /// A framer for the chain `ingest_source` with head `head`; a chain without a prefix hash (new, or
    /// written before the hash existed) starts at once.
    fn new(
        tx: &'a mpsc::Sender<ReadEvent>,
        ingest_source: String,
        head: Option<&SourceHead>,
        tee: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let resume_after = head.map_or(0, |h| h.head.last_offset);
        let check = head.and_then(|h| {
            let sha: [u8; 32] = hex::decode(h.head.source_prefix_sha256.as_deref()?).ok()?.try_into().ok()?;
            Some((h.head.source_bytes?, sha))
        });
        tee.store(check.is_some(), Ordering::Relaxed);
        let mut framer =
            Framer { tx, chunk: Chunk::default(), ingest_source, resume_after, check, tee, already: 0, withheld: None };
        if framer.check.is_none() {
            framer.start()?;
        }
        Ok(framer)
    }

    fn send(&self, event: ReadEvent) -> std::io::Result<()> {
        self.tx.blocking_send(event).map_err(|_| std::io::Error::other("the pipeline stopped reading"))
    }

    fn start(&mut self) -> std::io::Result<()> {
        self.check = None;
        self.tee.store(false, Ordering::Relaxed);
        self.send(ReadEvent::Start { ingest_source: self.ingest_source.clone(), resume_after: self.resume_after })
    }

    /// Whether a record at `offset` is to be kept (not already archived).
    fn keeps(&self, offset: i64) -> bool {
        offset > self.resume_after
    }

    /// Handles what comes before sending a record: already archived (counted; checked against the head),
    /// or the first one after them (the identity decided). `Some` when the record is not to be sent.
    fn before(&mut self, offset: i64, mark: PrefixMark) -> std::io::Result<Option<Step>> {
        if offset <= self.resume_after {
            self.already += 1;
            if let Some((bytes, _)) = self.check
                && mark.bytes > bytes
            {
                return Ok(Some(Step::Mismatch)); // past the committed content already: another file
            }
            self.withheld = Some(mark);
            return Ok(Some(Step::Go));
        }
        if self.check.is_some() && !self.decide()? {
            return Ok(Some(Step::Mismatch));
        }
        Ok(None)
    }

    /// The file is the chain's file when its records up to the committed offset end where the committed
    /// content ends and hash to the same SHA-256.
    fn decide(&mut self) -> std::io::Result<bool> {
        let Some((bytes, sha)) = self.check else { return Ok(true) };
        if self.withheld.is_some_and(|m| m.bytes == bytes && m.sha256 == sha) {
            self.start()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn record(&mut self, offset: i64, bytes: &[u8], mark: PrefixMark) -> std::io::Result<Step> {
        if let Some(step) = self.before(offset, mark)? {
            return Ok(step);
        }
        self.chunk.records.push(offset, bytes);
        self.chunk.marks.push(mark);
        if self.chunk.records.len() >= CHUNK_RECORDS || self.chunk.records.byte_len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(Step::Go)
    }

    fn oversized(
        &mut self,
        offset: i64,
        spill: Spill,
        code: ReasonCode,
        reason: String,
        mark: PrefixMark,
    ) -> std::io::Result<Step> {
        if let Some(step) = self.before(offset, mark)? {
            return Ok(step);
        }
        let (prefix, blob) = spill.finish(offset)?;
        let blob = blob.ok_or_else(|| std::io::Error::other("an oversized record to keep was not spooled (a bug)"))?;
        self.flush()?;
        self.send(ReadEvent::TooLarge(Oversized { offset, code, reason, prefix, blob, mark }))?;
        Ok(Step::Go)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.chunk.records.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            self.send(ReadEvent::Chunk(chunk))?;
        }
        Ok(())
    }

    fn end(&mut self, last_offset: i64) -> std::io::Result<Step> {
        if self.check.is_some() && !self.decide()? {
            return Ok(Step::Mismatch);
        }
        self.flush()?;
        self.send(ReadEvent::End { last_offset, already_archived: self.already })?;
        Ok(Step::Go)
    }
}

/// How a line read ended.
enum Line {
    /// End of input: no line.
    Eof,
    /// A line in the buffer (without its terminator); the terminator consumed after it (`\r\n`, `\n`,
    /// `\r` at the end of input, or nothing). Not yet fed to the content hash.
    Text(&'static [u8]),
    /// A line over the limit, streamed into a spill (and the content hash) with a `\r` before its
    /// newline; the newline consumed after it.
    Spilled(Box<Spill>, &'static [u8]),
}

/// Reads one line into `buf`, or, once it passes `max` bytes, into a spill (kept in a file when `keep`).
fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
    content: &mut Content,
    keep: bool,
) -> std::io::Result<Line> {
    buf.clear();
    let mut spill: Option<Spill> = None;
    let mut any = false;
    let mut terminated = false;
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
        let piece = &available[..take];
        match &mut spill {
            Some(s) => {
                s.write(piece)?;
                content.feed(piece);
            }
            None if buf.len() + take > max => {
                let mut s = Spill::new(keep)?;
                s.write(buf)?;
                content.feed(buf);
                s.write(piece)?;
                content.feed(piece);
                buf.clear();
                spill = Some(s);
            }
            None => buf.extend_from_slice(piece),
        }
        reader.consume(if done { take + 1 } else { take });
        if done {
            terminated = true;
            break;
        }
    }
    let newline: &'static [u8] = if terminated { b"\n" } else { b"" };
    if !any {
        return Ok(Line::Eof);
    }
    if let Some(s) = spill {
        return Ok(Line::Spilled(Box::new(s), newline));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
        return Ok(Line::Text(if terminated { b"\r\n" } else { b"\r" }));
    }
    Ok(Line::Text(newline))
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

/// The records of a JSON document: array elements, envelope elements, or the values themselves; and
/// whether the document parsed (a broken one is one record, the whole document).
fn document_records(doc: &[u8], envelope_key: Option<&str>) -> (Vec<std::ops::Range<usize>>, bool) {
    let Ok(values) = top_level_values(doc) else {
        return (std::iter::once(0..doc.len()).collect(), false);
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
    (out, true)
}

fn read_all(
    file: &InputFile,
    mut origin: Origin,
    framing: Framing,
    settings: ReaderSettings,
    lookup: &ChainLookup,
    tx: &mpsc::Sender<ReadEvent>,
) -> std::io::Result<()> {
    let tee = Arc::new(AtomicBool::new(true));
    let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
    origin.pass(&tee)?.take(FINGERPRINT_BYTES as u64).read_to_end(&mut head)?;
    let mut candidate = format!("file-{}", hex::encode(&Sha256::digest(&head)[..8]));
    for _ in 0..MAX_IDENTITY_DEPTH {
        let chain = lookup(&candidate).map_err(std::io::Error::other)?;
        let mut framer = Framer::new(tx, candidate.clone(), chain.as_ref(), tee.clone())?;
        let step = frame(origin.pass(&tee)?, framing, settings, file.path.is_none(), &mut framer)?;
        let Some(chain) = chain.filter(|_| step == Step::Mismatch) else { return Ok(()) };
        // Another file with the same first bytes: named by the hash of its first `anchor` bytes.
        tee.store(true, Ordering::Relaxed);
        let anchor = chain.first_source_bytes.unwrap_or(FINGERPRINT_BYTES as u64);
        let mut hasher = HashWriter(Sha256::new());
        std::io::copy(&mut origin.pass(&tee)?.take(anchor), &mut hasher)?;
        let next = format!("{candidate}-{}", &hex::encode(hasher.0.finalize())[..8]);
        tracing::info!(
            input = %file.display,
            chain = %candidate,
            identity = %next,
            "the file's first bytes match an archived file's, but not the bytes that file's chain holds: \
             a different file, archived under its own identity"
        );
        candidate = next;
    }
    Err(std::io::Error::other(format!(
        "{MAX_IDENTITY_DEPTH} archived files share this file's first bytes, each differing later: its identity \
         cannot be told apart; archive it into another evidence location"
    )))
}

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One pass over the content from its first byte: frames records and hands them to `out`.
fn frame(
    stream: impl Read,
    framing: Framing,
    settings: ReaderSettings,
    is_stdin: bool,
    out: &mut Framer<'_>,
) -> std::io::Result<Step> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, stream);
    let mut content = Content::default();
    let mut line = Vec::new();
    let mut line_no = 0i64;
    let envelope_key = match framing {
        Framing::Json { envelope_key } => Some(envelope_key),
        Framing::Lines => None,
    };
    let mut framing_decided = envelope_key.is_none();
    loop {
        let keep = out.keeps(line_no + 1);
        // Until the framing is known, the first line may be a whole one-line document (a CloudTrail S3
        // object is one line of many MB): it is read up to max_document_bytes.
        let limit = if framing_decided {
            settings.max_record_bytes
        } else {
            settings.max_record_bytes.max(settings.max_document_bytes)
        };
        let terminator = match read_line(&mut reader, &mut line, limit, &mut content, keep)? {
            Line::Eof => break,
            Line::Text(terminator) => {
                line_no += 1;
                if is_blank(&line) {
                    content.feed(&line);
                    content.feed(terminator);
                    continue;
                }
                if let Some(key) = envelope_key.filter(|_| !framing_decided) {
                    framing_decided = true;
                    if !is_ndjson_record(&line, key) {
                        let mut doc = std::mem::take(&mut line);
                        doc.extend_from_slice(terminator);
                        return read_document(reader, doc, key, settings, content, out);
                    }
                }
                content.feed(&line);
                let step = if line.len() > settings.max_record_bytes {
                    // A first line read to the document limit that is one record after all.
                    let mut spill = Spill::new(keep)?;
                    spill.write(&line)?;
                    let reason = format!(
                        "record of {} bytes is larger than max_record_bytes ({}); kept whole",
                        line.len(),
                        settings.max_record_bytes
                    );
                    out.oversized(line_no, spill, ReasonCode::TooLarge, reason, content.mark())?
                } else {
                    out.record(line_no, &line, content.mark())?
                };
                if step == Step::Mismatch {
                    return Ok(Step::Mismatch);
                }
                terminator
            }
            Line::Spilled(spill, terminator) => {
                line_no += 1;
                framing_decided = true;
                let reason = format!(
                    "record of {} bytes is larger than max_record_bytes ({}); kept whole",
                    spill.size, settings.max_record_bytes
                );
                if out.oversized(line_no, *spill, ReasonCode::TooLarge, reason, content.mark())? == Step::Mismatch {
                    return Ok(Step::Mismatch);
                }
                terminator
            }
        };
        content.feed(terminator);
        if is_stdin && reader.buffer().is_empty() {
            out.flush()?; // the next read may wait for input: hand over what we have
        }
    }
    out.end(line_no)
}

/// The rest of the input as one JSON document starting with `doc` (its first line, hashed not yet).
fn read_document(
    mut reader: impl BufRead,
    mut doc: Vec<u8>,
    envelope_key: Option<&str>,
    settings: ReaderSettings,
    mut content: Content,
    out: &mut Framer<'_>,
) -> std::io::Result<Step> {
    let room = settings.max_document_bytes.saturating_sub(doc.len());
    (&mut reader).take(room as u64).read_to_end(&mut doc)?;
    if !reader.fill_buf()?.is_empty() {
        // Over the limit: the whole document, streamed to a spill, is one dead letter.
        let mut spill = Spill::new(out.keeps(1))?;
        spill.write(&doc)?;
        content.feed(&doc);
        drop(doc);
        loop {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            spill.write(available)?;
            content.feed(available);
            let n = available.len();
            reader.consume(n);
        }
        let reason = format!(
            "a JSON document of {} bytes is larger than max_document_bytes ({}); kept whole as one dead letter \
             (convert it to one record per line, or raise the limit, to read its records)",
            spill.size, settings.max_document_bytes
        );
        if out.oversized(1, spill, ReasonCode::TooLarge, reason, content.mark())? == Step::Mismatch {
            return Ok(Step::Mismatch);
        }
        return out.end(1);
    }
    let (records, parsed) = document_records(&doc, envelope_key);
    let mut offset = 0i64;
    let mut fed = 0usize;
    for range in records {
        offset += 1;
        content.feed(&doc[fed..range.end.max(fed)]);
        fed = fed.max(range.end);
        let bytes = &doc[range];
        let step = if bytes.len() > settings.max_record_bytes {
            let mut spill = Spill::new(out.keeps(offset))?;
            spill.write(bytes)?;
            let (code, reason) = if parsed {
                (
                    ReasonCode::TooLarge,
                    format!(
                        "record of {} bytes is larger than max_record_bytes ({}); kept whole",
                        bytes.len(),
                        settings.max_record_bytes
                    ),
                )
            } else {
                (
                    ReasonCode::InvalidJson,
                    format!(
                        "invalid JSON: a broken document of {} bytes (over max_record_bytes, {}); kept whole",
                        bytes.len(),
                        settings.max_record_bytes
                    ),
                )
            };
            out.oversized(offset, spill, code, reason, content.mark())?
        } else {
            out.record(offset, bytes, content.mark())?
        };
        if step == Step::Mismatch {
            return Ok(Step::Mismatch);
        }
    }
    out.end(offset)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

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
                tx.blocking_send(ReadEvent::Failed(Error::Input { input: "test".into(), reason: e.to_string() }))
                    .unwrap();
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
        let expected =
            format!("{identity}-{}", &hex::encode(Sha256::digest(&std::fs::read(&b).unwrap()[..anchor]))[..8]);
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
        let expected: Vec<Vec<u8>> =
            other.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
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
}

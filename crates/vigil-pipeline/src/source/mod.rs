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

mod framing;
mod origin;
#[cfg(test)]
mod tests;

use framing::*;
use origin::*;

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

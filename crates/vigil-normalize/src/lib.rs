//! Bytes to canonical Arrow events, one normalizer per log format.
//!
//! ```text
//!  RawRecords (bytes + offsets) ──normalize_records──> NormalizedBatch { batches, dead_letters }
//!      │ rayon: one chunk per task, one EventBatchBuilder per chunk, order kept
//!      └─ each record: simd-json tape (or a line parser) ─> EventRow ─> Arrow builders
//! ```
//!
//! Every record ends up in exactly one of the two outputs: a row of [`vigil_schema::event_schema`] or a
//! [`DeadLetter`] with a [`ReasonCode`] and a sentence that names the field. Nothing here panics on input:
//! text is cut only where a search found an ASCII delimiter (or with `get`), numbers and times are range
//! checked (every time lies in years 0000-9999, see [`time`]), and property tests with per-format generators
//! (`tests/hostile_records.rs`) and fuzz targets (`fuzz/`, `scripts/fuzz.sh`) keep it so. Should a normalizer
//! panic all the same (a bug), [`normalize_records`] turns that one record into an `internal_error` dead
//! letter and goes on.
//!
//! Formats (field tables in each module's docs): [`cloudtrail`], [`k8s_audit`], [`web_access`]
//! (`web_access_json`, `apache_combined`), [`linux_auth`] (syslog sshd/sudo/su/PAM), [`json`] (generic,
//! mapping in config; also `okta` and `github_audit`, whose field tables are on [`json::Mapping::okta`]
//! and [`json::Mapping::github_audit`]).
//!
//! ```
//! use vigil_normalize::{Format, FormatOptions, RawRecords, normalize_records};
//! let normalizer = Format::Cloudtrail.build(&FormatOptions::default()).unwrap();
//! let mut records = RawRecords::default();
//! records.push(1, br#"{"eventTime":"2024-08-02T08:53:24Z","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com"}"#);
//! records.push(2, b"not json");
//! let out = normalize_records(normalizer.as_ref(), records, "file-demo", 0, 0, 1024);
//! assert_eq!(out.rows(), 1);
//! assert_eq!(out.dead_letters[0].code.as_str(), "invalid_json");
//! ```

pub mod cloudtrail;
mod fields;
mod formats;
pub mod json;
pub mod k8s_audit;
pub mod linux_auth;
/// The JSON structural scanner, from `vigil_schema::json_scan` (below the normalizers and the rules).
pub use vigil_schema::json_scan as scan;
pub mod time;
pub mod web_access;

use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{BinaryArray, BinaryBuilder, RecordBatch};
use arrow::buffer::{Buffer, OffsetBuffer};
use rayon::prelude::*;
use serde::Deserialize;
use simd_json::tape::Tape;
use vigil_schema::{EventBatchBuilder, Provenance};

/// Errors building a normalizer from configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The format name is not one vigil knows.
    #[error("unknown input format `{name}`: use one of {known}")]
    UnknownFormat {
        /// What the user wrote.
        name: String,
        /// The formats vigil knows.
        known: String,
    },
    /// A field mapping names a column that does not exist or cannot be mapped.
    #[error("field mapping for `{column}` is invalid: {reason}")]
    InvalidMapping {
        /// The canonical column.
        column: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use formats::Format;

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Format::ALL.iter().copied().find(|f| f.name() == s).ok_or_else(|| Error::UnknownFormat {
            name: s.to_string(),
            known: Format::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Per-input options: `source`, `class` and `fields` of the JSON formats (`web_access_json`, `json`),
/// `year` of `linux_auth`; each format ignores the others.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FormatOptions {
    /// Value of the `source` column (default `web.access` / `json`).
    pub source: Option<String>,
    /// Value of the `class` column for every record.
    pub class: Option<String>,
    /// Canonical column -> dotted path of the JSON field that fills it (`actor_user = "user.name"`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// `linux_auth`: the year of syslog times that carry none (default: from the file's date).
    pub year: Option<i32>,
    /// `linux_auth`: the (year, month, day) the file being read was last modified, set by the pipeline.
    #[serde(skip)]
    pub file_date: Option<(i32, u32, u32)>,
}

/// How a format's records are cut out of a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One record per line (text logs).
    Lines,
    /// JSON: one object per line (NDJSON), or a whole document: a bare array of records, a sequence of
    /// objects, or an envelope object whose `envelope_key` array holds the records.
    Json {
        /// `Records` for CloudTrail, `items` for Kubernetes `EventList`.
        envelope_key: Option<&'static str>,
    },
}

/// Why a record was dead-lettered: a small fixed set, for metrics and for filtering the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    /// Not valid JSON.
    InvalidJson,
    /// Valid JSON, but not an object.
    NotAnObject,
    /// A field the format requires is absent.
    MissingField,
    /// A field has a type or value the format does not allow.
    InvalidField,
    /// No usable event time.
    InvalidTime,
    /// A text line that does not match the format.
    UnrecognizedLine,
    /// Bytes that are not UTF-8 where the format needs text.
    InvalidUtf8,
    /// Larger than the configured record size limit.
    TooLarge,
    /// The normalizer panicked on the record: a bug in vigil, caught so the rest of the input goes on.
    InternalError,
}

impl ReasonCode {
    /// The code as written in dead letters and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::InvalidJson => "invalid_json",
            ReasonCode::NotAnObject => "not_an_object",
            ReasonCode::MissingField => "missing_field",
            ReasonCode::InvalidField => "invalid_field",
            ReasonCode::InvalidTime => "invalid_time",
            ReasonCode::UnrecognizedLine => "unrecognized_line",
            ReasonCode::InvalidUtf8 => "invalid_utf8",
            ReasonCode::TooLarge => "too_large",
            ReasonCode::InternalError => "internal_error",
        }
    }
}

/// A record refused by a normalizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Machine-readable kind.
    pub code: ReasonCode,
    /// What is wrong, naming the field.
    pub message: String,
}

impl Rejection {
    /// A rejection of `code` with `message`.
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Rejection { code, message: message.into() }
    }
}

/// A record that could not be normalized, with everything needed to find and replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Offset of the record (Kafka offset or 1-based record number in a file).
    pub offset: i64,
    /// Machine-readable kind.
    pub code: ReasonCode,
    /// Human-readable reason.
    pub reason: String,
    /// The original bytes.
    pub raw: Vec<u8>,
}

/// Reusable per-thread buffers for normalizers (parse scratch, tape, attrs text).
pub struct Scratch {
    data: Vec<u8>,
    buffers: simd_json::Buffers,
    tape: Option<Tape<'static>>,
    /// Text buffer for `attrs`.
    pub(crate) attrs: String,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch { data: Vec::new(), buffers: simd_json::Buffers::new(4096), tape: None, attrs: String::new() }
    }
}

impl fmt::Debug for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch").finish_non_exhaustive()
    }
}

impl Scratch {
    /// Parses `raw` (left untouched) into a tape and calls `f` with its root value and the attrs buffer.
    pub(crate) fn with_json<R>(
        &mut self,
        raw: &[u8],
        f: impl FnOnce(fields::V<'_, '_>, &mut String) -> Result<R, Rejection>,
    ) -> Result<R, Rejection> {
        self.data.clear();
        self.data.extend_from_slice(raw);
        let mut tape = self.tape.take().unwrap_or_else(Tape::null).reset();
        let out = match simd_json::fill_tape(&mut self.data, &mut self.buffers, &mut tape) {
            Ok(()) => f(tape.as_value(), &mut self.attrs),
            Err(e) => Err(Rejection::new(ReasonCode::InvalidJson, format!("invalid JSON: {e}"))),
        };
        self.tape = Some(tape.reset());
        out
    }
}

/// One log format: turns one record's bytes into one canonical row, or refuses it.
pub trait Normalizer: Send + Sync + fmt::Debug {
    /// The format name (`cloudtrail`, ...).
    fn format(&self) -> &'static str;

    /// The `source` column value of its events (`aws.cloudtrail`, ...).
    fn source(&self) -> &str;

    /// How records are cut out of a stream of this format.
    fn framing(&self) -> Framing;

    /// Normalizes `raw` and appends it to `out`, or refuses it. Must append exactly one row on `Ok` and
    /// none on `Err`.
    fn normalize(
        &self,
        raw: &[u8],
        provenance: &Provenance<'_>,
        scratch: &mut Scratch,
        out: &mut EventBatchBuilder,
    ) -> Result<(), Rejection>;
}

/// A micro-batch of raw records stored back to back, with their offsets: no allocation per record.
#[derive(Debug, Clone, Default)]
pub struct RawRecords {
    data: Vec<u8>,
    spans: Vec<(i64, usize, usize)>,
}

impl RawRecords {
    /// Appends one record read at `offset`.
    pub fn push(&mut self, offset: i64, bytes: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.spans.push((offset, start, self.data.len()));
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Total bytes of all records.
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// Removes every record, keeping the allocation.
    pub fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
    }

    /// The records as `(offset, bytes)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> + '_ {
        self.spans.iter().map(|&(o, s, e)| (o, &self.data[s..e]))
    }
}

/// The result of normalizing a micro-batch: rows in input order (split in several batches, one per
/// parallel chunk) and the refused records.
#[derive(Debug, Default)]
pub struct NormalizedBatch {
    /// Canonical rows, input order kept across the batches.
    pub batches: Vec<RecordBatch>,
    /// Refused records, input order kept.
    pub dead_letters: Vec<DeadLetter>,
}

impl NormalizedBatch {
    /// Rows normalized.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The dead letters of one source partition as a batch of [`vigil_schema::dead_letter_schema`].
pub fn dead_letters_to_batch(
    dead: &[DeadLetter],
    normalizer: &dyn Normalizer,
    ingest_source: &str,
    partition: i32,
    ingest_time_us: i64,
) -> RecordBatch {
    use arrow::array::{BinaryBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
    let n = dead.len();
    let mut source = StringBuilder::with_capacity(n, n * 16);
    let mut format = StringBuilder::with_capacity(n, n * 16);
    let mut code = StringBuilder::with_capacity(n, n * 16);
    let mut reason = StringBuilder::with_capacity(n, n * 64);
    let mut raw = BinaryBuilder::with_capacity(n, dead.iter().map(|d| d.raw.len()).sum());
    let mut event_id = StringBuilder::with_capacity(n, n * 32);
    let mut src = StringBuilder::with_capacity(n, n * 16);
    let mut part = Int32Builder::with_capacity(n);
    let mut offset = Int64Builder::with_capacity(n);
    let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for d in dead {
        source.append_value(normalizer.source());
        format.append_value(normalizer.format());
        code.append_value(d.code.as_str());
        reason.append_value(&d.reason);
        raw.append_value(&d.raw);
        event_id.append_value(vigil_schema::event_id(normalizer.source(), &d.raw));
        src.append_value(ingest_source);
        part.append_value(partition);
        offset.append_value(d.offset);
        time.append_value(ingest_time_us);
    }
    let columns: Vec<arrow::array::ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(format.finish()),
        Arc::new(code.finish()),
        Arc::new(reason.finish()),
        Arc::new(raw.finish()),
        Arc::new(event_id.finish()),
        Arc::new(src.finish()),
        Arc::new(part.finish()),
        Arc::new(offset.finish()),
        Arc::new(time.finish()),
    ];
    // Columns are built in dead_letter_schema's order and types.
    #[allow(clippy::expect_used)]
    RecordBatch::try_new(vigil_schema::dead_letter_schema(), columns)
        .expect("dead letter columns match the schema (bug)")
}

/// Normalizes `records` on the current rayon pool, `chunk_rows` records per task. The output does not
/// depend on the number of threads or on `chunk_rows`, only on the records.
///
/// The records' buffer becomes the events' `raw` column as it is: the bytes are not copied again (a
/// chunk that refused records copies the kept ones).
///
/// A panic of the normalizer on one record (a bug) does not stop the batch: that record becomes a dead
/// letter [`ReasonCode::InternalError`] whose reason carries the panic message, one `error` is logged with
/// its provenance (never its bytes), and the other records come out as they would have without it (see
/// [`normalize_chunk`]). Rust's panic hook still prints its own message to stderr for each such panic.
pub fn normalize_records(
    normalizer: &dyn Normalizer,
    records: RawRecords,
    ingest_source: &str,
    partition: i32,
    ingest_time_us: i64,
    chunk_rows: usize,
) -> NormalizedBatch {
    let RawRecords { data, spans } = records;
    let data = Buffer::from_vec(data);
    let context = ChunkContext { normalizer, data: &data, ingest_source, partition, ingest_time_us };
    let parts: Vec<(Vec<RecordBatch>, Vec<DeadLetter>)> = spans
        .par_chunks(chunk_rows.max(1))
        .map_init(Scratch::default, |scratch, chunk| normalize_chunk(&context, chunk, scratch))
        .collect();
    let mut out = NormalizedBatch::default();
    for (batches, dead) in parts {
        out.batches.extend(batches);
        out.dead_letters.extend(dead);
    }
    out
}

/// What every chunk of one [`normalize_records`] call shares.
struct ChunkContext<'a> {
    normalizer: &'a dyn Normalizer,
    data: &'a Buffer,
    ingest_source: &'a str,
    partition: i32,
    ingest_time_us: i64,
}

/// A record of a chunk on which the normalizer panicked.
struct Panicked {
    /// Index in the chunk.
    index: usize,
    /// Its dead letter.
    dead: DeadLetter,
}

/// Normalizes one chunk: its rows (one batch, or several when a record panicked) and its dead letters.
///
/// A panic may strike anywhere in a normalizer, even inside [`EventBatchBuilder::append`] with part of a
/// row written (columns of unequal length), and may leave `scratch` in any state; the builder has no undo.
/// So on a panic at record `k` of the segment being built, the segment's builder and `scratch` are thrown
/// away, the records before `k` are normalized again into a fresh builder and finished as one batch, `k`
/// becomes an `internal_error` dead letter, and a new segment starts after it. Normalizers are
/// deterministic, so the records before `k` give the same rows again; a record that panics is never run
/// again (and is logged once). Without a panic this is one pass and one batch, as before.
fn normalize_chunk(
    context: &ChunkContext<'_>,
    chunk: &[(i64, usize, usize)],
    scratch: &mut Scratch,
) -> (Vec<RecordBatch>, Vec<DeadLetter>) {
    let mut batches = Vec::new();
    let mut dead = Vec::new();
    // Panics whose dead letters are not out yet, the smallest index on top: the segment ends there.
    let mut panicked: Vec<Panicked> = Vec::new();
    let mut start = 0;
    loop {
        let end = panicked.last().map_or(chunk.len(), |p| p.index);
        let segment = chunk.get(start..end).unwrap_or_default();
        match normalize_segment(context, segment, scratch) {
            Ok((batch, refused)) => {
                batches.extend(batch);
                dead.extend(refused);
                let Some(p) = panicked.pop() else { break };
                dead.push(p.dead);
                start = p.index + 1;
            }
            Err((at, message)) => {
                *scratch = Scratch::default();
                let index = start + at;
                let Some(&(offset, s, e)) = chunk.get(index) else { break };
                panicked.push(Panicked { index, dead: internal_error(context, offset, &context.data[s..e], &message) });
            }
        }
    }
    (batches, dead)
}

/// Normalizes the records of `segment` into one batch (none when no row) and their dead letters, or
/// returns where in the segment the normalizer panicked, with the panic's message.
#[allow(clippy::type_complexity)]
fn normalize_segment(
    context: &ChunkContext<'_>,
    segment: &[(i64, usize, usize)],
    scratch: &mut Scratch,
) -> Result<(Option<RecordBatch>, Vec<DeadLetter>), (usize, String)> {
    let ChunkContext { normalizer, data, ingest_source, partition, ingest_time_us } = *context;
    let mut builder = EventBatchBuilder::with_capacity_external_raw(segment.len());
    let mut dead = Vec::new();
    for (i, &(offset, start, end)) in segment.iter().enumerate() {
        let raw = &data[start..end];
        let provenance = Provenance { ingest_source, partition, offset, ingest_time_us };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            normalizer.normalize(raw, &provenance, scratch, &mut builder)
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(rejection)) => {
                dead.push(DeadLetter { offset, code: rejection.code, reason: rejection.message, raw: raw.to_vec() })
            }
            Err(payload) => return Err((i, panic_message(payload.as_ref()))),
        }
    }
    let batch = (!builder.is_empty()).then(|| builder.finish_with_raw(raw_column(data, segment, &dead)));
    Ok((batch, dead))
}

/// The dead letter of a record the normalizer panicked on; logs it once, with its provenance.
fn internal_error(context: &ChunkContext<'_>, offset: i64, raw: &[u8], message: &str) -> DeadLetter {
    let format = context.normalizer.format();
    tracing::error!(
        format,
        ingest_source = context.ingest_source,
        partition = context.partition,
        offset,
        panic = message,
        "the normalizer panicked on a record (a bug in vigil: please report it); the record is dead-lettered \
         internal_error and the run goes on"
    );
    DeadLetter {
        offset,
        code: ReasonCode::InternalError,
        reason: format!(
            "internal error: the {format} normalizer panicked on this record ({message}); this is a bug in vigil, \
             please report it with this record"
        ),
        raw: raw.to_vec(),
    }
}

/// The text of a panic's payload (`panic!` with a literal or a formatted message), else a placeholder.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// The `raw` column of a chunk's rows: its records minus the `dead` ones (in order, offsets unique). When
/// none was refused, the column is a slice of `data` itself.
fn raw_column(data: &Buffer, chunk: &[(i64, usize, usize)], dead: &[DeadLetter]) -> BinaryArray {
    let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
        return BinaryArray::from_iter_values(std::iter::empty::<&[u8]>());
    };
    let (base, len) = (first.1, last.2 - first.1);
    let contiguous = chunk.windows(2).all(|w| w[0].2 == w[1].1);
    if dead.is_empty() && contiguous && i32::try_from(len).is_ok() {
        let mut offsets: Vec<i32> = chunk.iter().map(|&(_, start, _)| (start - base) as i32).collect();
        offsets.push(len as i32);
        return BinaryArray::new(OffsetBuffer::new(offsets.into()), data.slice_with_length(base, len), None);
    }
    let mut refused = dead.iter().map(|d| d.offset).peekable();
    let mut raw = BinaryBuilder::with_capacity(chunk.len() - dead.len(), len);
    for &(offset, start, end) in chunk {
        if refused.next_if_eq(&offset).is_none() {
            raw.append_value(&data[start..end]);
        }
    }
    raw.finish()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

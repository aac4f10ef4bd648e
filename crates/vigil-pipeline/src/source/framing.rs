//! Cutting records out of the byte stream as the format's framing says: lines, NDJSON objects, or the
//! records of JSON documents (envelopes, bare arrays, sequences), each with its offset and the content
//! mark through its end; records over the limits are spilled whole.

use super::origin::*;
use super::*;

/// Whether the reader goes on, or found that the file is not the chain's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Go,
    Mismatch,
}

/// Sends what a pass reads, deciding first (for a chain with a prefix hash) whether the file is the
/// chain's file.
pub(super) struct Framer<'a> {
    pub(super) tx: &'a mpsc::Sender<ReadEvent>,
    pub(super) chunk: Chunk,
    pub(super) ingest_source: String,
    /// Records at or before this offset are already archived: counted, not sent.
    pub(super) resume_after: i64,
    /// While set, the identity is undecided: the head's committed content length and SHA-256.
    pub(super) check: Option<(u64, [u8; 32])>,
    /// Cleared once decided: stdin needs no spool any more.
    pub(super) tee: Arc<AtomicBool>,
    pub(super) already: u64,
    /// The mark of the last record at or before `resume_after`.
    pub(super) withheld: Option<PrefixMark>,
}

impl<'a> Framer<'a> {
    /// A framer for the chain `ingest_source` with head `head`; a chain without a prefix hash (new, or
    /// written before the hash existed) starts at once.
    pub(super) fn new(
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

    pub(super) fn send(&self, event: ReadEvent) -> std::io::Result<()> {
        self.tx.blocking_send(event).map_err(|_| std::io::Error::other("the pipeline stopped reading"))
    }

    pub(super) fn start(&mut self) -> std::io::Result<()> {
        self.check = None;
        self.tee.store(false, Ordering::Relaxed);
        self.send(ReadEvent::Start { ingest_source: self.ingest_source.clone(), resume_after: self.resume_after })
    }

    /// Whether a record at `offset` is to be kept (not already archived).
    pub(super) fn keeps(&self, offset: i64) -> bool {
        offset > self.resume_after
    }

    /// Handles what comes before sending a record: already archived (counted; checked against the head),
    /// or the first one after them (the identity decided). `Some` when the record is not to be sent.
    pub(super) fn before(&mut self, offset: i64, mark: PrefixMark) -> std::io::Result<Option<Step>> {
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
    pub(super) fn decide(&mut self) -> std::io::Result<bool> {
        let Some((bytes, sha)) = self.check else { return Ok(true) };
        if self.withheld.is_some_and(|m| m.bytes == bytes && m.sha256 == sha) {
            self.start()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    pub(super) fn record(&mut self, offset: i64, bytes: &[u8], mark: PrefixMark) -> std::io::Result<Step> {
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

    pub(super) fn oversized(
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

    pub(super) fn flush(&mut self) -> std::io::Result<()> {
        if !self.chunk.records.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            self.send(ReadEvent::Chunk(chunk))?;
        }
        Ok(())
    }

    pub(super) fn end(&mut self, last_offset: i64) -> std::io::Result<Step> {
        if self.check.is_some() && !self.decide()? {
            return Ok(Step::Mismatch);
        }
        self.flush()?;
        self.send(ReadEvent::End { last_offset, already_archived: self.already })?;
        Ok(Step::Go)
    }
}

/// How a line read ended.
pub(super) enum Line {
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
pub(super) fn read_line(
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

pub(super) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// Whether a JSON text is one record on its own line (as opposed to the start of a document, an array,
/// or an envelope object).
pub(super) fn is_ndjson_record(line: &[u8], envelope_key: Option<&str>) -> bool {
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
pub(super) fn document_records(doc: &[u8], envelope_key: Option<&str>) -> (Vec<std::ops::Range<usize>>, bool) {
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

/// One pass over the content from its first byte: frames records and hands them to `out`.
pub(super) fn frame(
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
pub(super) fn read_document(
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

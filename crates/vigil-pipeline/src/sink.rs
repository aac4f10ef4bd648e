//! NDJSON outputs for alerts and dead letters: a file (appended, flushed and synced per batch) or stdout.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use base64::Engine;
use vigil_normalize::{DeadLetter, Normalizer};
use vigil_rules::Alert;

use crate::{Error, Result};

/// An NDJSON output.
#[derive(Debug)]
pub struct NdjsonSink {
    name: String,
    target: Target,
}

#[derive(Debug)]
enum Target {
    Stdout,
    File(BufWriter<File>),
}

impl NdjsonSink {
    /// Opens `path` for appending (creating its directory), or stdout for `-`.
    pub fn open(path: &str) -> Result<Self> {
        let err = |e: std::io::Error| Error::Output { output: path.to_string(), reason: e.to_string() };
        if path == "-" {
            return Ok(NdjsonSink { name: "-".into(), target: Target::Stdout });
        }
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        Ok(NdjsonSink { name: path.to_string(), target: Target::File(BufWriter::with_capacity(1 << 20, file)) })
    }

    /// Writes lines and makes them durable (flush, and fsync for files).
    pub fn write_lines(&mut self, lines: impl Iterator<Item = String>) -> Result<()> {
        let err = |e: std::io::Error| Error::Output { output: self.name.clone(), reason: e.to_string() };
        match &mut self.target {
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                for line in lines {
                    match writeln!(out, "{line}") {
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                        other => other.map_err(err)?,
                    }
                }
                match out.flush() {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    other => other.map_err(err),
                }
            }
            Target::File(file) => {
                for line in lines {
                    file.write_all(line.as_bytes()).map_err(err)?;
                    file.write_all(b"\n").map_err(err)?;
                }
                file.flush().map_err(err)?;
                file.get_ref().sync_data().map_err(err)
            }
        }
    }
}

/// The NDJSON line of an alert.
pub fn alert_line(alert: &Alert) -> String {
    serde_json::to_string(alert).unwrap_or_default()
}

/// The NDJSON line of a dead letter: provenance, reason and the original bytes (`raw` as text when it
/// is UTF-8, else `raw_base64`).
pub fn dead_letter_line(
    dead: &DeadLetter,
    normalizer: &dyn Normalizer,
    ingest_source: &str,
    input: &str,
    ingest_time: &str,
) -> String {
    let mut object = serde_json::Map::new();
    object.insert("ingest_time".into(), ingest_time.into());
    object.insert("format".into(), normalizer.format().into());
    object.insert("source".into(), normalizer.source().into());
    object.insert("input".into(), input.into());
    object.insert("ingest_source".into(), ingest_source.into());
    object.insert("ingest_partition".into(), 0.into());
    object.insert("ingest_offset".into(), dead.offset.into());
    object.insert("reason_code".into(), dead.code.as_str().into());
    object.insert("reason".into(), dead.reason.clone().into());
    match std::str::from_utf8(&dead.raw) {
        Ok(text) => object.insert("raw".into(), text.into()),
        Err(_) => {
            object.insert("raw_base64".into(), base64::engine::general_purpose::STANDARD.encode(&dead.raw).into())
        }
    };
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_normalize::{Format, FormatOptions, ReasonCode};

    #[test]
    fn dead_letters_keep_text_raw_or_base64() {
        let normalizer = Format::ApacheCombined.build(&FormatOptions::default()).unwrap();
        let text =
            DeadLetter { offset: 7, code: ReasonCode::UnrecognizedLine, reason: "r".into(), raw: b"plain".to_vec() };
        let line: serde_json::Value =
            serde_json::from_str(&dead_letter_line(&text, normalizer.as_ref(), "file-x", "in.log", "t")).unwrap();
        assert_eq!(line["raw"], "plain");
        assert_eq!(line["ingest_offset"], 7);
        assert_eq!(line["reason_code"], "unrecognized_line");
        let binary = DeadLetter { raw: vec![0xff, 0xfe, b'x'], ..text };
        let line: serde_json::Value =
            serde_json::from_str(&dead_letter_line(&binary, normalizer.as_ref(), "file-x", "in.log", "t")).unwrap();
        assert!(line.get("raw").is_none());
        assert_eq!(line["raw_base64"], "//54");
    }
}

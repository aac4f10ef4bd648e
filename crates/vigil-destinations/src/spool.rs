//! The durable queue of one destination: what was raised and not yet delivered, on local disk.
//!
//! ```text
//!  {spool}/{kind}-{hash}/
//!    spool.lock                 held (flock) while a process delivers from here
//!    00000000000000000042.seg   one segment per queued batch: a JSON line {"id","body"} per alert;
//!                               written as .tmp, fsync'd, renamed, directory fsync'd
//!    00000000000000000042.ack   line numbers of the segment delivered (appended, not synced:
//!                               a lost ack only means a second delivery, which the id makes harmless)
//!    rejected/{id}.json         alerts the destination refused as malformed (4xx), with its answer
//! ```
//!
//! [`Spool::enqueue`] returns only once the segment is on disk, so the pipeline commits a batch's
//! offsets after its alerts are queued: a crash loses nothing, a replay queues the same ids again. A
//! segment whose lines are all acknowledged is deleted. The number pending survives restarts (counted
//! from the segments and acks when the spool is opened).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One queued alert: its id and the exact body to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Alert id.
    pub id: String,
    /// Request body (JSON text).
    pub body: String,
}

#[derive(Debug, Default)]
struct State {
    /// Segment number -> entries not yet acknowledged.
    segments: BTreeMap<u64, u64>,
    next: u64,
    pending: u64,
}

/// The spool of one destination (see the module docs).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    _lock: File,
    state: Mutex<State>,
}

fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Spool { path, action, source }
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

fn ack_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.ack"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir, "sync the directory"))
}

/// Line numbers in an ack file (a torn last line is ignored: that delivery happens again).
fn read_acks(path: &Path) -> BTreeSet<u64> {
    std::fs::read_to_string(path).map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect()).unwrap_or_default()
}

impl Spool {
    /// Opens (creating) the spool at `dir` and takes its lock; counts what is pending.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir, "create the directory"))?;
        let lock_path = dir.join("spool.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path, "open the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::SpoolInUse { path: dir.to_path_buf() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path, "lock")(e)),
        }
        let mut state = State::default();
        let mut acks = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir, "list the directory"))? {
            let path = entry.map_err(io(dir, "list the directory"))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if name.ends_with(".tmp") {
                // A segment never renamed: its batch was not committed and will be queued again.
                let _ = std::fs::remove_file(&path);
            } else if let Some(seq) = name.strip_suffix(".seg").and_then(|s| s.parse::<u64>().ok()) {
                let lines = std::fs::read_to_string(&path).map_err(io(&path, "read a segment"))?.lines().count() as u64;
                let acked = read_acks(&ack_path(dir, seq)).into_iter().filter(|&i| i < lines).count() as u64;
                let left = lines - acked;
                if left == 0 {
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(ack_path(dir, seq));
                } else {
                    state.segments.insert(seq, left);
                    state.pending += left;
                }
                state.next = state.next.max(seq + 1);
            } else if let Some(seq) = name.strip_suffix(".ack").and_then(|s| s.parse::<u64>().ok()) {
                acks.push(seq);
            }
        }
        // An ack file whose segment is gone (deleted between the two removals).
        for seq in acks {
            if !state.segments.contains_key(&seq) {
                let _ = std::fs::remove_file(ack_path(dir, seq));
            }
        }
        Ok(Spool { dir: dir.to_path_buf(), _lock: lock, state: Mutex::new(state) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Alerts queued and not delivered (nor rejected).
    pub fn pending(&self) -> u64 {
        self.state().pending
    }

    /// Queues `entries` durably (one segment, fsync'd) before returning.
    pub fn enqueue(&self, entries: &[Entry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for e in entries {
            // One JSON object per line: serde_json escapes line breaks inside strings.
            text.push_str(&serde_json::to_string(e).unwrap_or_default());
            text.push('\n');
        }
        // The number is taken under the lock, the file written outside it: delivery goes on meanwhile.
        let seq = {
            let mut state = self.state();
            let seq = state.next;
            state.next += 1;
            seq
        };
        let path = seg_path(&self.dir, seq);
        let tmp = path.with_extension("seg.tmp");
        let mut file = File::create(&tmp).map_err(io(&tmp, "create a segment"))?;
        file.write_all(text.as_bytes()).map_err(io(&tmp, "write a segment"))?;
        file.sync_all().map_err(io(&tmp, "sync a segment"))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io(&path, "rename a segment"))?;
        sync_dir(&self.dir)?;
        let mut state = self.state();
        state.segments.insert(seq, entries.len() as u64);
        state.pending += entries.len() as u64;
        Ok(())
    }

    /// The oldest segment with entries left.
    pub fn oldest(&self) -> Option<u64> {
        self.state().segments.keys().next().copied()
    }

    /// The entries of segment `seq` not yet acknowledged, with their line numbers. A line that does not
    /// parse (the disk changed under us) is counted as rejected and skipped, with a warning.
    pub fn load(&self, seq: u64) -> Result<Vec<(u64, Entry)>> {
        let path = seg_path(&self.dir, seq);
        let text = std::fs::read_to_string(&path).map_err(io(&path, "read a segment"))?;
        let acked = read_acks(&ack_path(&self.dir, seq));
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let i = i as u64;
            if acked.contains(&i) {
                continue;
            }
            match serde_json::from_str::<Entry>(line) {
                Ok(entry) => out.push((i, entry)),
                Err(e) => {
                    tracing::warn!(segment = %path.display(), line = i + 1, error = %e, "a queued alert cannot be read; it is skipped");
                    self.ack(seq, i)?;
                }
            }
        }
        if out.is_empty() {
            // Every line acknowledged (an ack written before a crash, the segment not yet deleted).
            let mut state = self.state();
            if let Some(left) = state.segments.remove(&seq) {
                state.pending = state.pending.saturating_sub(left);
            }
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(ack_path(&self.dir, seq));
        }
        Ok(out)
    }

    /// Entry `line` of segment `seq` is done (delivered or rejected); a segment with nothing left is deleted.
    pub fn ack(&self, seq: u64, line: u64) -> Result<()> {
        let ack = ack_path(&self.dir, seq);
        let mut state = self.state();
        let Some(left) = state.segments.get_mut(&seq) else { return Ok(()) };
        *left = left.saturating_sub(1);
        let done = *left == 0;
        state.pending = state.pending.saturating_sub(1);
        if done {
            state.segments.remove(&seq);
            let seg = seg_path(&self.dir, seq);
            std::fs::remove_file(&seg).map_err(io(&seg, "delete a delivered segment"))?;
            let _ = std::fs::remove_file(&ack);
        } else {
            let mut file =
                OpenOptions::new().create(true).append(true).open(&ack).map_err(io(&ack, "open an ack file"))?;
            writeln!(file, "{line}").map_err(io(&ack, "write an ack"))?;
        }
        Ok(())
    }

    /// The destination refused `entry` for good: it is kept under `rejected/` with the answer, then acknowledged.
    pub fn reject(&self, seq: u64, line: u64, entry: &Entry, answer: &str) -> Result<()> {
        let dir = self.dir.join("rejected");
        std::fs::create_dir_all(&dir).map_err(io(&dir, "create the directory"))?;
        let name: String =
            entry.id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(64).collect();
        let path = dir.join(format!("{seq:020}-{line}-{name}.json"));
        let record = serde_json::json!({"id": entry.id, "answer": answer, "body": entry.body});
        std::fs::write(&path, record.to_string()).map_err(io(&path, "keep a rejected alert"))?;
        self.ack(seq, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry { id: id.into(), body: format!("{{\"id\":\"{id}\",\"text\":\"a\\nb\"}}") }
    }

    #[test]
    fn queued_entries_survive_reopening_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        spool.enqueue(&[entry("a"), entry("b")]).unwrap();
        spool.enqueue(&[entry("c")]).unwrap();
        assert_eq!(spool.pending(), 3);
        let first = spool.oldest().unwrap();
        let loaded = spool.load(first).unwrap();
        assert_eq!(loaded.iter().map(|(_, e)| e.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        spool.ack(first, 0).unwrap();
        // A second process is refused while the first holds the spool.
        assert!(matches!(Spool::open(dir.path()), Err(Error::SpoolInUse { .. })));
        drop(spool);
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.pending(), 2);
        assert_eq!(spool.load(first).unwrap(), vec![(1, entry("b"))]);
        spool.reject(first, 1, &entry("b"), "400 bad").unwrap();
        assert!(!seg_path(dir.path(), first).exists(), "a finished segment is deleted");
        assert_eq!(std::fs::read_dir(dir.path().join("rejected")).unwrap().count(), 1);
        let next = spool.oldest().unwrap();
        assert_eq!(spool.load(next).unwrap()[0].1, entry("c"));
        spool.ack(next, 0).unwrap();
        assert_eq!((spool.pending(), spool.oldest()), (0, None));
        // A segment left as .tmp by a crash is not queued (its batch was not committed).
        std::fs::write(dir.path().join("00000000000000000009.seg.tmp"), "{}\n").unwrap();
        drop(spool);
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.pending(), 0);
        spool.enqueue(&[entry("d")]).unwrap();
        let last = spool.oldest().unwrap();
        assert_eq!(spool.load(last).unwrap(), vec![(0, entry("d"))]);
    }
}

//! Where a file input's bytes come from: a path (reopened to read again) or stdin, kept in a spool
//! (memory up to 1 MiB, then a temporary file) while its identity is undecided, so that a second pass can
//! read it again; and [`Spill`], which streams a record too large to hold to a temporary file.

use super::*;

/// Content read from stdin while it may have to be read again.
#[derive(Default)]
pub(super) struct Spool {
    pub(super) memory: Vec<u8>,
    pub(super) file: Option<tempfile::NamedTempFile>,
    pub(super) len: u64,
}

impl Spool {
    pub(super) fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
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
    pub(super) fn replay(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(match &self.file {
            Some(file) => Box::new(file.reopen()?.take(self.len)),
            None => Box::new(std::io::Cursor::new(self.memory.clone())),
        })
    }
}

/// Where the content comes from: a file, reopened for each pass, or stdin, replayed from its spool.
pub(super) enum Origin {
    Path(PathBuf),
    Stdin { live: Box<dyn Read + Send>, spool: Spool },
}

impl Origin {
    pub(super) fn open(file: &InputFile) -> std::io::Result<Self> {
        Ok(match &file.path {
            Some(p) => Origin::Path(p.clone()),
            None => Origin::Stdin { live: open_stream(Box::new(std::io::stdin()))?, spool: Spool::default() },
        })
    }

    /// The content from its first byte. On stdin, bytes read live are added to the spool while `tee` is set.
    pub(super) fn pass(&mut self, tee: &Arc<AtomicBool>) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Origin::Path(p) => open_stream(Box::new(File::open(p)?))?,
            Origin::Stdin { live, spool } => {
                Box::new(Replay { spooled: Some(spool.replay()?), live, spool, tee: tee.clone() })
            }
        })
    }
}

pub(super) struct Replay<'a> {
    pub(super) spooled: Option<Box<dyn Read + Send>>,
    pub(super) live: &'a mut Box<dyn Read + Send>,
    pub(super) spool: &'a mut Spool,
    pub(super) tee: Arc<AtomicBool>,
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
pub(super) struct Content {
    pub(super) sha: Sha256,
    pub(super) len: u64,
}

impl Content {
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub(super) fn mark(&self) -> PrefixMark {
        PrefixMark { bytes: self.len, sha256: self.sha.clone().finalize().into() }
    }
}

/// An oversized record on its way to a temporary file: hashed, its first bytes kept. Without a file
/// (a record already archived, read only to check the file's identity), it is only hashed.
pub(super) struct Spill {
    pub(super) file: Option<std::io::BufWriter<tempfile::NamedTempFile>>,
    pub(super) sha: Sha256,
    pub(super) size: u64,
    pub(super) prefix: Vec<u8>,
}

impl Spill {
    pub(super) fn new(keep: bool) -> std::io::Result<Self> {
        let file = if keep {
            Some(std::io::BufWriter::with_capacity(READ_BUFFER, tempfile::NamedTempFile::new()?))
        } else {
            None
        };
        Ok(Spill { file, sha: Sha256::new(), size: 0, prefix: Vec::new() })
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
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
    pub(super) fn finish(self, offset: i64) -> std::io::Result<(Vec<u8>, Option<DeadLetterBlob>)> {
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

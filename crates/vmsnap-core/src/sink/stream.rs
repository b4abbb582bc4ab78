//! A sequential output: standard output, a pipe, a FIFO. Holes are written as zeros.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// Zeros written per call for holes.
const ZERO_CHUNK: usize = 1 << 20;

/// An output written in order, from one thread. [`StreamOutput::commit`] fails unless
/// exactly the announced length was written, so a stream cut short never ends with
/// success.
#[derive(Debug)]
pub struct StreamOutput {
    file: File,
    written: u64,
    len: u64,
    shown: PathBuf,
}

impl StreamOutput {
    pub(super) fn new(file: File, len: u64, shown: PathBuf) -> Self {
        StreamOutput {
            file,
            written: 0,
            len,
            shown,
        }
    }

    /// The output's name as the user gave it (`standard output` for `-`).
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The image length the output was opened for.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the image is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn advance(&mut self, n: u64) -> Result<()> {
        match self.written.checked_add(n) {
            Some(w) if w <= self.len => {
                self.written = w;
                Ok(())
            }
            _ => Err(Error::out_of_bounds(self.written, n, self.len).in_file(&self.shown)),
        }
    }

    fn failed(&self, e: std::io::Error) -> Error {
        Error::from(e)
            .in_file(&self.shown)
            .at(self.written)
            .during("writing the output")
    }

    /// Writes `buf` next.
    pub fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.advance(buf.len() as u64)?;
        let at = self.written - buf.len() as u64;
        self.file.write_all(buf).map_err(|e| {
            Error::from(e)
                .in_file(&self.shown)
                .at(at)
                .during("writing the output")
        })
    }

    /// Writes `n` zero bytes next (a hole of the image).
    pub fn write_zeros(&mut self, mut n: u64) -> Result<()> {
        static ZEROS: [u8; ZERO_CHUNK] = [0; ZERO_CHUNK];
        while n > 0 {
            let k = n.min(ZERO_CHUNK as u64) as usize;
            self.write_all(ZEROS.get(..k).unwrap_or_default())?;
            n -= k as u64;
        }
        Ok(())
    }

    /// Finishes the stream: fails unless all bytes were written; flushes a file or device
    /// behind standard output to disk.
    pub fn commit(mut self) -> Result<()> {
        if self.written != self.len {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!("only {} of {} bytes were written", self.written, self.len),
            )
            .in_file(&self.shown));
        }
        self.file.flush().map_err(|e| self.failed(e))?;
        let durable = self
            .file
            .metadata()
            .map(|m| m.is_file() || m.file_type().is_block_device())
            .unwrap_or(false);
        if durable {
            self.file.sync_all().map_err(|e| self.failed(e))?;
        }
        Ok(())
    }
}

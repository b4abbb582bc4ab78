//! Outputs that never destroy an input and never look finished when they are not.
//!
//! [`Output::create`] looks at what a path is (after resolving its symlinks) and opens it
//! the way that kind of target needs:
//!
//! | target | how it is written |
//! |---|---|
//! | a regular file, or a new name | a temporary file in the target's directory (`O_TMPFILE` where the filesystem has it, else a hidden named file), fsynced, then linked or renamed over the target and the directory fsynced: [`PositionalOutput::commit`]. Dropped without a commit, nothing is left and an old file keeps its content |
//! | a block device | in place (opened exclusively, so a mounted device is refused), never truncated; holes are zeroed unless [`OutputOptions::target_is_zero`] says the device already reads as zeros |
//! | `/dev/null` | a discard sink: writes cost nothing, holes need no writing |
//! | `-`, `/dev/stdout`, a pipe, a FIFO with a reader | a sequential [`StreamOutput`]: bytes in order, holes written as zeros |
//! | any other character device, a socket, a directory | refused |
//!
//! An output that is one of the protected files ([`OutputOptions::protect`]: the input and
//! every file the image reads), the same file through a hard link or a symlink, a block
//! device such a file lives on, or a loop device backed by one, is refused before anything
//! is opened for writing.
//!
//! ```no_run
//! use vmsnap_core::sink::{Output, OutputOptions};
//!
//! # fn main() -> vmsnap_core::Result<()> {
//! let options = OutputOptions::new().protect(["disk.qcow2"]);
//! match Output::create("disk.raw", 8192, &options)? {
//!     Output::Positional(out) => {
//!         out.write_at(4096, &[0xaa; 4096])?; // from any thread
//!         out.zero_range(0, 4096)?; // a hole: no-op for a new file, zeros on a device
//!         out.commit()?; // fsync, then the name appears
//!     }
//!     Output::Stream(mut out) => {
//!         out.write_zeros(4096)?;
//!         out.write_all(&[0xaa; 4096])?;
//!         out.commit()?; // fails unless all 8192 bytes were written
//!     }
//!     _ => return Err(vmsnap_core::Error::unsupported("an output kind this code predates")),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A process that is interrupted while writing through a named temporary file (filesystems
//! without `O_TMPFILE`) should call [`remove_unfinished_outputs`] from its SIGINT/SIGTERM
//! handling; with `O_TMPFILE` the kernel discards the unnamed file by itself.

mod device;
mod guard;
mod stream;
mod target;
mod temp;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

pub use stream::StreamOutput;
pub use temp::remove_unfinished_outputs;

use device::BlockDevice;
use guard::Protected;
use target::Target;
use temp::TempFile;

/// What an output turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputKind {
    /// `/dev/null`: writes are discarded.
    Discard,
    /// A regular file, written through a temporary file and renamed on commit.
    File,
    /// A block device, written in place.
    BlockDevice,
    /// Standard output, a pipe or a FIFO: written in order.
    Stream,
}

impl OutputKind {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Discard => "discard",
            OutputKind::File => "file",
            OutputKind::BlockDevice => "block_device",
            OutputKind::Stream => "stream",
        }
    }
}

/// How an output is opened.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    protected: Vec<PathBuf>,
    target_is_zero: bool,
    named_temp: bool,
}

impl OutputOptions {
    /// No protected files, holes zeroed on devices, `O_TMPFILE` where available.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds files the output must not be: the input and every file the image reads. A
    /// protected path that does not exist is ignored.
    pub fn protect<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        self.protected
            .extend(paths.into_iter().map(|p| p.as_ref().to_path_buf()));
        self
    }

    /// Declares that a block device target already reads as zeros, so holes are not
    /// written (qemu-img's `--target-is-zero`). Has no effect on other targets.
    pub fn target_is_zero(mut self, yes: bool) -> Self {
        self.target_is_zero = yes;
        self
    }

    /// Writes regular files through a named temporary file even where `O_TMPFILE` works
    /// (for filesystems that claim `O_TMPFILE` but cannot link it, and for tests).
    pub fn named_temp(mut self, yes: bool) -> Self {
        self.named_temp = yes;
        self
    }
}

/// An opened output: positional (files, devices, `/dev/null`) or sequential (streams).
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Random-access writes from any number of threads.
    Positional(PositionalOutput),
    /// Bytes in order.
    Stream(StreamOutput),
}

impl Output {
    /// Classifies `path` (`-` is standard output), refuses what must be refused, and opens
    /// it for an image of `len` bytes. Errors name the path; nothing is created on error.
    pub fn create(path: impl AsRef<Path>, len: u64, options: &OutputOptions) -> Result<Output> {
        let given = path.as_ref();
        let protected = Protected::new(&options.protected);
        let shown = target::shown_name(given);
        let fail = |e: Error| e.in_file(&shown);
        match Target::classify(given).map_err(fail)? {
            Target::StdOut(file) => {
                protected.check_file(&file).map_err(fail)?;
                Self::from_stdout(file, len, shown)
            }
            Target::Fifo(path) => {
                protected.check_path(&path).map_err(fail)?;
                let file = target::open_fifo(&path).map_err(fail)?;
                Ok(Output::Stream(StreamOutput::new(file, len, shown)))
            }
            Target::Null => Ok(Output::Positional(PositionalOutput::new(
                Sink::Discard,
                len,
                shown,
            ))),
            Target::File { path, existing } => {
                if existing.is_some() {
                    protected.check_path(&path).map_err(fail)?;
                }
                let temp = TempFile::create(&path, existing.as_ref(), len, options.named_temp)
                    .map_err(fail)?;
                Ok(Output::Positional(PositionalOutput::new(
                    Sink::File(temp),
                    len,
                    shown,
                )))
            }
            Target::Block(path) => {
                protected.check_block_device(&path).map_err(fail)?;
                let dev = BlockDevice::open(&path, len, options.target_is_zero).map_err(fail)?;
                Ok(Output::Positional(PositionalOutput::new(
                    Sink::Device(dev),
                    len,
                    shown,
                )))
            }
        }
    }

    fn from_stdout(file: File, len: u64, shown: PathBuf) -> Result<Output> {
        let meta = file.metadata().map_err(|e| {
            Error::from(e)
                .in_file(&shown)
                .during("inspecting the output")
        })?;
        if target::is_null_device(&meta) {
            return Ok(Output::Positional(PositionalOutput::new(
                Sink::Discard,
                len,
                shown,
            )));
        }
        if target::is_char_device(&meta) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "is a terminal or another character device, not a place for an image; \
                 redirect standard output to a file or a pipe",
            )
            .in_file(&shown));
        }
        Ok(Output::Stream(StreamOutput::new(file, len, shown)))
    }

    /// What the output is.
    pub fn kind(&self) -> OutputKind {
        match self {
            Output::Positional(p) => p.kind(),
            Output::Stream(_) => OutputKind::Stream,
        }
    }

    /// Finishes the output (see [`PositionalOutput::commit`] and [`StreamOutput::commit`]).
    pub fn commit(self) -> Result<()> {
        match self {
            Output::Positional(p) => p.commit(),
            Output::Stream(s) => s.commit(),
        }
    }
}

#[derive(Debug)]
enum Sink {
    Discard,
    File(TempFile),
    Device(BlockDevice),
}

/// An output written at offsets, from many threads at once (`&self`).
#[derive(Debug)]
pub struct PositionalOutput {
    sink: Sink,
    len: u64,
    shown: PathBuf,
}

impl PositionalOutput {
    fn new(sink: Sink, len: u64, shown: PathBuf) -> Self {
        PositionalOutput { sink, len, shown }
    }

    /// What the output is.
    pub fn kind(&self) -> OutputKind {
        match self.sink {
            Sink::Discard => OutputKind::Discard,
            Sink::File(_) => OutputKind::File,
            Sink::Device(_) => OutputKind::BlockDevice,
        }
    }

    /// The image length the output was opened for.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the image is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The output's name as the user gave it (`standard output` for `-`).
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// Whether ranges not written must be zeroed with [`PositionalOutput::zero_range`]: true
    /// for a block device not declared zero. A new file and `/dev/null` read holes as zeros.
    pub fn holes_need_writing(&self) -> bool {
        match &self.sink {
            Sink::Device(d) => !d.reads_as_zero(),
            Sink::Discard | Sink::File(_) => false,
        }
    }

    fn check(&self, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::out_of_bounds(offset, len, self.len).in_file(&self.shown)),
        }
    }

    /// Writes `buf` at `offset`; writing past the length given at creation is an error.
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check(offset, buf.len() as u64)?;
        let file = match &self.sink {
            Sink::Discard => return Ok(()),
            Sink::File(t) => t.file(),
            Sink::Device(d) => d.file(),
        };
        write_all_at(file, buf, offset).map_err(|e| {
            Error::from(e)
                .in_file(&self.shown)
                .at(offset)
                .during("writing the output")
        })
    }

    /// Makes `len` bytes at `offset` read as zeros where they might not already: on a block
    /// device (unless declared zero) with `FALLOC_FL_ZERO_RANGE`, or written zeros where the
    /// device cannot; nothing elsewhere.
    pub fn zero_range(&self, offset: u64, len: u64) -> Result<()> {
        self.check(offset, len)?;
        match &self.sink {
            Sink::Device(d) => d.zero_range(offset, len).map_err(|e| {
                Error::from(e)
                    .in_file(&self.shown)
                    .at(offset)
                    .during("zeroing a hole of the output")
            }),
            Sink::Discard | Sink::File(_) => Ok(()),
        }
    }

    /// Makes the output durable and visible: a file is fsynced, linked or renamed over the
    /// target, and its directory fsynced; a device is fsynced. Only after this returns is
    /// the output finished.
    pub fn commit(self) -> Result<()> {
        let shown = self.shown;
        let fail = |e: Error| e.in_file(&shown);
        match self.sink {
            Sink::Discard => Ok(()),
            Sink::File(t) => t.commit().map_err(fail),
            Sink::Device(d) => d.commit().map_err(fail),
        }
    }
}

fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, offset)
}

#[cfg(test)]
mod tests;

//! A block device written in place: opened exclusively, never truncated, holes zeroed.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{FallocateFlags, OFlags};

use crate::error::{Error, ErrorKind, Result};

/// Zeros written per call where the device cannot zero a range itself.
const ZERO_CHUNK: usize = 1 << 20;

/// An open block device.
#[derive(Debug)]
pub(super) struct BlockDevice {
    file: File,
    /// Already reads as zeros (`--target-is-zero`).
    zero: bool,
    /// Logical block size: `FALLOC_FL_ZERO_RANGE` takes whole blocks only.
    block: u64,
}

impl BlockDevice {
    /// Opens `path` for an image of `len` bytes. `O_EXCL` on a block device fails with
    /// `EBUSY` while it is mounted or claimed, so a live filesystem is never overwritten.
    pub(super) fn open(path: &Path, len: u64, zero: bool) -> Result<BlockDevice> {
        let mut file = OpenOptions::new()
            .write(true)
            .custom_flags(OFlags::EXCL.bits() as i32)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) {
                    Error::new(
                        ErrorKind::Io,
                        "the device is in use (mounted, or held by another program)",
                    )
                    .with_source(e)
                } else {
                    Error::from(e).during("opening the output device")
                }
            })?;
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::from(e).during("measuring the output device"))?;
        if len > size {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("the device holds {size} bytes, the image needs {len}"),
            ));
        }
        let block = rustix::fs::ioctl_blksszget(&file)
            .map_or(512, u64::from)
            .max(1);
        Ok(BlockDevice { file, zero, block })
    }

    pub(super) fn file(&self) -> &File {
        &self.file
    }

    pub(super) fn reads_as_zero(&self) -> bool {
        self.zero
    }

    /// Zeros `len` bytes at `offset` (nothing when the device is declared zero): whole
    /// logical blocks through `FALLOC_FL_ZERO_RANGE` (the block layer's write-zeroes,
    /// `BLKZEROOUT`'s path), the unaligned edges — or everything, where the device cannot —
    /// as written zeros.
    pub(super) fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.zero || len == 0 {
            return Ok(());
        }
        let end = offset.saturating_add(len);
        let first = offset.div_ceil(self.block).saturating_mul(self.block);
        let last = end / self.block * self.block;
        if first < last {
            let flags = FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE;
            if rustix::fs::fallocate(&self.file, flags, first, last - first).is_ok() {
                self.write_zeros(offset, first - offset)?;
                return self.write_zeros(last, end - last);
            }
        }
        self.write_zeros(offset, len)
    }

    fn write_zeros(&self, mut offset: u64, len: u64) -> io::Result<()> {
        static ZEROS: [u8; ZERO_CHUNK] = [0; ZERO_CHUNK];
        let end = offset.saturating_add(len);
        while offset < end {
            let n = (end - offset).min(ZERO_CHUNK as u64) as usize;
            self.file
                .write_all_at(ZEROS.get(..n).unwrap_or_default(), offset)?;
            offset += n as u64;
        }
        Ok(())
    }

    /// Flushes everything written to the device.
    pub(super) fn commit(self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::from(e).during("flushing the output device"))
    }
}

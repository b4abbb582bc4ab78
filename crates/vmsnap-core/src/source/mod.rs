//! Sources: positional, thread-safe reads of bytes from a file or from memory.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

mod input;
mod mmap;
pub use input::InputKind;
pub use mmap::MmapSource;

/// Positional reads of bytes. `&self` only and `Send + Sync`, so one open image serves
/// many threads.
pub trait Source: Send + Sync + fmt::Debug {
    /// Fills `buf` with the bytes at `offset`, or fails (a read past the end fails).
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Size in bytes.
    fn size(&self) -> u64;
    /// The file behind this source, when it is one.
    fn path(&self) -> Option<&Path> {
        None
    }
    /// The whole content when it is in memory, for zero-copy fast paths.
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }

    /// The ranges of `range` that hold data, when the source knows its holes (sparse
    /// files); `None` when it cannot tell.
    fn data_ranges(&self, range: std::ops::Range<u64>) -> Option<Vec<std::ops::Range<u64>>> {
        let _ = range;
        None
    }
}

/// A file or a block device read with `pread`.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    size: u64,
    kind: InputKind,
    path: Option<PathBuf>,
}

impl FileSource {
    /// Opens `path` read-only. A block device is sized from the device; a FIFO, pipe,
    /// socket or character device is refused at once (never waited on), naming what it is.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let input::RandomAccess { file, size, kind } = input::open_random_access(path)?;
        Ok(FileSource {
            file,
            size,
            kind,
            path: Some(path.to_path_buf()),
        })
    }

    /// Wraps a file that is already open (standard input redirected from a file, say).
    /// `path` names it for messages and for resolving relative references; `None` when it
    /// has no name, and then no relative reference is opened.
    pub fn from_file(file: File, path: Option<PathBuf>) -> Result<Self> {
        let input::RandomAccess { file, size, kind } =
            input::random_access(file).map_err(|e| match &path {
                Some(p) => e.in_file(p),
                None => e,
            })?;
        Ok(FileSource {
            file,
            size,
            kind,
            path,
        })
    }

    /// Whether it is a regular file or a block device.
    pub fn kind(&self) -> InputKind {
        self.kind
    }
}

impl Source for FileSource {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if !fits(offset, buf.len(), self.size) {
            return Err(Error::out_of_bounds(offset, buf.len() as u64, self.size));
        }
        pread_exact(&self.file, offset, buf)
            .map_err(|e| Error::from(e).at(offset).during("reading file"))
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
    fn data_ranges(&self, range: std::ops::Range<u64>) -> Option<Vec<std::ops::Range<u64>>> {
        // A device has no holes to ask about: all of it is data.
        if self.kind != InputKind::Regular {
            return None;
        }
        sparse::data_ranges(&self.file, range.start, range.end.min(self.size))
    }
}

/// Holes of sparse files through `SEEK_DATA` / `SEEK_HOLE`.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
mod sparse {
    use std::fs::File;
    use std::ops::Range;

    use rustix::fs::{seek, SeekFrom};

    /// Most data ranges reported before giving up (a pathological file is then just data).
    const MAX_RANGES: usize = 1 << 20;

    pub fn data_ranges(file: &File, start: u64, end: u64) -> Option<Vec<Range<u64>>> {
        let mut out = Vec::new();
        let mut pos = start;
        while pos < end {
            let data = match seek(file, SeekFrom::Data(pos)) {
                Ok(d) => d,
                // ENXIO: no data at or after `pos`.
                Err(rustix::io::Errno::NXIO) => break,
                Err(_) => return None,
            };
            if data >= end {
                break;
            }
            let hole = seek(file, SeekFrom::Hole(data)).ok()?.min(end);
            if hole <= data {
                return None;
            }
            out.push(data..hole);
            if out.len() > MAX_RANGES {
                return None;
            }
            pos = hole;
        }
        Some(out)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
mod sparse {
    pub fn data_ranges(
        _file: &std::fs::File,
        _start: u64,
        _end: u64,
    ) -> Option<Vec<std::ops::Range<u64>>> {
        None
    }
}

#[cfg(unix)]
fn pread_exact(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(windows)]
fn pread_exact(file: &File, mut offset: u64, mut buf: &mut [u8]) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(not(any(unix, windows)))]
fn pread_exact(_file: &File, _offset: u64, _buf: &mut [u8]) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Bytes in memory.
#[derive(Clone)]
pub struct MemSource {
    bytes: Arc<[u8]>,
    path: Option<PathBuf>,
}

impl fmt::Debug for MemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemSource")
            .field("len", &self.bytes.len())
            .field("path", &self.path)
            .finish()
    }
}

impl MemSource {
    /// Wraps bytes.
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        MemSource {
            bytes: bytes.into(),
            path: None,
        }
    }

    /// Wraps bytes and names the file they stand for (used to resolve relative references).
    pub fn with_path(bytes: impl Into<Arc<[u8]>>, path: impl Into<PathBuf>) -> Self {
        MemSource {
            bytes: bytes.into(),
            path: Some(path.into()),
        }
    }
}

impl Source for MemSource {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let src = slice_at(&self.bytes, offset, buf.len())
            .ok_or_else(|| Error::out_of_bounds(offset, buf.len() as u64, self.size()))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
    fn as_slice(&self) -> Option<&[u8]> {
        Some(&self.bytes)
    }
}

/// Whether `len` bytes at `offset` lie inside `size` bytes (no overflow).
pub fn fits(offset: u64, len: usize, size: u64) -> bool {
    offset
        .checked_add(len as u64)
        .is_some_and(|end| end <= size)
}

/// `bytes[offset..offset+len]` without panicking.
pub fn slice_at(bytes: &[u8], offset: u64, len: usize) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(len)?;
    bytes.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn mem_source_reads_and_refuses_past_end() {
        let s = MemSource::new(vec![1u8, 2, 3, 4]);
        let mut b = [0u8; 2];
        s.read_exact_at(2, &mut b).unwrap();
        assert_eq!(b, [3, 4]);
        let e = s.read_exact_at(3, &mut b).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfBounds);
        assert!(s.read_exact_at(u64::MAX, &mut b).is_err());
    }

    #[test]
    fn file_source_reads_and_refuses_past_end() {
        let dir = std::env::temp_dir().join(format!("vmsnap-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.bin");
        std::fs::write(&p, b"hello world").unwrap();
        assert_eq!(
            FileSource::open(&p)
                .unwrap()
                .data_ranges(0..11)
                .map(|r| r.len()),
            Some(1)
        );
        let s = FileSource::open(&p).unwrap();
        assert_eq!(s.size(), 11);
        let mut b = [0u8; 5];
        s.read_exact_at(6, &mut b).unwrap();
        assert_eq!(&b, b"world");
        assert_eq!(
            s.read_exact_at(7, &mut b).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
        let e = FileSource::open(dir.join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"));
        std::fs::remove_dir_all(&dir).ok();
    }
}

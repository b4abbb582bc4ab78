//! A memory-mapped file: the one place in vmsnap with `unsafe`. Random 4 KiB reads through
//! `pread` cost a system call each (about a microsecond); through a mapping they are a
//! copy, which is what the memory formats' and the x86 layer's random-read rates need.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};
use crate::source::input::{open_random_access, InputKind, RandomAccess};
use crate::source::{slice_at, Source};

/// A read-only mapping of a whole file or block device.
#[derive(Debug)]
pub struct MmapSource {
    map: Mmap,
    file: File,
    kind: InputKind,
    path: PathBuf,
}

impl MmapSource {
    /// Maps `path` read-only.
    ///
    /// # Caveat
    /// If another process truncates the file while it is mapped, reading the lost part
    /// raises SIGBUS. vmsnap reads evidence and images that are not being written; callers
    /// for whom that cannot be promised use [`crate::FileSource`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let RandomAccess { file, size, kind } = open_random_access(path)?;
        let len = usize::try_from(size).map_err(|_| {
            Error::new(
                crate::error::ErrorKind::LimitExceeded,
                "larger than the address space",
            )
            .in_file(path)
        })?;
        // SAFETY: the mapping is read-only and private to this process; the file is not
        // modified through it. The only hazard is external truncation (documented above),
        // which memmap2 cannot rule out and which `FileSource` avoids. The length is the
        // measured size, so a block device (whose metadata says 0) is mapped whole.
        #[allow(unsafe_code)]
        let map = unsafe { MmapOptions::new().len(len).map(&file) }
            .map_err(|e| Error::from(e).in_file(path).during("mapping"))?;
        Ok(MmapSource {
            map,
            file,
            kind,
            path: path.to_path_buf(),
        })
    }
}

impl Source for MmapSource {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let src = slice_at(&self.map, offset, buf.len())
            .ok_or_else(|| Error::out_of_bounds(offset, buf.len() as u64, self.size()))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.map.len() as u64
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
    fn as_slice(&self) -> Option<&[u8]> {
        Some(&self.map)
    }
    fn data_ranges(&self, range: std::ops::Range<u64>) -> Option<Vec<std::ops::Range<u64>>> {
        if self.kind != InputKind::Regular {
            return None;
        }
        super::sparse::data_ranges(&self.file, range.start, range.end.min(self.size()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_reads_match_the_file_and_refuse_past_the_end() {
        let dir = std::env::temp_dir().join(format!("vmsnap-mmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.bin");
        std::fs::write(&p, b"0123456789").unwrap();
        let m = MmapSource::open(&p).unwrap();
        let mut b = [0u8; 4];
        m.read_exact_at(6, &mut b).unwrap();
        assert_eq!(&b, b"6789");
        assert!(m.read_exact_at(7, &mut b).is_err());
        assert_eq!(m.as_slice().map(<[u8]>::len), Some(10));
        std::fs::write(dir.join("empty"), b"").unwrap();
        assert_eq!(MmapSource::open(dir.join("empty")).unwrap().size(), 0);
        std::fs::remove_dir_all(&dir).ok();
    }
}

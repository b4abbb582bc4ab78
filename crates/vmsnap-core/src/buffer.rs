//! Large copy buffers for bulk reads (convert, cat, streaming checks).
//!
//! Copying out of the page cache into a buffer of 4 KiB pages spends much of its time on
//! TLB misses, which inside a virtual machine are dear: on the 2-core CI machine a
//! `pread` into an ordinary 4 MiB `Vec` moved about 5 GB/s against qemu-img's 7 GB/s.
//! Asking for transparent huge pages (an aligned anonymous mapping with `MADV_HUGEPAGE`)
//! removes that cost. Where the mapping or the advice is refused, a `Vec` serves.

use std::ops::{Deref, DerefMut};

use memmap2::{Advice, MmapMut};

/// Huge-page size on x86-64 and aarch64 with 4 KiB base pages.
const HUGE_PAGE: usize = 2 << 20;

/// A zero-initialised byte buffer, backed by huge pages when the system allows it.
pub struct IoBuffer {
    storage: Storage,
    start: usize,
    len: usize,
}

enum Storage {
    Mapped(MmapMut),
    Heap(Vec<u8>),
}

impl IoBuffer {
    /// A buffer of `len` zero bytes.
    pub fn new(len: usize) -> IoBuffer {
        if len >= HUGE_PAGE {
            if let Some(b) = Self::mapped(len) {
                return b;
            }
        }
        IoBuffer {
            storage: Storage::Heap(vec![0; len]),
            start: 0,
            len,
        }
    }

    fn mapped(len: usize) -> Option<IoBuffer> {
        // One extra huge page of slack lets the usable part start on a huge-page boundary.
        let map = MmapMut::map_anon(len.checked_add(HUGE_PAGE)?).ok()?;
        let addr = map.as_ptr() as usize;
        let start = (HUGE_PAGE - addr % HUGE_PAGE) % HUGE_PAGE;
        map.advise_range(Advice::HugePage, start, len).ok()?;
        Some(IoBuffer {
            storage: Storage::Mapped(map),
            start,
            len,
        })
    }

    /// Whether the buffer is backed by a huge-page mapping (for diagnostics and tests).
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }
}

impl Deref for IoBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let all: &[u8] = match &self.storage {
            Storage::Mapped(m) => m,
            Storage::Heap(v) => v,
        };
        all.get(self.start..self.start + self.len)
            .unwrap_or_default()
    }
}

impl DerefMut for IoBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        let (start, len) = (self.start, self.len);
        let all: &mut [u8] = match &mut self.storage {
            Storage::Mapped(m) => m,
            Storage::Heap(v) => v,
        };
        all.get_mut(start..start + len).unwrap_or_default()
    }
}

impl std::fmt::Debug for IoBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoBuffer")
            .field("len", &self.len)
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zeroed_writable_and_exactly_sized() {
        for len in [0, 1, 4096, HUGE_PAGE, (4 << 20) + 3] {
            let mut b = IoBuffer::new(len);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&x| x == 0));
            if len > 0 {
                b[len - 1] = 7;
                assert_eq!(b[len - 1], 7);
            }
        }
        let big = IoBuffer::new(4 << 20);
        assert!(
            big.is_mapped(),
            "a 4 MiB buffer should be an anonymous mapping on Linux"
        );
        assert_eq!(big.as_ptr() as usize % HUGE_PAGE, 0);
    }
}

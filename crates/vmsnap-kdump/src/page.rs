//! Page descriptors (`page_desc_t`) and the pages they point to: stored as is, or
//! compressed (zlib; lzo, snappy and zstd are named and refused), with a small cache of
//! decompressed pages.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use flate2::{Decompress, FlushDecompress, Status};
use vmsnap_core::{Bytes, Error, Result};
use vmsnap_elf::Endian;

use crate::header::compression_names;
use crate::raw::{
    COMPRESSION_FLAGS, DUMP_DH_COMPRESSED_ZLIB, MAX_COMPRESSED_FACTOR, PAGE_CACHE_SLOTS,
    PAGE_DESC_SIZE,
};

/// One checked page descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageDesc {
    /// Where the page's bytes lie in the dump.
    pub offset: u64,
    /// How many bytes are stored.
    pub size: u64,
    /// Compression flags (0: stored as is).
    pub flags: u32,
}

impl PageDesc {
    /// Parses descriptor `raw`, read from dump offset `at`, and checks it against the
    /// dump's length and the page size.
    pub fn parse(raw: &[u8], at: u64, e: Endian, block_size: u64, dump_len: u64) -> Result<Self> {
        let b = Bytes::new(raw, at);
        let offset = e.u64(&b, 0)?;
        let size = u64::from(e.u32(&b, 8)?);
        let flags = e.u32(&b, 12)?;
        let compressed = flags & COMPRESSION_FLAGS != 0;
        if !compressed && size != block_size {
            return Err(Error::malformed(
                at,
                format!(
                    "an uncompressed page of {size} bytes in a dump of {block_size}-byte pages"
                ),
            ));
        }
        if compressed && (size == 0 || size > block_size * MAX_COMPRESSED_FACTOR) {
            return Err(Error::malformed(
                at,
                format!("a compressed page of {size} bytes (pages are {block_size} bytes)"),
            ));
        }
        if offset.checked_add(size).is_none_or(|end| end > dump_len) {
            return Err(Error::truncated(
                at,
                format!(
                    "page data of {size} bytes at {offset:#x} runs past the end of the dump \
                     ({dump_len:#x} bytes)"
                ),
            ));
        }
        Ok(PageDesc {
            offset,
            size,
            flags,
        })
    }

    /// Whether the page is stored compressed.
    pub fn compressed(&self) -> bool {
        self.flags & COMPRESSION_FLAGS != 0
    }
}

/// Size of a descriptor, as a `usize`.
pub const DESC_BYTES: usize = PAGE_DESC_SIZE as usize;

thread_local! {
    static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// Decompresses the page `input` (stored at dump offset `at` with `flags`) into `out`,
/// which must come out exactly full.
pub fn decompress(flags: u32, input: &[u8], out: &mut [u8], at: u64) -> Result<()> {
    if flags & COMPRESSION_FLAGS != DUMP_DH_COMPRESSED_ZLIB {
        return Err(Error::unsupported(format!(
            "a page compressed with {} (this reader decompresses zlib pages)",
            compression_names(flags & COMPRESSION_FLAGS)
        ))
        .at(at));
    }
    INFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = slot.get_or_insert_with(|| Decompress::new(true));
        d.reset(true);
        let r = d.decompress(input, out, FlushDecompress::Finish);
        let produced = d.total_out();
        match r {
            Ok(Status::StreamEnd) if produced == out.len() as u64 => Ok(()),
            Ok(_) => Err(Error::malformed(
                at,
                format!(
                    "zlib data of a compressed page yields {produced} bytes or more, not \
                     one page ({}) and the end of the stream",
                    out.len()
                ),
            )),
            Err(err) => Err(Error::malformed(at, format!("zlib data of a page: {err}"))),
        }
    })
}

/// One cache slot: the page frame number and its decompressed page.
type Slot = Mutex<Option<(u64, Arc<[u8]>)>>;

/// A direct-mapped cache of decompressed pages by page frame number.
#[derive(Debug)]
pub struct PageCache {
    slots: Vec<Slot>,
}

impl PageCache {
    /// An empty cache of [`PAGE_CACHE_SLOTS`] pages.
    pub fn new() -> Self {
        PageCache {
            slots: (0..PAGE_CACHE_SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn slot(&self, pfn: u64) -> Option<&Slot> {
        self.slots.get((pfn % PAGE_CACHE_SLOTS as u64) as usize)
    }

    /// The page `pfn`, if cached.
    pub fn get(&self, pfn: u64) -> Option<Arc<[u8]>> {
        let s = self.slot(pfn)?.lock().ok()?;
        match &*s {
            Some((k, v)) if *k == pfn => Some(v.clone()),
            _ => None,
        }
    }

    /// Caches page `pfn`, replacing what shared its slot.
    pub fn insert(&self, pfn: u64, page: Arc<[u8]>) {
        if let Some(Ok(mut s)) = self.slot(pfn).map(Mutex::lock) {
            *s = Some((pfn, page));
        }
    }
}

impl Default for PageCache {
    fn default() -> Self {
        Self::new()
    }
}

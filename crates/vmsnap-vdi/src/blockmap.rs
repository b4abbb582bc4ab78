//! The VDI block map: one u32 per block, loaded whole at open and checked entry by entry,
//! so the read path never meets an entry it has not validated.

use vmsnap_core::{Error, Finding, Layer, Result};

use crate::header::Header;
use crate::raw::{BMAP_DISCARDED, BMAP_UNALLOCATED};

/// What a block map entry says about its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Block {
    /// Never written: zeros (or the parent's data, for a differencing image).
    Unallocated,
    /// Discarded: zeros.
    Discarded,
    /// Stored at this file offset.
    Data(u64),
}

/// The checked block map.
#[derive(Debug, Clone)]
pub struct BlockMap {
    entries: Vec<u32>,
    offset_data: u64,
    stride: u64,
    extra: u64,
    /// Number of entries that point at data.
    pub allocated: u64,
    /// Number of entries marked discarded.
    pub discarded: u64,
}

impl BlockMap {
    /// Reads the block map of `header` from `lower` and checks every entry: it must name
    /// a block below `blocks_in_image` whose data starts inside the file.
    pub fn load(lower: &dyn Layer, header: &Header, findings: &mut Vec<Finding>) -> Result<Self> {
        let n = u64::from(header.blocks_in_image);
        let entries: Vec<u32> = vmsnap_core::read_table(
            lower,
            u64::from(header.offset_bmap),
            n,
            vmsnap_core::limits::MAX_TABLE_BYTES,
            "VDI block map",
            u32::from_le_bytes,
        )
        .map_err(|e| e.during("reading the VDI block map"))?;
        let file_len = lower.len();
        let mut map = BlockMap {
            entries,
            offset_data: u64::from(header.offset_data),
            stride: header.block_stride(),
            extra: u64::from(header.block_extra),
            allocated: 0,
            discarded: 0,
        };
        let mut seen = vec![false; map.entries.len()];
        let mut shared = 0u64;
        let mut truncated = None;
        for (i, &e) in map.entries.iter().enumerate() {
            let at = u64::from(header.offset_bmap) + 4 * i as u64;
            match e {
                BMAP_UNALLOCATED => continue,
                BMAP_DISCARDED => {
                    map.discarded += 1;
                    continue;
                }
                _ => {}
            }
            if e >= header.blocks_in_image {
                return Err(Error::malformed(
                    at,
                    format!(
                        "VDI block map entry {i} is {e}, not below blocks_in_image ({})",
                        header.blocks_in_image
                    ),
                ));
            }
            let start = map.position(e);
            if start >= file_len {
                return Err(Error::malformed(
                    at,
                    format!(
                        "VDI block map entry {i} points at {start:#x}, past the end of the file \
                         ({file_len:#x})"
                    ),
                ));
            }
            if start + u64::from(header.block_size) > file_len && truncated.is_none() {
                truncated = Some((i, start));
            }
            match seen.get_mut(e as usize) {
                Some(s) if *s => shared += 1,
                Some(s) => *s = true,
                None => {}
            }
            map.allocated += 1;
        }
        if let Some((i, start)) = truncated {
            findings.push(Finding::warning(
                crate::rule::TRUNCATED,
                format!(
                    "VDI block {i} at {start:#x} ends past the end of the file; the missing \
                     bytes read as zeros (as QEMU reads them)"
                ),
            ));
        }
        if shared > 0 {
            findings.push(Finding::warning(
                crate::rule::BLOCK_MAP,
                format!("{shared} VDI block map entries share a data block with another entry"),
            ));
        }
        if map.allocated != u64::from(header.blocks_allocated) {
            findings.push(Finding::info(
                crate::rule::BLOCK_MAP,
                format!(
                    "VDI header counts {} allocated blocks, the block map has {}",
                    header.blocks_allocated, map.allocated
                ),
            ));
        }
        Ok(map)
    }

    /// File offset of the data of stored block `entry`.
    fn position(&self, entry: u32) -> u64 {
        // entry < blocks_in_image <= 2^30 and stride <= 128 MiB: no overflow in u64.
        self.offset_data + u64::from(entry) * self.stride + self.extra
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Block `index`; past the map reads as unallocated.
    #[inline]
    pub fn get(&self, index: u64) -> Block {
        match usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
        {
            None | Some(&BMAP_UNALLOCATED) => Block::Unallocated,
            Some(&BMAP_DISCARDED) => Block::Discarded,
            Some(&e) => Block::Data(self.position(e)),
        }
    }
}

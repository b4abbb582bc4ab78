//! The block allocation table: payload entries with a sector-bitmap entry after every
//! `chunk_ratio` of them, sized in 64 bits and checked entry by entry.

use vmsnap_core::{Error, Layer, Result};

use crate::header::Region;
use crate::metadata::Metadata;
use crate::raw::{state, BAT_OFFSET_MASK, MIB, SECTOR_BITMAP_BLOCK};

/// The BAT.
#[derive(Debug, Clone)]
pub struct Bat {
    entries: Vec<u64>,
    /// Payload blocks per sector-bitmap block.
    pub chunk_ratio: u64,
    /// Payload blocks.
    pub blocks: u64,
    /// Block size.
    pub block_size: u64,
}

/// How many entries a BAT has (QEMU GitLab #4033 and siblings: in 64 bits).
pub fn entry_count(blocks: u64, chunk_ratio: u64, has_parent: bool) -> u64 {
    if has_parent {
        blocks.div_ceil(chunk_ratio).saturating_mul(chunk_ratio + 1)
    } else if blocks == 0 {
        0
    } else {
        blocks + (blocks - 1) / chunk_ratio
    }
}

impl Bat {
    /// Reads the BAT region and checks every entry against the file (`data_len` bytes)
    /// and the metadata spans `spans` (offset, end).
    pub fn read(layer: &dyn Layer, r: &Region, m: &Metadata, spans: &[(u64, u64)]) -> Result<Bat> {
        let block_size = u64::from(m.block_size);
        let chunk_ratio = (1u64 << 23) * u64::from(m.logical_sector) / block_size;
        let blocks = m.virtual_size.div_ceil(block_size);
        let count = entry_count(blocks, chunk_ratio, m.has_parent);
        let bytes = count
            .checked_mul(8)
            .ok_or_else(|| Error::limit("BAT entries", count, u64::MAX / 8))?;
        if bytes > u64::from(r.length) {
            return Err(Error::malformed(
                r.offset,
                format!(
                    "the BAT needs {count} entries ({bytes} bytes) for {} bytes in {block_size}-byte blocks, but its region is {} bytes",
                    m.virtual_size, r.length
                ),
            ));
        }
        let entries: Vec<u64> = vmsnap_core::read_table(
            layer,
            r.offset,
            count,
            vmsnap_core::limits::MAX_TABLE_BYTES,
            "BAT",
            u64::from_le_bytes,
        )?;
        let bat = Bat {
            entries,
            chunk_ratio,
            blocks,
            block_size,
        };
        bat.check(layer.len(), m, r.offset, spans)?;
        Ok(bat)
    }

    fn check(&self, file_len: u64, m: &Metadata, bat_at: u64, spans: &[(u64, u64)]) -> Result<()> {
        let check_span = |i: u64, off: u64, len: u64, full: u64| -> Result<()> {
            let at = bat_at + i * 8;
            if off < MIB {
                return Err(Error::malformed(
                    at,
                    format!("BAT entry {i} points into the header section ({off:#x})"),
                ));
            }
            match off.checked_add(len) {
                Some(end) if end <= file_len => {}
                _ => {
                    return Err(Error::truncated(
                        at,
                        format!("BAT entry {i} puts {len} bytes at {off:#x}, past the end of the file ({file_len:#x})"),
                    ))
                }
            }
            let end = off.saturating_add(full);
            if let Some((s, e)) = spans.iter().find(|(s, e)| off < *e && *s < end) {
                return Err(Error::malformed(
                    at,
                    format!("BAT entry {i} at {off:#x} overlaps metadata at {s:#x}..{e:#x}"),
                ));
            }
            Ok(())
        };
        for b in 0..self.blocks {
            let i = self.payload_index(b);
            let e = self.entries.get(i as usize).copied().unwrap_or(0);
            let st = e & 7;
            match st {
                state::NOT_PRESENT
                | state::UNDEFINED
                | state::ZERO
                | state::UNMAPPED
                | state::UNMAPPED_V095 => {}
                state::FULLY_PRESENT | state::PARTIALLY_PRESENT => {
                    if st == state::PARTIALLY_PRESENT && !m.has_parent {
                        return Err(Error::malformed(
                            bat_at + i * 8,
                            format!("BAT entry {i}: block {b} is partially present in a disk without a parent"),
                        ));
                    }
                    let valid = (m.virtual_size - b * self.block_size).min(self.block_size);
                    check_span(i, e & BAT_OFFSET_MASK, valid, self.block_size)?;
                }
                other => {
                    return Err(Error::malformed(
                        bat_at + i * 8,
                        format!("BAT entry {i} has unknown state {other}"),
                    ))
                }
            }
        }
        if m.has_parent {
            for c in 0..self.blocks.div_ceil(self.chunk_ratio) {
                let i = c * (self.chunk_ratio + 1) + self.chunk_ratio;
                let e = self.entries.get(i as usize).copied().unwrap_or(0);
                if e & 7 == state::BITMAP_PRESENT {
                    check_span(
                        i,
                        e & BAT_OFFSET_MASK,
                        SECTOR_BITMAP_BLOCK,
                        SECTOR_BITMAP_BLOCK,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// BAT index of payload block `b`.
    pub fn payload_index(&self, b: u64) -> u64 {
        b + b / self.chunk_ratio
    }

    /// The payload entry of block `b` (bounds-checked: a missing entry reads as 0).
    pub fn payload(&self, b: u64) -> u64 {
        self.entries
            .get(self.payload_index(b) as usize)
            .copied()
            .unwrap_or(0)
    }

    /// The sector-bitmap entry covering block `b`.
    pub fn bitmap(&self, b: u64) -> u64 {
        let c = b / self.chunk_ratio;
        let i = c * (self.chunk_ratio + 1) + self.chunk_ratio;
        self.entries.get(i as usize).copied().unwrap_or(0)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Count of payload blocks per state (index = state).
    pub fn states(&self) -> [u64; 8] {
        let mut out = [0u64; 8];
        for b in 0..self.blocks {
            if let Some(s) = out.get_mut((self.payload(b) & 7) as usize) {
                *s += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_spec_in_64_bits() {
        assert_eq!(entry_count(8, 4096, false), 8);
        assert_eq!(entry_count(4097, 4096, false), 4098);
        assert_eq!(entry_count(8, 4096, true), 4097);
        // 64 TiB in 1 MiB blocks with 512-byte sectors does not wrap.
        assert_eq!(
            entry_count(64 << 20, 4096, false),
            (64 << 20) + ((64 << 20) - 1) / 4096
        );
        assert!(entry_count(u64::MAX / 2, 16, true) > u64::from(u32::MAX));
    }
}

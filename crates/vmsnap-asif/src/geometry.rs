//! Where a virtual chunk's entry lies: the sizes that follow from the header's block and
//! chunk sizes (dissect.hypervisor's `ASIF.__init__` arithmetic).
//!
//! A table is `groups` chunk groups; a group is `group_chunks` (= 4 × block size) data
//! entries followed by one bitmap entry, so a table covers `groups × group_chunks` chunks.
//! The directory has one entry per table up to the maximum size.

use vmsnap_core::{Error, Result};

use crate::header::Header;
use crate::raw::{BITMAP_BITS_PER_SECTOR, CHUNK_SIZE_AT, ENTRY_LEN, GROUP_CHUNKS_PER_BLOCK_BYTE};

/// The derived sizes of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Block (sector) size in bytes.
    pub block_size: u64,
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// Data chunks per chunk group.
    pub group_chunks: u64,
    /// Chunk groups per table.
    pub groups: u64,
    /// Entries in a table (data and bitmap entries).
    pub table_entries: u64,
    /// Tables the directory has up to the maximum size.
    pub max_tables: u64,
}

/// Where the entry of one virtual chunk lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The table (the directory entry's index).
    pub table: u64,
    /// The data entry's index in the table.
    pub entry: u64,
    /// The index in the table of the bitmap entry of the chunk's group.
    pub bitmap_entry: u64,
    /// The chunk's first sector within its group (for the group's bitmap).
    pub group_sector: u64,
}

impl Geometry {
    /// The geometry of `h`; fails when a chunk is too small to hold one chunk group's
    /// entries.
    pub fn of(h: &Header) -> Result<Self> {
        let group_chunks = GROUP_CHUNKS_PER_BLOCK_BYTE * h.block_size;
        let groups = (h.chunk_size / ENTRY_LEN) / (group_chunks + 1);
        if groups == 0 {
            return Err(Error::malformed(
                CHUNK_SIZE_AT as u64,
                format!(
                    "chunk size {} cannot hold a table of {} entries (one chunk group for \
                     block size {})",
                    h.chunk_size,
                    group_chunks + 1,
                    h.block_size
                ),
            ));
        }
        let mut g = Geometry {
            block_size: h.block_size,
            chunk_size: h.chunk_size,
            group_chunks,
            groups,
            table_entries: groups * (group_chunks + 1),
            max_tables: 0,
        };
        g.max_tables = g.tables_for(h.max_size());
        Ok(g)
    }

    /// Chunks one table covers.
    pub fn table_chunks(&self) -> u64 {
        self.groups * self.group_chunks
    }

    /// Bytes of the virtual disk one table covers.
    pub fn table_span(&self) -> u64 {
        // ≤ (chunk / 8) × chunk ≤ 2^23 × 2^26.
        self.table_chunks() * self.chunk_size
    }

    /// Bytes of one table.
    pub fn table_bytes(&self) -> u64 {
        self.table_entries * ENTRY_LEN
    }

    /// Tables covering the first `size` bytes.
    pub fn tables_for(&self, size: u64) -> u64 {
        size.div_ceil(self.table_span())
    }

    /// Sectors per chunk.
    pub fn chunk_sectors(&self) -> u64 {
        self.chunk_size / self.block_size
    }

    /// Bitmap bytes per chunk (2 bits a sector).
    pub fn chunk_bitmap_bytes(&self) -> u64 {
        self.chunk_sectors() * BITMAP_BITS_PER_SECTOR / 8
    }

    /// Where the entry of virtual chunk `chunk` lies.
    pub fn slot(&self, chunk: u64) -> Slot {
        let per_table = self.table_chunks();
        let within = chunk % per_table;
        let group = within / self.group_chunks;
        let first = group * (self.group_chunks + 1);
        let in_group = within % self.group_chunks;
        Slot {
            table: chunk / per_table,
            entry: first + in_group,
            bitmap_entry: first + self.group_chunks,
            group_sector: in_group * self.chunk_sectors(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(chunk: u64, block: u64) -> Geometry {
        let mut raw = [0u8; crate::raw::HEADER_LEN];
        raw[..4].copy_from_slice(crate::raw::MAGIC);
        raw[16..24].copy_from_slice(&512u64.to_be_bytes());
        raw[24..32].copy_from_slice(&512u64.to_be_bytes());
        raw[56..64].copy_from_slice(&(1u64 << 43).to_be_bytes());
        raw[64..68].copy_from_slice(&(chunk as u32).to_be_bytes());
        raw[68..70].copy_from_slice(&(block as u16).to_be_bytes());
        Geometry::of(&Header::parse(&raw, 1 << 20).unwrap()).unwrap()
    }

    /// The figures dissect.hypervisor computes for Apple's 1 MiB chunks and 512-byte
    /// blocks: 2048 data entries a group, 129087 table entries, 129024 MiB a table, and
    /// (for 4 PiB) 33 289 directory entries.
    #[test]
    fn apple_geometry() {
        let g = geometry(1 << 20, 512);
        assert_eq!(g.group_chunks, 2048);
        assert_eq!(g.table_entries, 129_087);
        assert_eq!(g.table_span(), 129_024 << 20);
        assert_eq!(g.max_tables, 33_289);
        assert_eq!(g.chunk_bitmap_bytes(), 512);
        let s = g.slot(2048 + 5);
        assert_eq!(
            (s.table, s.entry, s.bitmap_entry),
            (0, 2049 + 5, 2049 + 2048)
        );
        assert_eq!(g.slot(129_024).table, 1);
    }
}

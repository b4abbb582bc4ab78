//! Chunks: what a data entry says about one chunk of the disk, and the runs of a chunk
//! whose sectors are only partly written (the chunk group's bitmap says which).

use vmsnap_core::{Error, Layer, LayerExt, Result, ResultExt, Run, RunKind};

use crate::directory::Directory;
use crate::geometry::{Geometry, Slot};
use crate::raw::{
    ENTRY_CHUNK_MASK, ENTRY_LEN, ENTRY_STATE_SHIFT, SECTOR_WRITTEN, STATE_EMPTY, STATE_FULL,
    STATE_PARTIAL,
};

/// Most table entries read at a time into a [`EntryCursor`].
pub const ENTRY_WINDOW: u64 = 4096;

/// How one chunk of the disk is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Never written (or no table): zeros.
    Empty,
    /// Every sector written, at this file offset.
    Full(u64),
    /// Some sectors written: the chunk's file offset and the file offset of its group's
    /// bitmap.
    Partial {
        /// The data chunk's file offset.
        data: u64,
        /// The group bitmap's file offset.
        bitmap: u64,
    },
}

/// Table entries read at one place, and the bitmap of the last partly written chunk met,
/// kept between the runs of one read.
#[derive(Debug, Default)]
pub struct EntryCursor {
    at: u64,
    entries: Vec<u64>,
    bitmap_at: u64,
    bitmap: Vec<u8>,
}

/// The chunks of an image: its geometry, the active directory and the file.
#[derive(Debug, Clone, Copy)]
pub struct Chunks<'a> {
    /// The geometry.
    pub geometry: &'a Geometry,
    /// The active directory.
    pub directory: &'a Directory,
    /// The image file.
    pub file: &'a dyn Layer,
}

impl Chunks<'_> {
    /// How virtual chunk `chunk` is stored; `ahead` is how many chunks from it on the
    /// caller will probably ask for (entries are read that far ahead, up to
    /// [`ENTRY_WINDOW`]).
    pub fn chunk(&self, chunk: u64, ahead: u64, cur: &mut EntryCursor) -> Result<Chunk> {
        let g = self.geometry;
        let slot = g.slot(chunk);
        let Some(table) = self.directory.table(slot.table) else {
            return Ok(Chunk::Empty);
        };
        let entry = self.entry(table, slot.entry, ahead, cur)?;
        let at = table + slot.entry * ENTRY_LEN;
        let number = entry & ENTRY_CHUNK_MASK;
        match (entry >> ENTRY_STATE_SHIFT, number) {
            (STATE_EMPTY, 0) => Ok(Chunk::Empty),
            (STATE_FULL, n) if n != 0 => Ok(Chunk::Full(self.stored(n, at)?)),
            (STATE_PARTIAL, n) if n != 0 => Ok(Chunk::Partial {
                data: self.stored(n, at)?,
                bitmap: self.bitmap(table, slot)?,
            }),
            (state, n) => Err(Error::unsupported(format!(
                "chunk {chunk}: table entry {entry:#018x} at {at:#x} (state {state:02b}, chunk \
                 {n}) is a state nobody has described"
            ))),
        }
    }

    /// The run of a partly written chunk stored at `data` from byte `within` of it, at most
    /// `max` bytes: written sectors are data, unwritten ones unallocated.
    pub fn partial_run(
        &self,
        (data, bitmap): (u64, u64),
        within: u64,
        max: u64,
        chunk: u64,
        cur: &mut EntryCursor,
    ) -> Result<Run> {
        let g = self.geometry;
        let bs = g.block_size;
        let group_sector = g.slot(chunk).group_sector;
        let first_byte = group_sector / 4;
        let last_byte = (group_sector + g.chunk_sectors()).div_ceil(4);
        // Each run of the chunk needs its bitmap: read once per read or listing.
        if cur.bitmap.is_empty() || cur.bitmap_at != bitmap + first_byte {
            cur.bitmap = self
                .file
                .read_vec(
                    bitmap + first_byte,
                    last_byte - first_byte,
                    g.chunk_bitmap_bytes() + 1,
                    "ASIF chunk bitmap",
                )
                .during("reading a chunk group's bitmap")?;
            cur.bitmap_at = bitmap + first_byte;
        }
        let map = &cur.bitmap;
        let state = |s: u64| -> Result<u8> {
            let gs = group_sector + s;
            let byte = usize::try_from(gs / 4 - first_byte)
                .ok()
                .and_then(|i| map.get(i))
                .copied()
                .unwrap_or(0);
            match (byte >> ((gs % 4) * 2)) & 3 {
                v @ (0 | SECTOR_WRITTEN) => Ok(v),
                v => Err(Error::unsupported(format!(
                    "chunk {chunk}, sector {s}: bitmap state {v:02b} at {:#x} is a state \
                     nobody has described",
                    bitmap + gs / 4
                ))),
            }
        };
        let end = (within + max).min(g.chunk_size);
        let mut s = within / bs;
        let first = state(s)?;
        while (s + 1) * bs < end && state(s + 1)? == first {
            s += 1;
        }
        let len = ((s + 1) * bs).min(end) - within;
        let kind = if first == SECTOR_WRITTEN {
            RunKind::Data(data + within)
        } else {
            RunKind::Unallocated
        };
        Ok(Run { kind, len })
    }

    /// The table entry `index` of the table at `table`, from the cursor or read with up to
    /// `ahead` more.
    fn entry(&self, table: u64, index: u64, ahead: u64, cur: &mut EntryCursor) -> Result<u64> {
        let at = table + index * ENTRY_LEN;
        if let Some(&e) = at
            .checked_sub(cur.at)
            .and_then(|d| usize::try_from(d / ENTRY_LEN).ok())
            .and_then(|i| cur.entries.get(i))
        {
            return Ok(e);
        }
        let n = ahead
            .clamp(1, ENTRY_WINDOW)
            .min(self.geometry.table_entries - index);
        let bytes = self
            .file
            .read_vec(
                at,
                n * ENTRY_LEN,
                ENTRY_WINDOW * ENTRY_LEN,
                "ASIF table entries",
            )
            .during("reading an ASIF table")?;
        cur.at = at;
        cur.entries.clear();
        cur.entries.extend(
            bytes
                .chunks_exact(ENTRY_LEN as usize)
                .map(|c| u64::from_be_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8]))),
        );
        cur.entries
            .first()
            .copied()
            .ok_or_else(|| Error::truncated(at, "empty read of an ASIF table"))
    }

    /// The file offset of physical chunk `n` (named by the entry at `at`), which must start
    /// inside the file.
    fn stored(&self, n: u64, at: u64) -> Result<u64> {
        match n.checked_mul(self.geometry.chunk_size) {
            Some(off) if off < self.file.len() => Ok(off),
            _ => Err(Error::truncated(
                at,
                format!(
                    "chunk {n} lies past the end of the file ({} bytes)",
                    self.file.len()
                ),
            )),
        }
    }

    /// The file offset of the bitmap of `slot`'s chunk group.
    fn bitmap(&self, table: u64, slot: Slot) -> Result<u64> {
        let at = table + slot.bitmap_entry * ENTRY_LEN;
        let e = u64::from_be_bytes(
            self.file
                .read_array(at)
                .during("reading a chunk group's bitmap entry")?,
        );
        match e & ENTRY_CHUNK_MASK {
            0 => Err(Error::malformed(
                at,
                "a partly written chunk's group has no bitmap chunk",
            )),
            n => self.stored(n, at),
        }
    }
}

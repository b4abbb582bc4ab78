//! The directories: two copies of the table list, the one with the highest version active
//! (ties go to the first, as dissect.hypervisor sorts them).

use vmsnap_core::{read_table, Error, Layer, LayerExt, Result, ResultExt};

use crate::geometry::Geometry;
use crate::header::Header;
use crate::raw::{DIRECTORY_VERSION_LEN, ENTRY_LEN, MAX_DIRECTORY_ENTRIES};

/// The active directory's entries that the reader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// Which of the header's two directories is active (0 or 1).
    pub active: usize,
    /// The versions of both.
    pub versions: [u64; 2],
    /// File offset of each table covering the virtual size, `None` where the entry is 0
    /// (no table: the range reads as zeros).
    pub tables: Vec<Option<u64>>,
    /// The table of the metadata chunk, when it lies past the virtual size: its index and
    /// file offset.
    pub metadata_table: Option<(u64, Option<u64>)>,
}

impl Directory {
    /// Reads both versions, then the active directory's entries for the tables covering
    /// the virtual size (and the metadata chunk's), each table checked to lie in the file.
    pub fn load(file: &dyn Layer, h: &Header, g: &Geometry) -> Result<Self> {
        let mut versions = [0u64; 2];
        for (v, &off) in versions.iter_mut().zip(&h.directory_offsets) {
            *v = u64::from_be_bytes(file.read_array(off).during("reading a directory version")?);
        }
        let [first, second] = h.directory_offsets;
        let (active, offset) = if versions[1] > versions[0] {
            (1, second)
        } else {
            (0, first)
        };
        let base = offset
            .checked_add(DIRECTORY_VERSION_LEN)
            .ok_or_else(|| Error::malformed(offset, "directory offset"))?;
        let count = g.tables_for(h.virtual_size());
        let bytes_limit = MAX_DIRECTORY_ENTRIES * ENTRY_LEN;
        let raw = read_table(
            file,
            base,
            count,
            bytes_limit,
            "ASIF directory",
            u64::from_be_bytes,
        )?;
        let entry_at = |i: u64| base + i * ENTRY_LEN;
        let mut tables = Vec::with_capacity(raw.len());
        for (i, &e) in (0u64..).zip(&raw) {
            tables.push(table_offset(file, g, e, entry_at(i))?);
        }
        let metadata_table = match metadata_table_index(h, g) {
            Some(t) if t >= count => {
                let at = base
                    .checked_add(t.saturating_mul(ENTRY_LEN))
                    .ok_or_else(|| Error::malformed(base, "metadata directory entry"))?;
                let e = u64::from_be_bytes(
                    file.read_array(at)
                        .during("reading the metadata chunk's directory entry")?,
                );
                Some((t, table_offset(file, g, e, at)?))
            }
            _ => None,
        };
        Ok(Directory {
            active,
            versions,
            tables,
            metadata_table,
        })
    }

    /// File offset of table `t`, `None` for none.
    pub fn table(&self, t: u64) -> Option<u64> {
        match self.metadata_table {
            Some((mt, off)) if mt == t => off,
            _ => usize::try_from(t)
                .ok()
                .and_then(|i| self.tables.get(i))
                .copied()
                .flatten(),
        }
    }

    /// How many of the tables covering the virtual size exist.
    pub fn allocated_tables(&self) -> usize {
        self.tables.iter().filter(|t| t.is_some()).count()
    }
}

/// The table index of the metadata chunk, when there is one inside the maximum size.
pub fn metadata_table_index(h: &Header, g: &Geometry) -> Option<u64> {
    let chunks = h.max_size() / g.chunk_size;
    (h.metadata_chunk != 0 && h.metadata_chunk < chunks)
        .then(|| h.metadata_chunk / g.table_chunks())
}

/// The file offset of the table a directory entry `e` (read at `at`) names; the table must
/// lie in the file. Entry 0 is no table.
fn table_offset(file: &dyn Layer, g: &Geometry, e: u64, at: u64) -> Result<Option<u64>> {
    if e == 0 {
        return Ok(None);
    }
    let off = e.checked_mul(g.chunk_size);
    match off.and_then(|o| o.checked_add(g.table_bytes())) {
        Some(end) if end <= file.len() => Ok(off),
        _ => Err(Error::truncated(
            at,
            format!(
                "the table in chunk {e} ({} bytes) lies past the end of the file ({} bytes)",
                g.table_bytes(),
                file.len()
            ),
        )),
    }
}

//! The file header (magic, version word, group count) and the group table.

use vmsnap_core::{Bytes, Error, Layer, LayerExt, Result};

use crate::raw::{
    is_32bit, magic_name, version_of, GROUP_DESC_SIZE, GROUP_NAME_LEN, HEADER_SIZE, MAX_GROUPS,
};

/// The 12-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The magic (one of [`crate::raw::MAGICS`]).
    pub magic: u32,
    /// The second header word (crash-utility calls it `version`).
    pub header_version: u32,
    /// Number of group descriptors.
    pub group_count: u32,
}

impl Header {
    /// Parses the header from its 12 bytes.
    pub fn parse(b: &[u8]) -> Result<Header> {
        let b = Bytes::new(b, 0);
        let magic = b.u32_le(0)?;
        if magic_name(magic).is_none() {
            return Err(Error::malformed(
                0,
                format!("magic {magic:#010x} is not a VMware checkpoint magic"),
            ));
        }
        Ok(Header {
            magic,
            header_version: b.u32_le(4)?,
            group_count: b.u32_le(8)?,
        })
    }

    /// The format version: the magic's low nibble.
    pub fn version(&self) -> u32 {
        version_of(self.magic)
    }

    /// Whether block sizes are 32-bit (version 0).
    pub fn is_32bit(&self) -> bool {
        is_32bit(self.magic)
    }

    /// Width in bytes of a block's `nbytes` and `nbytesinmem` fields.
    pub fn block_size_width(&self) -> u64 {
        if self.is_32bit() {
            4
        } else {
            8
        }
    }
}

/// One group descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDesc {
    /// Name (up to the first NUL of its 64 bytes).
    pub name: String,
    /// File offset of the group's tag stream.
    pub offset: u64,
    /// Size of the group in bytes (0 when the writer left it unset).
    pub size: u64,
    /// File offset of this descriptor.
    pub desc_offset: u64,
}

/// Reads the header and the group table; both must lie inside the file.
pub fn read_header_and_groups(lower: &dyn Layer) -> Result<(Header, Vec<GroupDesc>)> {
    let head = lower.read_vec(0, HEADER_SIZE, HEADER_SIZE, "VMware checkpoint header")?;
    let header = Header::parse(&head)?;
    let count = u64::from(header.group_count);
    if count > MAX_GROUPS {
        return Err(Error::limit("VMware group count", count, MAX_GROUPS).at(8));
    }
    let table_len = count
        .checked_mul(GROUP_DESC_SIZE)
        .ok_or_else(|| Error::malformed(8, "group table size overflows"))?;
    let table_end = HEADER_SIZE
        .checked_add(table_len)
        .ok_or_else(|| Error::malformed(8, "group table size overflows"))?;
    if table_end > lower.len() {
        return Err(Error::truncated(
            HEADER_SIZE,
            format!(
                "group table of {count} groups ends at {table_end:#x}, past the end of the file ({:#x} bytes)",
                lower.len()
            ),
        ));
    }
    let table = lower.read_vec(
        HEADER_SIZE,
        table_len,
        MAX_GROUPS * GROUP_DESC_SIZE,
        "VMware group table",
    )?;
    let t = Bytes::new(&table, HEADER_SIZE);
    let mut groups = Vec::with_capacity(header.group_count as usize);
    for i in 0..header.group_count as usize {
        let at = i * GROUP_DESC_SIZE as usize;
        let raw_name = t.slice(at, GROUP_NAME_LEN)?;
        let end = raw_name
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(raw_name.len());
        let name = String::from_utf8_lossy(raw_name.get(..end).unwrap_or(raw_name)).into_owned();
        groups.push(GroupDesc {
            name,
            offset: t.u64_le(at + GROUP_NAME_LEN)?,
            size: t.u64_le(at + GROUP_NAME_LEN + 8)?,
            desc_offset: t.file_offset(at),
        });
    }
    Ok((header, groups))
}

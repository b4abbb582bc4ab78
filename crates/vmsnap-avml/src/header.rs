//! The avml header.

use vmsnap_core::{Bytes, Error, Result};

use crate::raw::{DATA_OFFSET_AT, HEADER_SIZE, MAGIC, MAX_VIRTUAL_SIZE, VIRTUAL_SIZE_AT};

/// A checked header: every field is consistent with the file it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Size of the virtual disk in bytes.
    pub virtual_size: u64,
    /// File offset of the disk's first byte.
    pub data_offset: u64,
}

impl Header {
    /// Parses the header at the start of a file of `file_size` bytes.
    pub fn parse(raw: &[u8; HEADER_SIZE as usize], file_size: u64) -> Result<Self> {
        if !raw.starts_with(MAGIC) {
            return Err(Error::malformed(0, "no avml magic"));
        }
        let b = Bytes::new(raw, 0);
        let virtual_size = b.u64_le(VIRTUAL_SIZE_AT as usize)?;
        if virtual_size > MAX_VIRTUAL_SIZE {
            return Err(
                Error::limit("virtual size", virtual_size, MAX_VIRTUAL_SIZE).at(VIRTUAL_SIZE_AT)
            );
        }
        let data_offset = b.u64_le(DATA_OFFSET_AT as usize)?;
        if data_offset < HEADER_SIZE {
            return Err(Error::malformed(
                DATA_OFFSET_AT,
                format!("data offset {data_offset:#x} lies inside the header"),
            ));
        }
        let fits = data_offset
            .checked_add(virtual_size)
            .is_some_and(|end| end <= file_size);
        if !fits {
            return Err(Error::truncated(
                DATA_OFFSET_AT,
                format!(
                    "{virtual_size:#x} bytes of data at {data_offset:#x} run past the end of \
                     the file ({file_size:#x} bytes)"
                ),
            ));
        }
        Ok(Header {
            virtual_size,
            data_offset,
        })
    }
}

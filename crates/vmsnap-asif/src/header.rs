//! The ASIF header.

use vmsnap_core::{Bytes, Error, Result};

use crate::raw::{
    BLOCK_SIZE_AT, CHUNK_SIZE_AT, DIRECTORY_OFFSETS_AT, FLAGS_AT, GUID_AT, HEADER_LEN,
    HEADER_SIZE_AT, MAGIC, MAX_BLOCK_SIZE, MAX_CHUNK_SIZE, MAX_SECTOR_COUNT_AT, MAX_VIRTUAL_SIZE,
    METADATA_CHUNK_AT, METADATA_FLAGS_AT, METADATA_READ_ONLY_FLAGS_AT, MIN_BLOCK_SIZE,
    READ_ONLY_FLAGS_AT, SECTOR_COUNT_AT, TOTAL_SEGMENTS_AT, VERSION_AT,
};

/// A checked header: the sizes are within the limits and consistent with each other, and
/// both directories start inside the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `header_version`.
    pub version: u32,
    /// `header_size`.
    pub header_size: u32,
    /// `header_flags`.
    pub flags: u32,
    /// Byte offsets of the two directories.
    pub directory_offsets: [u64; 2],
    /// The image's UUID (RFC 4122 byte order).
    pub guid: [u8; 16],
    /// Virtual size in blocks.
    pub sector_count: u64,
    /// Size the disk may grow to, in blocks (the reserved metadata area is at its end).
    pub max_sector_count: u64,
    /// Allocation unit in bytes.
    pub chunk_size: u64,
    /// Sector size in bytes.
    pub block_size: u64,
    /// `total_segments`.
    pub total_segments: u16,
    /// Virtual chunk number of the metadata block, 0 for none.
    pub metadata_chunk: u64,
    /// `read_only_flags`.
    pub read_only_flags: u32,
    /// `metadata_flags`.
    pub metadata_flags: u32,
    /// `metadata_read_only_flags`.
    pub metadata_read_only_flags: u32,
}

impl Header {
    /// Parses the header at the start of a file of `file_size` bytes.
    pub fn parse(raw: &[u8; HEADER_LEN], file_size: u64) -> Result<Self> {
        if !raw.starts_with(MAGIC) {
            return Err(Error::malformed(0, "no ASIF signature (shdw)"));
        }
        let b = Bytes::new(raw, 0);
        let block_size = u64::from(b.u16_be(BLOCK_SIZE_AT)?);
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
            return Err(Error::malformed(
                BLOCK_SIZE_AT as u64,
                format!(
                    "block size {block_size} outside {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE} bytes"
                ),
            ));
        }
        let chunk_size = u64::from(b.u32_be(CHUNK_SIZE_AT)?);
        if chunk_size > MAX_CHUNK_SIZE {
            return Err(
                Error::limit("chunk size", chunk_size, MAX_CHUNK_SIZE).at(CHUNK_SIZE_AT as u64)
            );
        }
        if chunk_size == 0 || chunk_size % block_size != 0 {
            return Err(Error::malformed(
                CHUNK_SIZE_AT as u64,
                format!("chunk size {chunk_size} is not a multiple of the block size {block_size}"),
            ));
        }
        let sector_count = b.u64_be(SECTOR_COUNT_AT)?;
        let max_sector_count = b.u64_be(MAX_SECTOR_COUNT_AT)?;
        let max_size = max_sector_count
            .checked_mul(block_size)
            .filter(|&s| s <= MAX_VIRTUAL_SIZE)
            .ok_or_else(|| {
                Error::limit(
                    "maximum size",
                    max_sector_count.saturating_mul(block_size),
                    MAX_VIRTUAL_SIZE,
                )
                .at(MAX_SECTOR_COUNT_AT as u64)
            })?;
        if sector_count > max_sector_count {
            return Err(Error::malformed(
                SECTOR_COUNT_AT as u64,
                format!(
                    "sector count {sector_count} is above the maximum sector count \
                     {max_sector_count}"
                ),
            ));
        }
        let _ = max_size;
        let mut directory_offsets = [0u64; 2];
        for (i, slot) in directory_offsets.iter_mut().enumerate() {
            let at = DIRECTORY_OFFSETS_AT + 8 * i;
            let off = b.u64_be(at)?;
            if off.checked_add(8).is_none_or(|end| end > file_size) {
                return Err(Error::truncated(
                    at as u64,
                    format!(
                        "directory {i} at {off:#x} lies past the end of the file \
                         ({file_size:#x} bytes)"
                    ),
                ));
            }
            *slot = off;
        }
        Ok(Header {
            version: b.u32_be(VERSION_AT)?,
            header_size: b.u32_be(HEADER_SIZE_AT)?,
            flags: b.u32_be(FLAGS_AT)?,
            directory_offsets,
            guid: b.array(GUID_AT)?,
            sector_count,
            max_sector_count,
            chunk_size,
            block_size,
            total_segments: b.u16_be(TOTAL_SEGMENTS_AT)?,
            metadata_chunk: b.u64_be(METADATA_CHUNK_AT)?,
            read_only_flags: b.u32_be(READ_ONLY_FLAGS_AT)?,
            metadata_flags: b.u32_be(METADATA_FLAGS_AT)?,
            metadata_read_only_flags: b.u32_be(METADATA_READ_ONLY_FLAGS_AT)?,
        })
    }

    /// Virtual size in bytes.
    pub fn virtual_size(&self) -> u64 {
        // Checked at parse: sector_count ≤ max_sector_count and their product fits.
        self.sector_count.saturating_mul(self.block_size)
    }

    /// Size the disk may grow to, in bytes.
    pub fn max_size(&self) -> u64 {
        self.max_sector_count.saturating_mul(self.block_size)
    }

    /// The UUID in its canonical text form.
    pub fn uuid(&self) -> String {
        let mut s = String::with_capacity(36);
        for (i, b) in self.guid.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

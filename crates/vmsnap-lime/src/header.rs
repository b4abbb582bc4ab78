//! One LiME range header.

use vmsnap_core::{Bytes, Error, Result};

use crate::raw::*;

/// A range header and where its data lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// File offset of the header.
    pub header_offset: u64,
    /// First guest-physical address (`s_addr`).
    pub start: u64,
    /// Last guest-physical address, inclusive (`e_addr`).
    pub end_inclusive: u64,
    /// The reserved field.
    pub reserved: u64,
}

impl Range {
    /// Parses the 32-byte header at file offset `at`.
    pub fn parse(raw: &[u8; 32], at: u64) -> Result<Self> {
        let b = Bytes::new(raw, at);
        let magic = b.u32_le(0)?;
        if magic != LIME_MAGIC {
            return Err(Error::malformed(
                at,
                format!("expected a LiME range header (magic {LIME_MAGIC:#x}), found {magic:#x}"),
            ));
        }
        let version = b.u32_le(4)?;
        if version != LIME_VERSION {
            return Err(Error::unsupported(format!(
                "LiME range header version {version} (only version 1 is defined)"
            ))
            .at(at + 4));
        }
        let start = b.u64_le(8)?;
        let end_inclusive = b.u64_le(16)?;
        if end_inclusive < start {
            return Err(Error::malformed(
                at + 16,
                format!("range end {end_inclusive:#x} is below its start {start:#x}"),
            ));
        }
        Ok(Range {
            header_offset: at,
            start,
            end_inclusive,
            reserved: b.u64_le(24)?,
        })
    }

    /// Length in bytes; `None` for a range covering all 2^64 addresses.
    pub fn len(&self) -> Option<u64> {
        (self.end_inclusive - self.start).checked_add(1)
    }

    /// Whether the range is empty (never: ends are inclusive).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// File offset of the range's data.
    pub fn data_offset(&self) -> u64 {
        self.header_offset.saturating_add(HEADER_SIZE)
    }
}

//! One range header: a LiME (version 1) or AVML compressed (version 2) range.

use vmsnap_core::{Bytes, Error, Result};

use crate::raw::{
    AVML_MAGIC, AVML_VERSION, END_AT, HEADER_SIZE, LIME_MAGIC, LIME_VERSION, MAX_PHYS_END,
    PADDING_AT, START_AT,
};

/// How a range stores its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Version {
    /// Version 1 (`LiME` magic): the bytes as they are.
    Lime,
    /// Version 2 (`AVML` magic): a snappy framed stream and its length.
    Compressed,
}

impl Version {
    /// The header's version number.
    pub fn number(self) -> u32 {
        match self {
            Version::Lime => LIME_VERSION,
            Version::Compressed => AVML_VERSION,
        }
    }
}

/// A checked range header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeHeader {
    /// File offset of the header.
    pub header_offset: u64,
    /// Version 1 or 2.
    pub version: Version,
    /// First guest-physical address.
    pub start: u64,
    /// Last guest-physical address, inclusive.
    pub end_inclusive: u64,
    /// Exclusive end (checked to fit `MAX_PHYS_END`).
    pub end: u64,
    /// The padding field (zero in version 2, whatever the writer left in version 1).
    pub padding: u64,
}

impl RangeHeader {
    /// Parses the 32-byte header read at file offset `at`.
    pub fn parse(raw: &[u8; HEADER_SIZE as usize], at: u64) -> Result<Self> {
        let b = Bytes::new(raw, at);
        let magic = b.u32_le(0)?;
        let number = b.u32_le(4)?;
        let version = match (magic, number) {
            (LIME_MAGIC, LIME_VERSION) => Version::Lime,
            (AVML_MAGIC, AVML_VERSION) => Version::Compressed,
            (LIME_MAGIC | AVML_MAGIC, v) => {
                return Err(Error::unsupported(format!(
                    "range header version {v} with magic {magic:#x} (AVML defines LiME \
                     version 1 and AVML version 2)"
                ))
                .at(at + 4))
            }
            _ => {
                return Err(Error::malformed(
                    at,
                    format!(
                        "expected a range header (magic {AVML_MAGIC:#x} \"AVML\" or \
                         {LIME_MAGIC:#x} \"EMiL\"), found {magic:#x}"
                    ),
                ))
            }
        };
        let start = b.u64_le(START_AT)?;
        let end_inclusive = b.u64_le(END_AT)?;
        let padding = b.u64_le(PADDING_AT)?;
        if end_inclusive < start {
            return Err(Error::malformed(
                at + END_AT as u64,
                format!("range end {end_inclusive:#x} is below its start {start:#x}"),
            ));
        }
        let end = end_inclusive
            .checked_add(1)
            .filter(|&e| e <= MAX_PHYS_END)
            .ok_or_else(|| {
                Error::limit(
                    &format!("end of range {start:#x}..={end_inclusive:#x}"),
                    end_inclusive.saturating_add(1),
                    MAX_PHYS_END,
                )
                .at(at + END_AT as u64)
            })?;
        if version == Version::Compressed && padding != 0 {
            return Err(Error::malformed(
                at + PADDING_AT as u64,
                format!("padding of an AVML range header is {padding:#x}, not zero"),
            ));
        }
        Ok(RangeHeader {
            header_offset: at,
            version,
            start,
            end_inclusive,
            end,
            padding,
        })
    }

    /// Bytes the range holds (never zero: the end is inclusive).
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the range is empty (never).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// File offset of the range's data (its bytes, or its snappy stream).
    pub fn data_offset(&self) -> u64 {
        self.header_offset.saturating_add(HEADER_SIZE)
    }

    /// `start..=end` in hex, for messages.
    pub fn span(&self) -> String {
        format!("{:#x}..={:#x}", self.start, self.end_inclusive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, version: u32, start: u64, end: u64, pad: u64) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&magic.to_le_bytes());
        h[4..8].copy_from_slice(&version.to_le_bytes());
        h[8..16].copy_from_slice(&start.to_le_bytes());
        h[16..24].copy_from_slice(&end.to_le_bytes());
        h[24..].copy_from_slice(&pad.to_le_bytes());
        h
    }

    #[test]
    fn parses_both_versions_and_refuses_the_rest() {
        // avml's own test vector (image.rs, encode_header_avml): 0x1000..0x20001.
        let avml = b"\x41\x56\x4d\x4c\x02\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\
                     \x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
        let h = RangeHeader::parse(avml, 64).unwrap();
        assert_eq!(h.version, Version::Compressed);
        assert_eq!(
            (h.start, h.end_inclusive, h.len()),
            (0x1000, 0x20000, 0x1f001)
        );
        assert_eq!(h.data_offset(), 96);
        let lime = header(LIME_MAGIC, 1, 0, 0xfff, 7);
        let h = RangeHeader::parse(&lime, 0).unwrap();
        assert_eq!((h.version, h.len(), h.padding), (Version::Lime, 0x1000, 7));
        let kind = |raw: [u8; 32]| RangeHeader::parse(&raw, 0).unwrap_err().kind();
        use vmsnap_core::ErrorKind::*;
        assert_eq!(kind(header(AVML_MAGIC, 1, 0, 1, 0)), Unsupported);
        assert_eq!(kind(header(LIME_MAGIC, 2, 0, 1, 0)), Unsupported);
        assert_eq!(kind(header(0x1234, 2, 0, 1, 0)), Malformed);
        assert_eq!(kind(header(AVML_MAGIC, 2, 5, 4, 0)), Malformed);
        assert_eq!(kind(header(AVML_MAGIC, 2, 0, 1, 1)), Malformed);
        assert_eq!(kind(header(AVML_MAGIC, 2, 0, u64::MAX, 0)), LimitExceeded);
        assert_eq!(
            kind(header(LIME_MAGIC, 1, 0, MAX_PHYS_END, 0)),
            LimitExceeded
        );
    }
}

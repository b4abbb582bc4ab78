//! On-disk constants of VHDX (MS-VHDX 1.0; all fields little-endian), GUIDs, CRC-32C and
//! the named limits this reader applies.

/// File identifier signature at offset 0.
pub const FILE_SIGNATURE: &[u8; 8] = b"vhdxfile";
/// Header signature.
pub const HEADER_SIGNATURE: &[u8; 4] = b"head";
/// Region table signature.
pub const REGION_SIGNATURE: &[u8; 4] = b"regi";
/// Metadata table signature.
pub const METADATA_SIGNATURE: &[u8; 8] = b"metadata";
/// Log entry signature.
pub const LOG_ENTRY_SIGNATURE: &[u8; 4] = b"loge";
/// Log data descriptor signature.
pub const LOG_DESC_SIGNATURE: &[u8; 4] = b"desc";
/// Log zero descriptor signature.
pub const LOG_ZERO_SIGNATURE: &[u8; 4] = b"zero";
/// Log data sector signature.
pub const LOG_DATA_SIGNATURE: &[u8; 4] = b"data";

/// 1 MiB: alignment of regions, the log and payload blocks.
pub const MIB: u64 = 1 << 20;
/// Offsets of the two headers.
pub const HEADER_OFFSETS: [u64; 2] = [64 * 1024, 128 * 1024];
/// Size of a header (the CRC covers all of it).
pub const HEADER_SIZE: u64 = 4096;
/// Offsets of the two region tables.
pub const REGION_OFFSETS: [u64; 2] = [192 * 1024, 256 * 1024];
/// Size of a region table.
pub const REGION_TABLE_SIZE: u64 = 64 * 1024;
/// Largest region-table entry count (fits the 64 KiB table).
pub const MAX_REGION_ENTRIES: u32 = 2047;
/// Largest metadata-table entry count.
pub const MAX_METADATA_ENTRIES: u16 = 2047;
/// Size of the metadata table at the start of the metadata region.
pub const METADATA_TABLE_SIZE: u64 = 64 * 1024;
/// Largest metadata item.
pub const MAX_METADATA_ITEM: u32 = 1 << 20;
/// Smallest and largest block size (CVE-2014-0148).
pub const MIN_BLOCK_SIZE: u32 = 1 << 20;
/// Largest block size.
pub const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Largest virtual disk size (the spec's 64 TiB; QEMU GitLab #4033 and siblings).
pub const MAX_VIRTUAL_SIZE: u64 = 64 << 40;
/// Largest metadata region read.
pub const MAX_METADATA_REGION: u64 = 64 << 20;
/// Largest log read and replayed.
pub const MAX_LOG_BYTES: u64 = 64 << 20;
/// The log scan reads at most this many times the log's size (hostile logs full of
/// entry headers with bad CRCs cannot make it quadratic).
pub const LOG_SCAN_BUDGET_FACTOR: u64 = 8;
/// Log sector size.
pub const LOG_SECTOR: u64 = 4096;
/// Sector-bitmap block size.
pub const SECTOR_BITMAP_BLOCK: u64 = MIB;
/// Largest parent locator key/value count.
pub const MAX_LOCATOR_ENTRIES: u16 = 256;

/// BAT payload states.
pub mod state {
    /// Not present (zeros, or the parent for differencing disks).
    pub const NOT_PRESENT: u64 = 0;
    /// Undefined (zeros).
    pub const UNDEFINED: u64 = 1;
    /// Zero.
    pub const ZERO: u64 = 2;
    /// Unmapped (trimmed).
    pub const UNMAPPED: u64 = 3;
    /// Unmapped, VHDX 0.95 value.
    pub const UNMAPPED_V095: u64 = 5;
    /// Fully present.
    pub const FULLY_PRESENT: u64 = 6;
    /// Partially present (differencing only).
    pub const PARTIALLY_PRESENT: u64 = 7;
    /// Sector bitmap block present.
    pub const BITMAP_PRESENT: u64 = 6;
}

/// Mask of a BAT entry's file offset (bits 20–63).
pub const BAT_OFFSET_MASK: u64 = 0xFFFF_FFFF_FFF0_0000;

/// An MS-GUID as stored (data1 LE u32, data2 LE u16, data3 LE u16, data4 bytes).
pub type Guid = [u8; 16];

/// Builds the stored bytes of a GUID from its text fields.
pub const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

/// BAT region.
pub const GUID_BAT: Guid = guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
/// Metadata region.
pub const GUID_METADATA: Guid = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
/// File parameters item.
pub const GUID_FILE_PARAMETERS: Guid = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
/// Virtual disk size item.
pub const GUID_VIRTUAL_DISK_SIZE: Guid = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
/// Page 83 data item.
pub const GUID_PAGE83: Guid = guid(
    0xBECA_12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
/// Logical sector size item.
pub const GUID_LOGICAL_SECTOR: Guid = guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
/// Physical sector size item.
pub const GUID_PHYSICAL_SECTOR: Guid = guid(
    0xCDA3_48C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
/// Parent locator item.
pub const GUID_PARENT_LOCATOR: Guid = guid(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);
/// Locator type of a VHDX parent.
pub const GUID_VHDX_PARENT_TYPE: Guid = guid(
    0xB04A_EFB7,
    0xD19E,
    0x4A81,
    [0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13],
);

/// The usual text form of a stored MS-GUID.
pub fn guid_text(g: &Guid) -> String {
    let d1 = u32::from_le_bytes([g[0], g[1], g[2], g[3]]);
    let d2 = u16::from_le_bytes([g[4], g[5]]);
    let d3 = u16::from_le_bytes([g[6], g[7]]);
    format!(
        "{d1:08x}-{d2:04x}-{d3:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]
    )
}

/// Parses `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` (braces optional) into stored bytes.
pub fn parse_guid(s: &str) -> Option<Guid> {
    let s = s.trim().trim_start_matches('{').trim_end_matches('}');
    let parts: Vec<&str> = s.split('-').collect();
    let [a, b, c, d, e] = parts.as_slice() else {
        return None;
    };
    if a.len() != 8 || b.len() != 4 || c.len() != 4 || d.len() != 4 || e.len() != 12 {
        return None;
    }
    let d1 = u32::from_str_radix(a, 16).ok()?;
    let d2 = u16::from_str_radix(b, 16).ok()?;
    let d3 = u16::from_str_radix(c, 16).ok()?;
    let tail = format!("{d}{e}");
    let mut d4 = [0u8; 8];
    for (i, slot) in d4.iter_mut().enumerate() {
        *slot = u8::from_str_radix(tail.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(guid(d1, d2, d3, d4))
}

/// CRC-32C of `data` with the 4-byte checksum field at `field` counted as zero.
pub fn crc_with_zeroed(data: &[u8], field: usize) -> u32 {
    let (a, rest) = data.split_at(field.min(data.len()));
    let b = rest.get(4..).unwrap_or(&[]);
    let c = crc32c::crc32c(a);
    let c = crc32c::crc32c_append(c, [0u8; 4].get(..rest.len().min(4)).unwrap_or(&[]));
    crc32c::crc32c_append(c, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_round_trip() {
        assert_eq!(guid_text(&GUID_BAT), "2dc27766-f623-4200-9d64-115e9bfd4a08");
        assert_eq!(
            parse_guid("{2DC27766-F623-4200-9D64-115E9BFD4A08}"),
            Some(GUID_BAT)
        );
        assert_eq!(parse_guid("nope"), None);
    }

    #[test]
    fn crc_skips_the_field() {
        let mut d = vec![1u8, 2, 3, 4, 9, 9, 9, 9, 5];
        let c = crc_with_zeroed(&d, 4);
        d[4..8].fill(0);
        assert_eq!(c, crc32c::crc32c(&d));
    }
}

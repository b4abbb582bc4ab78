//! On-disk layout of VHD: the 512-byte footer and the 1024-byte dynamic disk header
//! (all fields big-endian), and the named limits this reader applies.

use vmsnap_core::{Bytes, Error, Result};

/// Footer cookie.
pub const FOOTER_COOKIE: &[u8; 8] = b"conectix";
/// Dynamic header cookie.
pub const DYN_COOKIE: &[u8; 8] = b"cxsparse";
/// Footer size.
pub const FOOTER_SIZE: u64 = 512;
/// Dynamic header size.
pub const DYN_HEADER_SIZE: u64 = 1024;
/// Sector size.
pub const SECTOR: u64 = 512;
/// BAT value of an unallocated block.
pub const BAT_UNALLOCATED: u32 = 0xFFFF_FFFF;

/// Disk type: fixed.
pub const TYPE_FIXED: u32 = 2;
/// Disk type: dynamic.
pub const TYPE_DYNAMIC: u32 = 3;
/// Disk type: differencing.
pub const TYPE_DIFFERENCING: u32 = 4;

/// Largest block size accepted (QEMU only requires a power of two; 256 MiB is far above
/// anything Virtual PC or Hyper-V writes, and bounds the per-block work).
pub const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Largest BAT entry count (QEMU: `INT_MAX / 4`).
pub const MAX_BAT_ENTRIES: u32 = (i32::MAX / 4) as u32;
/// Largest virtual size QEMU accepts: 0xFF000000 sectors (2040 GiB).
pub const MAX_TOTAL_SECTORS: u64 = 0xFF00_0000;
/// Largest parent locator data read.
pub const MAX_LOCATOR_BYTES: u32 = 64 * 1024;
/// CHS maximum, in sectors (65535 × 16 × 255).
pub const CHS_MAX_SECTORS: u64 = 65535 * 16 * 255;

/// The hard-disk footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// Where it was read (file offset).
    pub at: u64,
    /// Features.
    pub features: u32,
    /// File format version.
    pub version: u32,
    /// Offset of the dynamic header (`u64::MAX` for fixed disks).
    pub data_offset: u64,
    /// Seconds since 2000-01-01 UTC.
    pub timestamp: u32,
    /// Creator application (4 bytes).
    pub creator_app: [u8; 4],
    /// Creator version.
    pub creator_version: u32,
    /// Creator host OS (4 bytes).
    pub creator_os: [u8; 4],
    /// Original size.
    pub original_size: u64,
    /// Current size.
    pub current_size: u64,
    /// Cylinders.
    pub cylinders: u16,
    /// Heads.
    pub heads: u8,
    /// Sectors per track.
    pub spt: u8,
    /// Disk type (2, 3, 4).
    pub disk_type: u32,
    /// Stored checksum.
    pub checksum: u32,
    /// Checksum computed over the footer.
    pub computed_checksum: u32,
    /// Unique id.
    pub uuid: [u8; 16],
    /// Saved-state flag.
    pub saved_state: u8,
    /// The raw bytes, for comparing copies.
    pub raw: [u8; 512],
}

/// `~(byte sum)` over `bytes` with the 4 bytes at `skip` counted as zero.
pub fn vhd_checksum(bytes: &[u8], skip: usize) -> u32 {
    let mut sum: u32 = 0;
    for (i, b) in bytes.iter().enumerate() {
        if i < skip || i >= skip + 4 {
            sum = sum.wrapping_add(u32::from(*b));
        }
    }
    !sum
}

impl Footer {
    /// Parses a footer from 512 bytes read at file offset `at`.
    pub fn parse(raw: &[u8; 512], at: u64) -> Result<Footer> {
        let b = Bytes::new(raw, at);
        if b.slice(0, 8)? != FOOTER_COOKIE {
            return Err(Error::malformed(at, "no `conectix` footer cookie"));
        }
        Ok(Footer {
            at,
            features: b.u32_be(8)?,
            version: b.u32_be(12)?,
            data_offset: b.u64_be(16)?,
            timestamp: b.u32_be(24)?,
            creator_app: b.array(28)?,
            creator_version: b.u32_be(32)?,
            creator_os: b.array(36)?,
            original_size: b.u64_be(40)?,
            current_size: b.u64_be(48)?,
            cylinders: b.u16_be(56)?,
            heads: b.u8(58)?,
            spt: b.u8(59)?,
            disk_type: b.u32_be(60)?,
            checksum: b.u32_be(64)?,
            computed_checksum: vhd_checksum(raw, 64),
            uuid: b.array(68)?,
            saved_state: b.u8(84)?,
            raw: *raw,
        })
    }

    /// Whether the stored checksum matches.
    pub fn checksum_ok(&self) -> bool {
        self.checksum == self.computed_checksum
    }

    /// CHS size in bytes.
    pub fn chs_bytes(&self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.spt) * SECTOR
    }

    /// The creator application as text.
    pub fn creator(&self) -> String {
        String::from_utf8_lossy(&self.creator_app).into_owned()
    }
}

/// How the virtual size was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRule {
    /// Cylinders × heads × sectors per track.
    Chs,
    /// The footer's current_size.
    CurrentSize,
}

impl SizeRule {
    /// Name as in QEMU's `force_size_calc`.
    pub fn as_str(self) -> &'static str {
        match self {
            SizeRule::Chs => "chs",
            SizeRule::CurrentSize => "current_size",
        }
    }
}

/// qemu-img 10's rule: CHS for the `vpc ` and `qemu` creators unless CHS is the maximum,
/// current_size for every other creator. `force` overrides it.
pub fn size_rule(f: &Footer, force: Option<SizeRule>) -> SizeRule {
    if let Some(r) = force {
        return r;
    }
    let chs_creator = &f.creator_app == b"vpc " || &f.creator_app == b"qemu";
    if chs_creator && f.chs_bytes() / SECTOR != CHS_MAX_SECTORS {
        SizeRule::Chs
    } else {
        SizeRule::CurrentSize
    }
}

/// A parent locator entry of the dynamic header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator {
    /// Platform code (`W2ru`, `W2ku`, `Wi2r`, `Wi2k`, `Mac `, `MacX`).
    pub code: [u8; 4],
    /// Data space in sectors (or bytes, per some writers).
    pub space: u32,
    /// Data length in bytes.
    pub length: u32,
    /// Absolute file offset of the data.
    pub offset: u64,
}

/// The dynamic disk header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynHeader {
    /// Where it was read.
    pub at: u64,
    /// BAT offset.
    pub table_offset: u64,
    /// Header version.
    pub version: u32,
    /// Entries in the BAT.
    pub max_table_entries: u32,
    /// Block size in bytes.
    pub block_size: u32,
    /// Stored checksum.
    pub checksum: u32,
    /// Computed checksum.
    pub computed_checksum: u32,
    /// Parent unique id.
    pub parent_uuid: [u8; 16],
    /// Parent timestamp.
    pub parent_timestamp: u32,
    /// Parent file name (UTF-16BE, trailing NULs stripped).
    pub parent_name: String,
    /// The non-empty parent locators.
    pub locators: Vec<Locator>,
}

impl DynHeader {
    /// Parses the 1024-byte dynamic header read at `at`.
    pub fn parse(raw: &[u8], at: u64) -> Result<DynHeader> {
        let b = Bytes::new(raw, at);
        if b.slice(0, 8)? != DYN_COOKIE {
            return Err(Error::malformed(
                at,
                "no `cxsparse` cookie at the footer's data_offset",
            ));
        }
        let name = utf16_until_nul(b.slice(64, 512)?, true);
        let mut locators = Vec::new();
        for i in 0..8usize {
            let e = b.sub(576 + i * 24, 24)?;
            let code: [u8; 4] = e.array(0)?;
            let loc = Locator {
                code,
                space: e.u32_be(4)?,
                length: e.u32_be(8)?,
                offset: e.u64_be(16)?,
            };
            if code != [0; 4] || loc.length != 0 {
                locators.push(loc);
            }
        }
        Ok(DynHeader {
            at,
            table_offset: b.u64_be(16)?,
            version: b.u32_be(24)?,
            max_table_entries: b.u32_be(28)?,
            block_size: b.u32_be(32)?,
            checksum: b.u32_be(36)?,
            computed_checksum: vhd_checksum(raw, 36),
            parent_uuid: b.array(40)?,
            parent_timestamp: b.u32_be(56)?,
            parent_name: name,
            locators,
        })
    }
}

/// Decodes UTF-16 (big- or little-endian) up to the first NUL, lossily.
pub fn utf16_until_nul(bytes: &[u8], big_endian: bool) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| match c {
            [a, b] if big_endian => u16::from_be_bytes([*a, *b]),
            [a, b] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        })
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// A UUID as the usual text form (bytes in order, as VHD stores them).
pub fn uuid_text(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    let h = h.concat();
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or(""),
        h.get(8..12).unwrap_or(""),
        h.get(12..16).unwrap_or(""),
        h.get(16..20).unwrap_or(""),
        h.get(20..32).unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_skips_its_field() {
        let mut b = [0u8; 512];
        b[0] = 1;
        b[64] = 0xff;
        assert_eq!(vhd_checksum(&b, 64), !1u32);
    }

    #[test]
    fn uuid_formats() {
        let u = [
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        assert_eq!(uuid_text(&u), "12345678-9abc-def0-0102-030405060708");
    }
}

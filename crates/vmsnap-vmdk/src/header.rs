//! Fixed headers: the hosted sparse `KDMV` header (and its GD_AT_END footer), the VMDK3
//! `COWD` header and the seSparse constant and volatile headers.

use serde_json::json;
use vmsnap_core::{Bytes, Error, Result};

use crate::raw::*;

/// A hosted sparse extent header (`KDMV`), as in the file (sizes in sectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseHeader {
    /// Format version (1, 2 or 3).
    pub version: u32,
    /// Flag bits (`FLAG_*`).
    pub flags: u32,
    /// Capacity in sectors.
    pub capacity: u64,
    /// Grain size in sectors.
    pub grain: u64,
    /// Embedded descriptor offset (sectors).
    pub desc_offset: u64,
    /// Embedded descriptor size (sectors).
    pub desc_size: u64,
    /// Grain-table entries per grain table.
    pub gtes_per_gt: u32,
    /// Redundant grain directory (sectors).
    pub rgd_offset: u64,
    /// Grain directory (sectors), or [`GD_AT_END`].
    pub gd_offset: u64,
    /// Where grains start (sectors).
    pub overhead: u64,
    /// Unclean-shutdown byte.
    pub unclean: u8,
    /// Newline check bytes as read.
    pub check_bytes: [u8; 4],
    /// Compression algorithm (0 none, 1 deflate).
    pub compress: u16,
}

impl SparseHeader {
    /// Parses the 512-byte header at `base` (the bytes start with the magic).
    pub fn parse(b: &[u8], base: u64) -> Result<Self> {
        let b = Bytes::new(b, base);
        if b.slice(0, 4)? != KDMV_MAGIC {
            return Err(Error::malformed(base, "not a KDMV sparse extent header"));
        }
        Ok(SparseHeader {
            version: b.u32_le(4)?,
            flags: b.u32_le(8)?,
            capacity: b.u64_le(12)?,
            grain: b.u64_le(20)?,
            desc_offset: b.u64_le(28)?,
            desc_size: b.u64_le(36)?,
            gtes_per_gt: b.u32_le(44)?,
            rgd_offset: b.u64_le(48)?,
            gd_offset: b.u64_le(56)?,
            overhead: b.u64_le(64)?,
            unclean: b.u8(72)?,
            check_bytes: b.array(73)?,
            compress: b.u16_le(77)?,
        })
    }

    /// Whether grains are compressed.
    pub fn compressed(&self) -> bool {
        self.compress == COMPRESS_DEFLATE
    }

    /// The header as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "version": self.version,
            "flags": self.flags,
            "capacity_sectors": self.capacity,
            "grain_sectors": self.grain,
            "descriptor_offset_sectors": self.desc_offset,
            "descriptor_size_sectors": self.desc_size,
            "gtes_per_gt": self.gtes_per_gt,
            "rgd_offset_sectors": self.rgd_offset,
            "gd_offset_sectors": self.gd_offset,
            "overhead_sectors": self.overhead,
            "unclean_shutdown": self.unclean,
            "compress_algorithm": self.compress,
            "zeroed_grain_gte": self.flags & FLAG_ZERO_GRAIN != 0,
            "redundant_gd": self.flags & FLAG_RGD != 0,
            "markers": self.flags & FLAG_MARKERS != 0,
        })
    }
}

/// A stream marker: `u64 val | u32 size | u32 type` and, for metadata markers, 496 bytes of
/// padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Sectors that follow (metadata) or LBA (grain).
    pub val: u64,
    /// Compressed size (grain) or 0 (metadata).
    pub size: u32,
    /// Marker type (metadata markers only).
    pub kind: u32,
    /// Whether the 496 padding bytes are all zero.
    pub zero_pad: bool,
}

impl Marker {
    /// Parses a 512-byte marker sector.
    pub fn parse(b: &[u8], base: u64) -> Result<Self> {
        let by = Bytes::new(b, base);
        Ok(Marker {
            val: by.u64_le(0)?,
            size: by.u32_le(8)?,
            kind: by.u32_le(12)?,
            zero_pad: by.slice(16, 496)?.iter().all(|&x| x == 0),
        })
    }
}

/// A VMDK3 `COWD` header (vmfsSparse delta; sizes in sectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CowdHeader {
    /// Version.
    pub version: u32,
    /// Flags.
    pub flags: u32,
    /// Capacity (sectors).
    pub disk_sectors: u32,
    /// Grain size (sectors).
    pub granularity: u32,
    /// Grain directory (sectors).
    pub l1dir_offset: u32,
    /// Grain directory entries.
    pub l1dir_size: u32,
    /// Allocated size (sectors).
    pub file_sectors: u32,
}

impl CowdHeader {
    /// Parses the header (the bytes start with the magic).
    pub fn parse(b: &[u8], base: u64) -> Result<Self> {
        let b = Bytes::new(b, base);
        if b.slice(0, 4)? != COWD_MAGIC {
            return Err(Error::malformed(base, "not a COWD extent header"));
        }
        Ok(CowdHeader {
            version: b.u32_le(4)?,
            flags: b.u32_le(8)?,
            disk_sectors: b.u32_le(12)?,
            granularity: b.u32_le(16)?,
            l1dir_offset: b.u32_le(20)?,
            l1dir_size: b.u32_le(24)?,
            file_sectors: b.u32_le(28)?,
        })
    }
}

/// The seSparse constant header (all fields LE u64; offsets and sizes in sectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeSparseHeader {
    /// Version.
    pub version: u64,
    /// Capacity (sectors).
    pub capacity: u64,
    /// Grain size (sectors).
    pub grain_size: u64,
    /// Grain-table size (sectors).
    pub grain_table_size: u64,
    /// Flags.
    pub flags: u64,
    /// reserved1..4 all zero.
    pub reserved_zero: bool,
    /// Volatile header (offset, size).
    pub volatile: (u64, u64),
    /// Grain directory (offset, size).
    pub grain_dir: (u64, u64),
    /// Grain tables (offset, size).
    pub grain_tables: (u64, u64),
    /// Grains (offset, size).
    pub grains: (u64, u64),
    /// Padding all zero.
    pub pad_zero: bool,
}

impl SeSparseHeader {
    /// Parses the 512-byte constant header.
    pub fn parse(b: &[u8], base: u64) -> Result<Self> {
        let by = Bytes::new(b, base);
        if by.u64_le(0)? != SESPARSE_MAGIC {
            return Err(Error::malformed(base, "not a seSparse constant header"));
        }
        let f = |i: usize| by.u64_le(i * 8);
        Ok(SeSparseHeader {
            version: f(1)?,
            capacity: f(2)?,
            grain_size: f(3)?,
            grain_table_size: f(4)?,
            flags: f(5)?,
            reserved_zero: f(6)? == 0 && f(7)? == 0 && f(8)? == 0 && f(9)? == 0,
            volatile: (f(10)?, f(11)?),
            grain_dir: (f(16)?, f(17)?),
            grain_tables: (f(18)?, f(19)?),
            grains: (f(24)?, f(25)?),
            pad_zero: by.slice(208, 304)?.iter().all(|&x| x == 0),
        })
    }
}

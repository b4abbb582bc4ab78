//! `disk_dump_header` and `kdump_sub_header`: every field checked against the dump's size
//! and this crate's limits.

use serde_json::{json, Map, Value};
use vmsnap_core::{Bytes, Error, Result};
use vmsnap_elf::Endian;

use crate::raw::*;

/// Which C layout wrote the header: `struct timeval` and `unsigned long` are 8 bytes on
/// 64-bit writers and 4 on 32-bit ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 64-bit writer (`DiskDumpHeader64`, `KdumpSubHeader64`).
    Bits64,
    /// 32-bit writer (`DiskDumpHeader32`, QEMU's packed `KdumpSubHeader32`).
    Bits32,
}

impl Layout {
    fn status_at(self) -> usize {
        match self {
            Layout::Bits64 => KDUMP_STATUS_OFFSET_64,
            Layout::Bits32 => KDUMP_STATUS_OFFSET_32,
        }
    }

    /// `"64"` or `"32"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Bits64 => "64",
            Layout::Bits32 => "32",
        }
    }
}

/// The checked `disk_dump_header` and `kdump_sub_header`.
#[derive(Debug, Clone)]
pub struct Header {
    /// `KDUMP   ` or `DISKDUMP`.
    pub signature: String,
    /// Byte order of every field (the guest's).
    pub endian: Endian,
    /// 64- or 32-bit layout.
    pub layout: Layout,
    /// `header_version`.
    pub version: u32,
    /// The `new_utsname` strings, by field name.
    pub utsname: Vec<(&'static str, String)>,
    /// `timestamp.tv_sec`.
    pub timestamp_sec: u64,
    /// `status` flags.
    pub status: u32,
    /// `block_size`: the page size.
    pub block_size: u64,
    /// `sub_hdr_size`, in blocks.
    pub sub_hdr_blocks: u64,
    /// `bitmap_blocks`: both bitmaps together, in blocks.
    pub bitmap_blocks: u64,
    /// Page frames covered (`max_mapnr`, or `max_mapnr_64` from version 6).
    pub max_mapnr: u64,
    /// `nr_cpus`.
    pub nr_cpus: u32,
    /// `current_cpu`.
    pub current_cpu: u32,
    /// The sub header's `phys_base`.
    pub phys_base: u64,
    /// The sub header's `dump_level`.
    pub dump_level: u32,
    /// `(offset, size)` of the VMCOREINFO text, when recorded (version 3).
    pub vmcoreinfo: Option<(u64, u64)>,
    /// `(offset, size)` of the ELF notes, when recorded (version 4).
    pub notes: Option<(u64, u64)>,
    /// `(offset, size)` of the erase information, when recorded (version 5).
    pub eraseinfo: Option<(u64, u64)>,
    /// The sub header's `split`, `start_pfn` and `end_pfn` (a dump split over files).
    pub split: Option<(u64, u64)>,
}

/// The `u32` at `at` in byte order `e`.
fn u32_at(b: &Bytes<'_>, e: Endian, at: usize) -> Result<u32> {
    e.u32(b, at)
}

/// An unsigned field of `width` bytes (4 or 8).
fn word(b: &Bytes<'_>, e: Endian, at: usize, width: usize) -> Result<u64> {
    if width == 8 {
        e.u64(b, at)
    } else {
        e.u32(b, at).map(u64::from)
    }
}

fn plausible_block(bs: u32) -> bool {
    bs.is_power_of_two() && (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs)
}

/// Finds the byte order and layout: the ones whose `block_size` is a page size.
fn detect(b: &Bytes<'_>) -> Result<(Endian, Layout)> {
    for layout in [Layout::Bits64, Layout::Bits32] {
        for e in [Endian { big: false }, Endian { big: true }] {
            if plausible_block(u32_at(b, e, layout.status_at() + 4)?) {
                return Ok((e, layout));
            }
        }
    }
    Err(Error::malformed(
        KDUMP_STATUS_OFFSET_64 as u64 + 4,
        format!(
            "no block_size that is a power of two from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE} \
             at either layout's offset ({} or {})",
            KDUMP_STATUS_OFFSET_64 + 4,
            KDUMP_STATUS_OFFSET_32 + 4
        ),
    ))
}

fn c_string(raw: &[u8]) -> String {
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).into_owned()
}

/// An `(offset, size)` pair of the sub header, checked to lie in the dump and under `limit`.
fn region(
    offset: u64,
    size: u64,
    dump_len: u64,
    limit: u64,
    what: &str,
    at: u64,
) -> Result<Option<(u64, u64)>> {
    if offset == 0 || size == 0 {
        return Ok(None);
    }
    if size > limit {
        return Err(Error::limit(what, size, limit).at(at));
    }
    if offset.checked_add(size).is_none_or(|end| end > dump_len) {
        return Err(Error::truncated(
            at,
            format!(
                "{what}: {size} bytes at {offset:#x} run past the end of the dump \
                 ({dump_len:#x} bytes)"
            ),
        ));
    }
    Ok(Some((offset, size)))
}

impl Header {
    /// Parses the header block `head` (at least `raw::HEADER_BYTES`) of a dump of `dump_len`
    /// bytes, and the sub header that `read_sub(offset, len)` reads from the block after it.
    pub fn parse(
        head: &[u8],
        dump_len: u64,
        read_sub: impl FnOnce(u64, u64) -> Result<Vec<u8>>,
    ) -> Result<Self> {
        let b = Bytes::new(head, 0);
        let signature = match b.slice(0, 8)? {
            s if s == KDUMP_SIGNATURE => "KDUMP   ",
            s if s == DISKDUMP_SIGNATURE => "DISKDUMP",
            _ => return Err(Error::malformed(0, "no KDUMP or DISKDUMP signature")),
        };
        b.slice(0, HEADER_BYTES)?;
        let (e, layout) = detect(&b)?;
        let version = u32_at(&b, e, VERSION_AT)?;
        let mut utsname = Vec::new();
        for (i, name) in UTS_FIELDS.iter().enumerate() {
            let raw = b.slice(UTSNAME_AT + i * UTS_FIELD, UTS_FIELD)?;
            utsname.push((*name, c_string(raw)));
        }
        let timestamp_sec = match layout {
            Layout::Bits64 => e.u64(&b, TIMESTAMP_AT_64)?,
            Layout::Bits32 => u64::from(e.u32(&b, TIMESTAMP_AT_32)?),
        };
        let s = layout.status_at();
        let status = u32_at(&b, e, s)?;
        let block_size = u64::from(u32_at(&b, e, s + 4)?);
        let sub_hdr_blocks = u32_at(&b, e, s + 8)?;
        let bitmap_blocks = u64::from(u32_at(&b, e, s + 12)?);
        let mapnr32 = u64::from(u32_at(&b, e, s + 16)?);
        let current_cpu = u32_at(&b, e, s + 32)?;
        let nr_cpus = u32_at(&b, e, s + 36)?;
        if sub_hdr_blocks > MAX_SUB_HEADER_BLOCKS {
            return Err(Error::limit(
                "sub header blocks",
                u64::from(sub_hdr_blocks),
                u64::from(MAX_SUB_HEADER_BLOCKS),
            )
            .at(s as u64 + 8));
        }
        if bitmap_blocks == 0 || bitmap_blocks % 2 != 0 {
            return Err(Error::malformed(
                s as u64 + 12,
                format!(
                    "bitmap_blocks is {bitmap_blocks}: two bitmaps need an even, non-zero count"
                ),
            ));
        }

        // The sub header (version 1 and later; its fields by version).
        let (w, sub_len) = match layout {
            Layout::Bits64 => (8, SUB_HEADER_64),
            Layout::Bits32 => (4, SUB_HEADER_32),
        };
        let sub = if version >= 1 && sub_hdr_blocks > 0 {
            read_sub(block_size, sub_len as u64)?
        } else {
            Vec::new()
        };
        let sb = Bytes::new(&sub, block_size);
        // Field offsets: 64-bit natural layout, or QEMU's packed 32-bit one.
        let at = |f64_: usize, f32_: usize| match layout {
            Layout::Bits64 => f64_,
            Layout::Bits32 => f32_,
        };
        let sub_at = block_size;
        let mut phys_base = 0;
        let mut dump_level = 0;
        let mut split = None;
        let mut vmcoreinfo = None;
        let mut notes = None;
        let mut eraseinfo = None;
        let mut max_mapnr = mapnr32;
        if version >= 1 && sub_hdr_blocks > 0 {
            phys_base = word(&sb, e, 0, w)?;
            dump_level = e.u32(&sb, at(8, 4))?;
        }
        if version >= 2 && sub_hdr_blocks > 0 && e.u32(&sb, at(12, 8))? != 0 {
            split = Some((word(&sb, e, at(16, 12), w)?, word(&sb, e, at(24, 16), w)?));
        }
        if version >= 3 && sub_hdr_blocks > 0 {
            let (o, n) = (e.u64(&sb, at(32, 20))?, word(&sb, e, at(40, 28), w)?);
            vmcoreinfo = region(o, n, dump_len, MAX_VMCOREINFO_BYTES, "VMCOREINFO", sub_at)?;
        }
        if version >= 4 && sub_hdr_blocks > 0 {
            let (o, n) = (e.u64(&sb, at(48, 32))?, word(&sb, e, at(56, 40), w)?);
            notes = region(o, n, dump_len, MAX_NOTE_BYTES, "ELF notes", sub_at)?;
        }
        if version >= 5 && sub_hdr_blocks > 0 {
            let (o, n) = (e.u64(&sb, at(64, 44))?, word(&sb, e, at(72, 52), w)?);
            eraseinfo = region(
                o,
                n,
                dump_len,
                MAX_VMCOREINFO_BYTES,
                "erase information",
                sub_at,
            )?;
        }
        if version >= 6 && sub_hdr_blocks > 0 {
            let m64 = e.u64(&sb, at(96, 72))?;
            if m64 != 0 {
                max_mapnr = m64;
            }
        }
        let phys_end = max_mapnr
            .checked_mul(block_size)
            .filter(|&x| x <= MAX_PHYS_END);
        if phys_end.is_none() {
            return Err(Error::limit(
                "guest-physical size (max_mapnr * block_size)",
                max_mapnr.saturating_mul(block_size),
                MAX_PHYS_END,
            )
            .at(s as u64 + 16));
        }
        Ok(Header {
            signature: signature.to_string(),
            endian: e,
            layout,
            version,
            utsname,
            timestamp_sec,
            status,
            block_size,
            sub_hdr_blocks: u64::from(sub_hdr_blocks),
            bitmap_blocks,
            max_mapnr,
            nr_cpus,
            current_cpu,
            phys_base,
            dump_level,
            vmcoreinfo,
            notes,
            eraseinfo,
            split,
        })
    }

    /// Offset of the `status` field.
    pub fn layout_status_offset(&self) -> u64 {
        self.layout.status_at() as u64
    }

    /// Bytes of one bitmap (half of the bitmap blocks).
    pub fn bitmap_bytes(&self) -> u64 {
        // bitmap_blocks < 2^32 and block_size <= 2^20: no overflow.
        self.bitmap_blocks / 2 * self.block_size
    }

    /// Offset of the first bitmap (the pages that exist).
    pub fn bitmap1_offset(&self) -> u64 {
        (1 + self.sub_hdr_blocks) * self.block_size
    }

    /// Offset of the second bitmap (the pages that were dumped).
    pub fn bitmap2_offset(&self) -> u64 {
        self.bitmap1_offset() + self.bitmap_bytes()
    }

    /// Offset of the page descriptors.
    pub fn descriptors_offset(&self) -> u64 {
        (1 + self.sub_hdr_blocks + self.bitmap_blocks) * self.block_size
    }

    /// The compression named by the status flags.
    pub fn compression(&self) -> String {
        compression_names(self.status)
    }

    /// The `new_utsname` fields as a JSON object.
    pub fn utsname_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.utsname {
            m.insert((*k).to_string(), json!(v));
        }
        Value::Object(m)
    }
}

/// The names of the compression flags set in `flags`, `none` when there is none.
pub fn compression_names(flags: u32) -> String {
    vmsnap_elf::kdump::compression_names(flags).unwrap_or_else(|| "none".to_string())
}

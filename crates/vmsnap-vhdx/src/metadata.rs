//! The metadata region: its table and the items by GUID (file parameters, virtual disk
//! size, page 83 data, sector sizes, parent locator).

use vmsnap_core::{Bytes, Error, Finding, Layer, LayerExt, Result};

use crate::header::Region;
use crate::raw::{
    guid_text, Guid, GUID_FILE_PARAMETERS, GUID_LOGICAL_SECTOR, GUID_PAGE83, GUID_PARENT_LOCATOR,
    GUID_PHYSICAL_SECTOR, GUID_VHDX_PARENT_TYPE, GUID_VIRTUAL_DISK_SIZE, MAX_BLOCK_SIZE,
    MAX_LOCATOR_ENTRIES, MAX_METADATA_ENTRIES, MAX_METADATA_ITEM, MAX_VIRTUAL_SIZE,
    METADATA_SIGNATURE, METADATA_TABLE_SIZE, MIN_BLOCK_SIZE,
};

/// A parent locator: its type and key/value pairs, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentLocator {
    /// Locator type GUID.
    pub locator_type: Guid,
    /// Key/value pairs.
    pub entries: Vec<(String, String)>,
}

impl ParentLocator {
    /// The value of `key` (first occurrence).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The parsed metadata.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// Block size.
    pub block_size: u32,
    /// LeaveBlocksAllocated (fixed disks).
    pub leave_blocks_allocated: bool,
    /// HasParent (differencing disks).
    pub has_parent: bool,
    /// Virtual disk size.
    pub virtual_size: u64,
    /// Logical sector size.
    pub logical_sector: u32,
    /// Physical sector size.
    pub physical_sector: u32,
    /// Page 83 data (the disk's SCSI identity).
    pub page83: Guid,
    /// Parent locator (differencing disks).
    pub parent: Option<ParentLocator>,
    /// Every item: GUID, offset, length, flags.
    pub items: Vec<(Guid, u32, u32, u32)>,
}

fn item<'a>(
    region: &'a [u8],
    base: u64,
    off: u32,
    len: u32,
    want: usize,
    what: &str,
) -> Result<Bytes<'a>> {
    if (len as usize) < want {
        return Err(Error::malformed(
            base + u64::from(off),
            format!("metadata item {what} is {len} bytes, needs {want}"),
        ));
    }
    Bytes::new(region, base).sub(off as usize, len as usize)
}

fn utf16le(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    String::from_utf16_lossy(&units)
}

fn parse_locator(b: Bytes<'_>, findings: &mut Vec<Finding>) -> Result<ParentLocator> {
    let locator_type: Guid = b.array(0)?;
    if locator_type != GUID_VHDX_PARENT_TYPE {
        findings.push(Finding::warning(
            vmsnap_core::rule::PARENT,
            format!(
                "parent locator type {} is not the VHDX parent type",
                guid_text(&locator_type)
            ),
        ));
    }
    let count = b.u16_le(18)?;
    if count > MAX_LOCATOR_ENTRIES || 20 + usize::from(count) * 12 > b.len() {
        return Err(Error::limit(
            "parent locator entries",
            u64::from(count),
            u64::from(MAX_LOCATOR_ENTRIES).min(b.len().saturating_sub(20) as u64 / 12),
        )
        .at(b.file_offset(18)));
    }
    let mut entries = Vec::new();
    for i in 0..usize::from(count) {
        let e = b.sub(20 + i * 12, 12)?;
        let ko = e.u32_le(0)? as usize;
        let vo = e.u32_le(4)? as usize;
        let kl = usize::from(e.u16_le(8)?);
        let vl = usize::from(e.u16_le(10)?);
        let k = utf16le(b.slice(ko, kl)?);
        let v = utf16le(b.slice(vo, vl)?);
        entries.push((k, v));
    }
    Ok(ParentLocator {
        locator_type,
        entries,
    })
}

/// Reads and checks the metadata region.
pub fn read(lower: &dyn Layer, r: &Region, findings: &mut Vec<Finding>) -> Result<Metadata> {
    let len = u64::from(r.length);
    let region = lower.read_vec(
        r.offset,
        len,
        crate::raw::MAX_METADATA_REGION,
        "metadata region",
    )?;
    let b = Bytes::new(&region, r.offset);
    if b.slice(0, 8)? != METADATA_SIGNATURE {
        return Err(Error::malformed(r.offset, "no `metadata` table signature"));
    }
    let count = b.u16_le(10)?;
    if count > MAX_METADATA_ENTRIES {
        return Err(Error::limit(
            "metadata entries",
            u64::from(count),
            u64::from(MAX_METADATA_ENTRIES),
        )
        .at(r.offset + 10));
    }
    let known = [
        GUID_FILE_PARAMETERS,
        GUID_VIRTUAL_DISK_SIZE,
        GUID_PAGE83,
        GUID_LOGICAL_SECTOR,
        GUID_PHYSICAL_SECTOR,
        GUID_PARENT_LOCATOR,
    ];
    let mut found: [Option<(u32, u32)>; 6] = [None; 6];
    let mut items = Vec::new();
    for i in 0..usize::from(count) {
        let e = b.sub(32 + i * 32, 32)?;
        let g: Guid = e.array(0)?;
        let off = e.u32_le(16)?;
        let ilen = e.u32_le(20)?;
        let flags = e.u32_le(24)?;
        items.push((g, off, ilen, flags));
        let at = e.file_offset(0);
        if ilen > MAX_METADATA_ITEM {
            return Err(Error::limit(
                "metadata item length",
                u64::from(ilen),
                u64::from(MAX_METADATA_ITEM),
            )
            .at(at));
        }
        if ilen > 0 {
            let end = u64::from(off) + u64::from(ilen);
            if u64::from(off) < METADATA_TABLE_SIZE || end > len {
                return Err(Error::malformed(
                    at,
                    format!(
                        "metadata item {} at {off:#x}+{ilen:#x} is outside the metadata region",
                        guid_text(&g)
                    ),
                ));
            }
        }
        match known.iter().position(|k| *k == g) {
            Some(k) => {
                let slot = found
                    .get_mut(k)
                    .ok_or_else(|| Error::malformed(at, "internal"))?;
                if slot.is_some() {
                    return Err(Error::malformed(
                        at,
                        format!("metadata item {} appears twice", guid_text(&g)),
                    ));
                }
                *slot = Some((off, ilen));
            }
            None if flags & 4 != 0 => {
                return Err(Error::unsupported(format!(
                    "unknown required metadata item {}",
                    guid_text(&g)
                ))
                .at(at))
            }
            None => findings.push(Finding::info(
                crate::rule::METADATA,
                format!("unknown optional metadata item {}", guid_text(&g)),
            )),
        }
    }
    let names = [
        "file parameters",
        "virtual disk size",
        "page 83 data",
        "logical sector size",
        "physical sector size",
    ];
    let need = |k: usize, want: usize| -> Result<Bytes<'_>> {
        let name = names.get(k).copied().unwrap_or("parent locator");
        let (off, ilen) = found.get(k).copied().flatten().ok_or_else(|| {
            Error::malformed(
                r.offset,
                format!("required metadata item {name} is missing"),
            )
        })?;
        item(&region, r.offset, off, ilen, want, name)
    };
    let fp = need(0, 8)?;
    let block_size = fp.u32_le(0)?;
    let fp_flags = fp.u32_le(4)?;
    let fp_at = fp.file_offset(0);
    if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) || !block_size.is_power_of_two() {
        return Err(Error::malformed(
            fp_at,
            format!("block size {block_size} is not a power of two between 1 MiB and 256 MiB"),
        ));
    }
    let vs = need(1, 8)?;
    let virtual_size = vs.u64_le(0)?;
    if virtual_size > MAX_VIRTUAL_SIZE {
        return Err(
            Error::limit("virtual disk size", virtual_size, MAX_VIRTUAL_SIZE).at(vs.file_offset(0)),
        );
    }
    let page83: Guid = need(2, 16)?.array(0)?;
    let ls = need(3, 4)?;
    let logical_sector = ls.u32_le(0)?;
    if logical_sector != 512 && logical_sector != 4096 {
        return Err(Error::malformed(
            ls.file_offset(0),
            format!("logical sector size {logical_sector}, not 512 or 4096"),
        ));
    }
    let ps = need(4, 4)?;
    let physical_sector = ps.u32_le(0)?;
    if physical_sector != 512 && physical_sector != 4096 {
        return Err(Error::malformed(
            ps.file_offset(0),
            format!("physical sector size {physical_sector}, not 512 or 4096"),
        ));
    }
    if virtual_size % u64::from(logical_sector) != 0 {
        findings.push(Finding::warning(
            crate::rule::VIRTUAL_SIZE,
            format!("virtual disk size {virtual_size} is not a multiple of the logical sector size {logical_sector}"),
        ));
    }
    let has_parent = fp_flags & 2 != 0;
    let parent = if found.get(5).copied().flatten().is_some() {
        let pl = need(5, 20)?;
        Some(parse_locator(pl, findings)?)
    } else {
        None
    };
    if has_parent && parent.is_none() {
        // A differencing disk that cannot say which file it needs still needs one.
        return Err(
            Error::malformed(fp_at, "HasParent is set but there is no parent locator")
                .for_rule(vmsnap_core::rule::PARENT),
        );
    }
    Ok(Metadata {
        block_size,
        leave_blocks_allocated: fp_flags & 1 != 0,
        has_parent,
        virtual_size,
        logical_sector,
        physical_sector,
        page83,
        parent,
        items,
    })
}

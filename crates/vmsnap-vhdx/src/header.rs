//! The header section: file identifier, the two headers (CRC-32C, sequence numbers) and
//! the region table.

use vmsnap_core::{Bytes, Error, ErrorKind, Finding, Layer, LayerExt, Result};

use crate::raw::{
    crc_with_zeroed, guid_text, Guid, FILE_SIGNATURE, GUID_BAT, GUID_METADATA, HEADER_OFFSETS,
    HEADER_SIGNATURE, HEADER_SIZE, MAX_REGION_ENTRIES, MIB, REGION_OFFSETS, REGION_SIGNATURE,
    REGION_TABLE_SIZE,
};

/// One VHDX header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Which copy (0 or 1).
    pub copy: usize,
    /// Sequence number.
    pub sequence: u64,
    /// File write GUID.
    pub file_write_guid: Guid,
    /// Data write GUID.
    pub data_write_guid: Guid,
    /// Log GUID (zero: no log to replay).
    pub log_guid: Guid,
    /// Log version.
    pub log_version: u16,
    /// Format version.
    pub version: u16,
    /// Log length.
    pub log_length: u32,
    /// Log offset.
    pub log_offset: u64,
    /// Stored CRC-32C (equal for identical headers).
    pub checksum: u32,
}

/// Reads the creator string of the file identifier.
pub fn read_identifier(lower: &dyn Layer) -> Result<String> {
    let raw = lower.read_vec(0, 520, 520, "file identifier")?;
    let b = Bytes::new(&raw, 0);
    if b.slice(0, 8)? != FILE_SIGNATURE {
        return Err(Error::malformed(0, "no `vhdxfile` file identifier"));
    }
    let units: Vec<u16> = b
        .slice(8, 512)?
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .take_while(|&u| u != 0)
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

fn parse_header(lower: &dyn Layer, copy: usize) -> std::result::Result<Header, String> {
    parse_header_inner(lower, copy).map_err(|e| e.message().to_string())
}

fn parse_header_inner(lower: &dyn Layer, copy: usize) -> Result<Header> {
    let at = HEADER_OFFSETS.get(copy).copied().unwrap_or(0);
    let raw = lower.read_vec(at, HEADER_SIZE, HEADER_SIZE, "header")?;
    let b = Bytes::new(&raw, at);
    if b.slice(0, 4)? != HEADER_SIGNATURE {
        return Err(Error::malformed(at, "no `head` signature"));
    }
    let stored = b.u32_le(4)?;
    let computed = crc_with_zeroed(&raw, 4);
    if stored != computed {
        return Err(Error::malformed(
            at + 4,
            format!("CRC-32C is {stored:#010x}, computed {computed:#010x}"),
        ));
    }
    let version = b.u16_le(66)?;
    if version != 1 {
        return Err(Error::malformed(
            at + 66,
            format!("version {version}, not 1"),
        ));
    }
    Ok(Header {
        copy,
        sequence: b.u64_le(8)?,
        file_write_guid: b.array(16)?,
        data_write_guid: b.array(32)?,
        log_guid: b.array(48)?,
        log_version: b.u16_le(64)?,
        version,
        log_length: b.u32_le(68)?,
        log_offset: b.u64_le(72)?,
        checksum: stored,
    })
}

/// Picks the active header: the valid one with the higher sequence number. A header with
/// a bad CRC is skipped (finding); neither valid is an error.
pub fn active_header(lower: &dyn Layer, findings: &mut Vec<Finding>) -> Result<Header> {
    let h0 = parse_header(lower, 0);
    let h1 = parse_header(lower, 1);
    for (i, h) in [&h0, &h1].iter().enumerate() {
        if let Err(why) = h {
            findings.push(
                Finding::warning(
                    crate::rule::HEADER,
                    format!("header {} is not valid: {why}", i + 1),
                )
                .at(HEADER_OFFSETS.get(i).copied().unwrap_or(0)),
            );
        }
    }
    let h = match (h0, h1) {
        (Ok(a), Ok(b)) => {
            if a.sequence == b.sequence && (a.checksum != b.checksum || a.log_guid != b.log_guid) {
                findings.push(Finding::warning(
                    crate::rule::HEADER,
                    "both headers have the same sequence number but differ; header 1 is used",
                ));
                a
            } else if b.sequence > a.sequence {
                b
            } else {
                a
            }
        }
        (Ok(a), Err(_)) => a,
        (Err(_), Ok(b)) => b,
        (Err(a), Err(b)) => {
            return Err(Error::malformed(
                HEADER_OFFSETS[0],
                format!("no valid header: header 1: {a}; header 2: {b}"),
            ))
        }
    };
    if h.log_version != 0 {
        return Err(Error::unsupported(format!("log version {}", h.log_version))
            .at(HEADER_OFFSETS.get(h.copy).copied().unwrap_or(0) + 64));
    }
    Ok(h)
}

/// One region table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Region GUID.
    pub guid: Guid,
    /// File offset.
    pub offset: u64,
    /// Length.
    pub length: u32,
    /// Required flag.
    pub required: bool,
}

/// The BAT and metadata regions (and any others, listed).
#[derive(Debug, Clone)]
pub struct Regions {
    /// BAT region.
    pub bat: Region,
    /// Metadata region.
    pub metadata: Region,
    /// Every entry.
    pub all: Vec<Region>,
    /// Which table copy was used.
    pub copy: usize,
}

fn parse_regions(lower: &dyn Layer, copy: usize) -> Result<Vec<Region>> {
    let at = REGION_OFFSETS.get(copy).copied().unwrap_or(0);
    let raw = lower.read_vec(at, REGION_TABLE_SIZE, REGION_TABLE_SIZE, "region table")?;
    let b = Bytes::new(&raw, at);
    if b.slice(0, 4)? != REGION_SIGNATURE {
        return Err(Error::malformed(at, "no `regi` signature"));
    }
    let stored = b.u32_le(4)?;
    let computed = crc_with_zeroed(&raw, 4);
    if stored != computed {
        return Err(Error::malformed(
            at + 4,
            format!("region table CRC-32C is {stored:#010x}, computed {computed:#010x}"),
        ));
    }
    let count = b.u32_le(8)?;
    if count > MAX_REGION_ENTRIES {
        return Err(Error::limit(
            "region table entries",
            u64::from(count),
            u64::from(MAX_REGION_ENTRIES),
        )
        .at(at + 8));
    }
    let mut out = Vec::new();
    for i in 0..count as usize {
        let e = b.sub(16 + i * 32, 32)?;
        out.push(Region {
            guid: e.array(0)?,
            offset: e.u64_le(16)?,
            length: e.u32_le(24)?,
            required: e.u32_le(28)? & 1 != 0,
        });
    }
    Ok(out)
}

/// Reads the region table (copy 1, else copy 2) and checks its entries: BAT and metadata
/// exactly once, no unknown required region, 1 MiB alignment, inside the file, no overlaps
/// with each other or with `log` (offset, length).
pub fn regions(lower: &dyn Layer, log: (u64, u64), findings: &mut Vec<Finding>) -> Result<Regions> {
    let (all, copy) = match parse_regions(lower, 0) {
        Ok(r) => (r, 0),
        Err(e) => {
            findings.push(
                Finding::warning(
                    crate::rule::REGION_TABLE,
                    format!("region table 1 is not valid: {e}"),
                )
                .at(REGION_OFFSETS[0]),
            );
            (parse_regions(lower, 1)?, 1)
        }
    };
    let mut bat = None;
    let mut meta = None;
    for r in &all {
        let slot = if r.guid == GUID_BAT {
            &mut bat
        } else if r.guid == GUID_METADATA {
            &mut meta
        } else if r.required {
            return Err(Error::unsupported(format!(
                "unknown required region {}",
                guid_text(&r.guid)
            )));
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(Error::malformed(
                REGION_OFFSETS.get(copy).copied().unwrap_or(0),
                format!("region {} appears twice", guid_text(&r.guid)),
            ));
        }
        *slot = Some(r.clone());
    }
    let (Some(bat), Some(metadata)) = (bat, meta) else {
        return Err(Error::malformed(
            REGION_OFFSETS.get(copy).copied().unwrap_or(0),
            "the BAT or metadata region is missing",
        ));
    };
    let file_size = lower.len();
    let mut spans: Vec<(u64, u64, String)> = Vec::new();
    for r in &all {
        let name = guid_text(&r.guid);
        let end = r.offset.checked_add(u64::from(r.length));
        if r.offset % MIB != 0 || r.offset < MIB || u64::from(r.length) % MIB != 0 || r.length == 0
        {
            return Err(Error::malformed(
                r.offset,
                format!(
                    "region {name} at {:#x}+{:#x} is not 1 MiB-aligned after the header section",
                    r.offset, r.length
                ),
            ));
        }
        match end {
            Some(e) if e <= file_size => spans.push((r.offset, e, name)),
            _ => {
                return Err(Error::truncated(
                    r.offset,
                    format!(
                        "region {name} at {:#x}+{:#x} ends past the end of the file",
                        r.offset, r.length
                    ),
                ))
            }
        }
    }
    if log.1 > 0 {
        spans.push((log.0, log.0.saturating_add(log.1), "log".into()));
    }
    spans.sort();
    for w in spans.windows(2) {
        if let [a, b] = w {
            if b.0 < a.1 {
                return Err(Error::malformed(
                    b.0,
                    format!("region {} overlaps {}", b.2, a.2),
                ));
            }
        }
    }
    Ok(Regions {
        bat,
        metadata,
        all,
        copy,
    })
}

/// Checks the log placement of the active header; returns (offset, length), (0, 0) when
/// there is no log.
pub fn log_span(h: &Header, file_size: u64) -> Result<(u64, u64)> {
    if h.log_length == 0 {
        return Ok((0, 0));
    }
    let len = u64::from(h.log_length);
    if !h.log_offset.is_multiple_of(MIB) || len % MIB != 0 || h.log_offset < MIB {
        return Err(Error::malformed(
            HEADER_OFFSETS.get(h.copy).copied().unwrap_or(0) + 68,
            format!(
                "log at {:#x}+{len:#x} is not 1 MiB-aligned after the header section",
                h.log_offset
            ),
        ));
    }
    match h.log_offset.checked_add(len) {
        Some(e) if e <= file_size => Ok((h.log_offset, len)),
        _ => Err(Error::new(
            ErrorKind::Truncated,
            format!(
                "log at {:#x}+{len:#x} ends past the end of the file",
                h.log_offset
            ),
        )
        .at(HEADER_OFFSETS.get(h.copy).copied().unwrap_or(0) + 72)),
    }
}

//! The two file-header copies: CRC-32 check, version check, and the choice of the current
//! copy by sequence number (16-bit, wrap-around aware; a bad copy falls back to the other).

use serde::Serialize;
use vmsnap_core::{Bytes, Error, Finding, Findings, Layer, LayerExt, Result};

use crate::raw::{
    crc_with_zeroed, seq_newer, FILE_SIGNATURE, HEADER_CRC_AT, HEADER_LEN, HEADER_OFFSETS,
    VERSION_2_0, VERSION_3_0, VERSION_3_1, VERSION_4_0,
};

/// One file-header copy as read.
#[derive(Debug, Clone, Serialize)]
pub struct FileHeader {
    /// Which copy (0 at offset 0, 1 at 0x1000).
    pub copy: usize,
    /// File offset of the copy.
    pub offset: u64,
    /// Whether the signature matched.
    pub signature_ok: bool,
    /// Stored checksum.
    pub checksum: u32,
    /// Whether the checksum verified.
    pub checksum_ok: bool,
    /// Sequence number (higher wins, modulo 2^16).
    pub sequence: u16,
    /// Format version `(major << 8) | minor`.
    pub version: u16,
    /// Data version.
    pub data_version: u32,
    /// Flags.
    pub flags: u32,
    /// Object alignment in bytes.
    pub alignment: u32,
    /// Replay log offset.
    pub log_offset: u64,
    /// Replay log size.
    pub log_size: u64,
    /// Replay log header size (log data starts after it).
    pub log_header_size: u32,
}

impl FileHeader {
    fn parse(copy: usize, offset: u64, raw: &[u8]) -> Result<Self> {
        let b = Bytes::new(raw, offset);
        let stored = b.u32_le(4)?;
        Ok(FileHeader {
            copy,
            offset,
            signature_ok: b.u32_le(0)? == FILE_SIGNATURE,
            checksum: stored,
            checksum_ok: crc_with_zeroed(b.slice(0, HEADER_LEN)?, HEADER_CRC_AT) == stored,
            sequence: b.u16_le(8)?,
            version: b.u16_le(0x0A)?,
            data_version: b.u32_le(0x0E)?,
            flags: b.u32_le(0x12)?,
            alignment: b.u32_le(0x16)?,
            log_offset: b.u64_le(0x1A)?,
            log_size: b.u64_le(0x22)?,
            log_header_size: b.u32_le(0x2A)?,
        })
    }

    fn valid(&self) -> bool {
        self.signature_ok && self.checksum_ok
    }
}

/// Reads both copies and picks the current one. Fails when neither copy has the
/// signature, or the chosen copy's version is one this reader cannot read.
pub(crate) fn read_headers(
    file: &dyn Layer,
    findings: &mut Findings,
) -> Result<(FileHeader, Vec<FileHeader>)> {
    let mut copies = Vec::new();
    for (i, &off) in HEADER_OFFSETS.iter().enumerate() {
        if off.saturating_add(HEADER_LEN as u64) > file.len() {
            continue;
        }
        let raw = file.read_vec(off, HEADER_LEN as u64, HEADER_LEN as u64, "file header")?;
        copies.push(FileHeader::parse(i, off, &raw)?);
    }
    for h in &copies {
        if h.signature_ok && !h.checksum_ok {
            findings.push(
                Finding::warning(
                    crate::rule::HEADER_CHECKSUM,
                    format!(
                        "file header copy {} has checksum {:#010x}, which does not verify",
                        h.copy, h.checksum
                    ),
                )
                .at(h.offset),
            );
        }
    }
    let valid: Vec<&FileHeader> = copies.iter().filter(|h| h.valid()).collect();
    let chosen = match valid.as_slice() {
        [a, b] => {
            if a.sequence == b.sequence {
                findings.push(Finding::warning(
                    crate::rule::HEADER_SEQUENCE,
                    format!(
                        "both file header copies have sequence {}; using copy 0",
                        a.sequence
                    ),
                ));
                (*a).clone()
            } else if seq_newer(b.sequence, a.sequence) {
                (*b).clone()
            } else {
                (*a).clone()
            }
        }
        [a] => {
            if copies.len() > 1 {
                findings.push(Finding::warning(
                    crate::rule::HEADER,
                    format!("only file header copy {} is valid; using it", a.copy),
                ));
            }
            (*a).clone()
        }
        _ => {
            // No copy verifies: use the newest with a signature, marked.
            let mut best: Option<&FileHeader> = None;
            for h in copies.iter().filter(|h| h.signature_ok) {
                if best.is_none_or(|b| seq_newer(h.sequence, b.sequence)) {
                    best = Some(h);
                }
            }
            let Some(h) = best else {
                return Err(Error::malformed(
                    0,
                    format!("no Hyper-V storage file header (signature {FILE_SIGNATURE:#010x}) at 0x0 or 0x1000"),
                ));
            };
            findings.push(
                Finding::unsafe_(
                    crate::rule::HEADER_CHECKSUM,
                    format!(
                        "no file header copy verifies; using copy {} (sequence {}) anyway",
                        h.copy, h.sequence
                    ),
                )
                .at(h.offset),
            );
            h.clone()
        }
    };
    check_version(&chosen, findings)?;
    if !chosen.alignment.is_power_of_two() || chosen.alignment > 0x10000 {
        findings.push(
            Finding::warning(
                crate::rule::ALIGNMENT,
                format!(
                    "data alignment {:#x} is not a power of two up to 0x10000",
                    chosen.alignment
                ),
            )
            .at(chosen.offset + 0x16),
        );
    }
    Ok((chosen, copies))
}

fn check_version(h: &FileHeader, findings: &mut Findings) -> Result<()> {
    match h.version {
        VERSION_4_0 => Ok(()),
        VERSION_3_1 | VERSION_3_0 | VERSION_2_0 => {
            findings.push(
                Finding::warning(
                    crate::rule::FORMAT_VERSION,
                    format!(
                        "format version {}.{} is read with the 4.0 structures (the documented \
                         ones); sibling order may not be stable before 4.0{}",
                        h.version >> 8,
                        h.version & 0xff,
                        if h.version < VERSION_3_1 {
                            ", and object-table entry checksums are not verified before 3.1"
                        } else {
                            ""
                        }
                    ),
                )
                .at(h.offset + 0x0A),
            );
            Ok(())
        }
        0x100 | 0x101 => Err(Error::unsupported(format!(
            "Hyper-V storage format version {}.{} (WCHAR key names) is not supported",
            h.version >> 8,
            h.version & 0xff
        ))
        .at(h.offset + 0x0A)),
        v => Err(Error::unsupported(format!(
            "unknown Hyper-V storage format version {:#x} (supported: 0x200, 0x300, 0x301, 0x400)",
            v
        ))
        .at(h.offset + 0x0A)),
    }
}

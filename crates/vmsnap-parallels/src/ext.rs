//! The format extension cluster and its features (dirty bitmaps). Every feature header and
//! every payload is checked to fit in what is left of the cluster before it is read:
//! QEMU GitLab #4156 was a cursor that advanced without shrinking the remaining budget.

use serde_json::json;
use vmsnap_core::{Bytes, Error, Finding, Layer, LayerExt, Result};

use crate::header::Header;
use crate::md5::md5;
use crate::raw::*;

/// A dirty bitmap stored in the format extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyBitmap {
    /// Its UUID, as QEMU names the bitmap.
    pub id: String,
    /// Disk size it covers, in sectors.
    pub size_sectors: u64,
    /// Bytes per bit.
    pub granularity: u64,
    /// L1 entries.
    pub l1_size: u32,
    /// L1 entries meaning "all clear".
    pub clear_chunks: u32,
    /// L1 entries meaning "all set".
    pub set_chunks: u32,
    /// L1 entries pointing at a stored bitmap cluster.
    pub stored_chunks: u32,
    /// Feature flags.
    pub flags: u64,
    /// File offset of the feature's payload.
    pub offset: u64,
}

impl DirtyBitmap {
    /// JSON for `describe`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "size_sectors": self.size_sectors,
            "granularity": self.granularity,
            "l1_size": self.l1_size,
            "clear_chunks": self.clear_chunks,
            "set_chunks": self.set_chunks,
            "stored_chunks": self.stored_chunks,
            "flags": self.flags,
        })
    }
}

/// A feature this reader does not know (allowed unless marked necessary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFeature {
    /// Feature magic.
    pub magic: u64,
    /// Feature flags.
    pub flags: u64,
    /// Payload size.
    pub data_size: u32,
}

/// The parsed format extension.
#[derive(Debug, Clone, Default)]
pub struct Extension {
    /// File offset of the cluster.
    pub offset: u64,
    /// Dirty bitmaps.
    pub bitmaps: Vec<DirtyBitmap>,
    /// Other features.
    pub unknown: Vec<UnknownFeature>,
}

fn hex_uuid(b: &[u8]) -> String {
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

impl Extension {
    /// Reads and checks the extension cluster at sector `h.ext_off`.
    pub fn load(lower: &dyn Layer, h: &Header, findings: &mut Vec<Finding>) -> Result<Extension> {
        let cs = h.cluster_size();
        let offset = h
            .ext_off
            .checked_mul(SECTOR)
            .filter(|o| o.checked_add(cs).is_some_and(|e| e <= lower.len()))
            .ok_or_else(|| {
                Error::malformed(
                    56,
                    format!(
                        "Parallels format extension at sector {} ({cs} bytes) is not inside \
                         the file",
                        h.ext_off
                    ),
                )
            })?;
        let raw = lower.read_vec(offset, cs, MAX_CLUSTER_SIZE, "Parallels format extension")?;
        Self::parse(&raw, offset, h, lower.len(), findings)
    }

    /// Parses an extension cluster read from `offset`.
    pub fn parse(
        raw: &[u8],
        offset: u64,
        h: &Header,
        file_len: u64,
        findings: &mut Vec<Finding>,
    ) -> Result<Extension> {
        let b = Bytes::new(raw, offset);
        if b.len() < EXT_HEADER_LEN {
            return Err(Error::truncated(
                offset,
                "Parallels format extension is too short",
            ));
        }
        let magic = b.u64_le(0)?;
        if magic != EXT_MAGIC {
            return Err(Error::malformed(
                offset,
                format!("Parallels format extension magic is {magic:#x}, expected {EXT_MAGIC:#x}"),
            ));
        }
        let sum = b.array::<16>(8)?;
        if md5(b.slice(EXT_HEADER_LEN, b.len() - EXT_HEADER_LEN)?) != sum {
            return Err(Error::malformed(
                offset + 8,
                "Parallels format extension checksum (MD5) does not match: the extension is \
                 corrupted",
            ));
        }
        let mut ext = Extension {
            offset,
            ..Extension::default()
        };
        let mut pos = EXT_HEADER_LEN;
        loop {
            // Each step consumes at least a feature header, so the loop ends within
            // cluster_size / 24 iterations.
            if b.len() - pos < FEATURE_HEADER_LEN {
                return Err(Error::malformed(
                    b.file_offset(pos),
                    format!(
                        "Parallels feature header at byte {pos} of the extension overruns the \
                         cluster ({} bytes left, {FEATURE_HEADER_LEN} needed)",
                        b.len() - pos
                    ),
                ));
            }
            let fmagic = b.u64_le(pos)?;
            let flags = b.u64_le(pos + 8)?;
            let data_size = b.u32_le(pos + 16)?;
            pos += FEATURE_HEADER_LEN;
            if fmagic == FEATURE_END {
                break;
            }
            let left = b.len() - pos;
            let n = data_size as usize;
            if n > left {
                return Err(Error::malformed(
                    b.file_offset(pos - 8),
                    format!(
                        "Parallels feature {fmagic:#x} declares {data_size} bytes of data, only \
                         {left} are left in the extension cluster"
                    ),
                ));
            }
            let data = b.sub(pos, n)?;
            match fmagic {
                FEATURE_DIRTY_BITMAP => ext.bitmaps.push(parse_bitmap(data, flags, h, file_len)?),
                _ if flags & FEATURE_NECESSARY != 0 => {
                    return Err(Error::unsupported(format!(
                        "Parallels format extension has unknown necessary feature {fmagic:#x}"
                    ))
                    .at(b.file_offset(pos - FEATURE_HEADER_LEN)))
                }
                _ => {
                    findings.push(
                        Finding::warning(
                            crate::rule::UNKNOWN_FEATURES,
                            format!("unknown Parallels format extension feature {fmagic:#x}"),
                        )
                        .at(b.file_offset(pos - FEATURE_HEADER_LEN)),
                    );
                    ext.unknown.push(UnknownFeature {
                        magic: fmagic,
                        flags,
                        data_size,
                    });
                }
            }
            // Payloads are padded to 8 bytes; the next header check bounds the cursor.
            pos = (pos + n).next_multiple_of(8).min(b.len());
        }
        Ok(ext)
    }
}

fn parse_bitmap(d: Bytes<'_>, flags: u64, h: &Header, file_len: u64) -> Result<DirtyBitmap> {
    let at = d.file_offset(0);
    if d.len() < BITMAP_HEADER_LEN {
        return Err(Error::malformed(
            at,
            format!(
                "Parallels dirty bitmap feature has {} bytes, at least {BITMAP_HEADER_LEN} needed",
                d.len()
            ),
        ));
    }
    let size_sectors = d.u64_le(0)?;
    let id = hex_uuid(d.slice(8, 16)?);
    let gran_sectors = d.u32_le(24)?;
    let l1_size = d.u32_le(28)?;
    if size_sectors != h.nb_sectors() {
        return Err(Error::malformed(
            at,
            format!(
                "Parallels dirty bitmap {id} covers {size_sectors} sectors, the disk has {}",
                h.nb_sectors()
            ),
        ));
    }
    let granularity = u64::from(gran_sectors) * SECTOR;
    if granularity == 0 || !granularity.is_power_of_two() {
        return Err(Error::malformed(
            at + 24,
            format!("Parallels dirty bitmap {id} granularity {granularity} is not a power of two"),
        ));
    }
    let l1_bytes = u64::from(l1_size) * 8;
    if l1_bytes > (d.len() - BITMAP_HEADER_LEN) as u64 {
        return Err(Error::malformed(
            at + 28,
            format!(
                "Parallels dirty bitmap {id} L1 of {l1_size} entries overruns its feature data \
                 ({} bytes)",
                d.len()
            ),
        ));
    }
    // One bit per granule, serialised in 64-bit words, one L1 entry per cluster of that.
    let bits = (size_sectors * SECTOR).div_ceil(granularity);
    let bytes = bits.div_ceil(64) * 8;
    let expected = bytes.div_ceil(h.cluster_size());
    if expected != u64::from(l1_size) {
        return Err(Error::malformed(
            at + 28,
            format!(
                "Parallels dirty bitmap {id} has {l1_size} L1 entries, {expected} expected for \
                 its size and granularity"
            ),
        ));
    }
    let mut bm = DirtyBitmap {
        id,
        size_sectors,
        granularity,
        l1_size,
        clear_chunks: 0,
        set_chunks: 0,
        stored_chunks: 0,
        flags,
        offset: at,
    };
    for i in 0..l1_size as usize {
        let e = d.u64_le(BITMAP_HEADER_LEN + 8 * i)?;
        match e {
            0 => bm.clear_chunks += 1,
            1 => bm.set_chunks += 1,
            _ => {
                let fits = e
                    .checked_mul(SECTOR)
                    .and_then(|o| o.checked_add(h.cluster_size()))
                    .is_some_and(|end| end <= file_len);
                if !fits {
                    return Err(Error::malformed(
                        d.file_offset(BITMAP_HEADER_LEN + 8 * i),
                        format!(
                            "Parallels dirty bitmap {} L1 entry {i} (sector {e}) is not inside \
                             the file",
                            bm.id
                        ),
                    ));
                }
                bm.stored_chunks += 1;
            }
        }
    }
    Ok(bm)
}

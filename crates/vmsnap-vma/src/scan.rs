//! The extent scan: every extent after the header, once, at open, into one list of
//! clusters per device.
//!
//! What vma-reader.c (`restore_extent`, `vma_reader_restore_full`) refuses, this scan
//! refuses too, so no bytes are read from an archive Proxmox would not restore: a cluster
//! of a device the header does not list, a cluster or block past its device's end, a block
//! count that disagrees with the masks, a cluster stored twice. What vma-reader also
//! refuses but leaves the rest readable becomes a finding instead: a wrong MD5 or uuid in
//! an extent header, and an archive cut short (the clusters it lacks are reported, and
//! reading them fails).

use vmsnap_core::{Bytes, Error, Finding, Layer, LayerExt, Result};

use crate::header::Header;
use crate::md5;
use crate::raw::{
    BLOCKINFO_AT, BLOCKS_PER_EXTENT, BLOCK_SIZE, CLUSTER_SIZE, EXTENT_BLOCK_COUNT_AT,
    EXTENT_HEADER_SIZE, EXTENT_MAGIC, EXTENT_MD5_AT, EXTENT_RESERVED_AT, EXTENT_UUID_AT,
    MAX_CLUSTERS, MAX_EXTENTS,
};
use crate::rule;

/// One stored cluster: its number, which of its 4 KiB blocks are stored, where the first
/// stored block lies in the file (the others follow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    /// Cluster number within its device.
    pub num: u32,
    /// Bit `i` set: block `i` is stored; clear: it is zero.
    pub mask: u16,
    /// File offset of the first stored block.
    pub data: u64,
}

/// What the scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Clusters per device, indexed like `Header::devices`, sorted by number.
    pub clusters: Vec<Vec<Cluster>>,
    /// Extents read.
    pub extents: u64,
    /// Findings (MD5, uuid, truncation).
    pub findings: Vec<Finding>,
}

/// Scans the extents of `file`.
pub fn scan(file: &dyn Layer, header: &Header) -> Result<Scan> {
    let len = file.len();
    let mut out = Scan {
        clusters: vec![Vec::new(); header.devices.len()],
        ..Scan::default()
    };
    let mut bad_md5: Option<(u64, u64)> = None;
    let mut bad_uuid: Option<(u64, u64)> = None;
    let mut total: u64 = 0;
    let mut pos = header.header_size;
    while pos < len {
        if out.extents >= MAX_EXTENTS {
            return Err(Error::limit("VMA extents", out.extents + 1, MAX_EXTENTS).at(pos));
        }
        if len - pos < EXTENT_HEADER_SIZE {
            out.findings
                .push(truncated(pos, len, "inside an extent header"));
            break;
        }
        let raw: [u8; EXTENT_HEADER_SIZE as usize] = file.read_array(pos)?;
        let b = Bytes::new(&raw, pos);
        if b.slice(0, 4)? != EXTENT_MAGIC || b.u16_be(EXTENT_RESERVED_AT)? != 0 {
            out.findings.push(
                Finding::warning(
                    rule::TRUNCATED,
                    format!(
                        "no VMA extent at {pos:#x}: the scan stops there, {} bytes before the \
                         end of the file",
                        len - pos
                    ),
                )
                .at(pos),
            );
            break;
        }
        let blocks = u64::from(b.u16_be(EXTENT_BLOCK_COUNT_AT)?);
        let size = EXTENT_HEADER_SIZE + blocks * BLOCK_SIZE;
        if len - pos < size {
            out.findings
                .push(truncated(pos, len, "inside an extent's data"));
            break;
        }
        if !md5::verify(&raw, EXTENT_MD5_AT) {
            let e = bad_md5.get_or_insert((pos, 0));
            e.1 += 1;
        }
        if b.array::<16>(EXTENT_UUID_AT)? != header.uuid {
            let e = bad_uuid.get_or_insert((pos, 0));
            e.1 += 1;
        }
        let mut data = pos + EXTENT_HEADER_SIZE;
        for i in 0..BLOCKS_PER_EXTENT {
            let at = BLOCKINFO_AT + 8 * i;
            let info = b.u64_be(at)?;
            let num = (info & 0xffff_ffff) as u32;
            let dev_id = ((info >> 32) & 0xff) as u8;
            let mask = (info >> 48) as u16;
            if dev_id == 0 {
                continue; // an unused entry
            }
            let at = pos + at as u64;
            let Some(idx) = header.devices.iter().position(|d| d.id == dev_id) else {
                return Err(Error::malformed(
                    at,
                    format!("cluster {num} of device {dev_id}, which the header does not list"),
                ));
            };
            let dev = header.devices.get(idx).map_or(0, |d| d.size);
            let start = u64::from(num) * CLUSTER_SIZE;
            // vma-reader: "got wrong block address - write beyond end".
            // A full cluster may run past a device's end (the rest is dropped); a partial one
            // must not store a block there.
            let last_block = match mask {
                0 | 0xffff => 0,
                m => 15 - m.leading_zeros(),
            };
            if start + u64::from(last_block) * BLOCK_SIZE >= dev {
                return Err(Error::malformed(
                    at,
                    format!("cluster {num} lies past the end of its device ({dev} bytes)"),
                ));
            }
            total += 1;
            if total > MAX_CLUSTERS {
                return Err(Error::limit("VMA clusters", total, MAX_CLUSTERS).at(at));
            }
            if let Some(list) = out.clusters.get_mut(idx) {
                list.push(Cluster { num, mask, data });
            }
            data += u64::from(mask.count_ones()) * BLOCK_SIZE;
        }
        if data != pos + size {
            return Err(Error::malformed(
                pos + EXTENT_BLOCK_COUNT_AT as u64,
                format!(
                    "the extent at {pos:#x} declares {blocks} blocks but its masks store {}",
                    (data - pos - EXTENT_HEADER_SIZE) / BLOCK_SIZE
                ),
            ));
        }
        out.extents += 1;
        pos += size;
    }
    if let Some((at, n)) = bad_md5 {
        out.findings.push(
            Finding::warning(
                rule::EXTENT_MD5,
                format!("{n} extent headers' MD5 do not match their bytes (the first at {at:#x})"),
            )
            .at(at),
        );
    }
    if let Some((at, n)) = bad_uuid {
        out.findings.push(
            Finding::warning(
                rule::EXTENT_UUID,
                format!("{n} extents carry another archive's uuid (the first at {at:#x})"),
            )
            .at(at),
        );
    }
    for (list, dev) in out.clusters.iter_mut().zip(&header.devices) {
        list.sort_unstable_by_key(|c| c.num);
        if let Some(w) = list
            .windows(2)
            .find(|w| w.first().map(|c| c.num) == w.get(1).map(|c| c.num))
        {
            let (a, b) = (
                w.first().map_or(0, |c| c.data),
                w.get(1).map_or(0, |c| c.data),
            );
            return Err(Error::malformed(
                b.max(a),
                format!(
                    "cluster {} of device {:?} is stored twice (vma-reader refuses a duplicated \
                     cluster)",
                    w.first().map_or(0, |c| c.num),
                    dev.name
                ),
            ));
        }
    }
    Ok(out)
}

fn truncated(pos: u64, len: u64, where_: &str) -> Finding {
    Finding::warning(
        rule::TRUNCATED,
        format!("the archive ends {where_} at {pos:#x} ({len} bytes): it was cut short"),
    )
    .at(pos)
}

//! qcow version 1 (QEMU format `qcow`), read-only: the 48-byte big-endian header, a
//! two-level table (L1 in memory, L2 entries read on demand), deflate-compressed clusters
//! and a backing file through the external-reference policy. Encrypted images (AES,
//! crypt_method 1) are refused: QEMU's own qcow encryption is deprecated and unsafe.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    AddressSpace, Bytes, DataExtents, EncodedRead, Error, ErrorKind, ExternalRef, Finding, Layer,
    LayerExt, OpenCtx, Plugin, PluginKind, Probe, Result, Run, RunKind, RunMap, RunSources,
    SniffWindow,
};

use crate::compress;
use crate::header::QcowV1;
use crate::limits::{MAX_BACKING_NAME, MAX_HOST_OFFSET, MAX_QCOW1_L1_BYTES};
use crate::raw;

/// Header length of qcow v1.
const HEADER_LEN: u64 = 48;
/// QEMU accepts cluster_bits 9..=16 and l2_bits 6..=13 (`qcow_open`).
const CLUSTER_BITS: Range<u8> = 9..17;
const L2_BITS: Range<u8> = 6..14;
/// Bit 63 of an L2 entry: the cluster is deflate-compressed.
const COMPRESSED: u64 = 1 << 63;

/// The `qcow` plugin (disk, priority 20).
pub const PLUGIN: Plugin = Plugin {
    name: "qcow",
    kind: PluginKind::Disk,
    priority: 20,
    stacks_on: &[AddressSpace::File, AddressSpace::GuestDisk],
    summary: "QEMU qcow version 1 (read-only; compressed clusters, backing file)",
    options: &[],
    probe,
    open,
};

/// `QFI\xfb` and version 1.
pub fn probe(w: &SniffWindow<'_>) -> Probe {
    if w.head.get(0..4) != Some(raw::MAGIC.as_slice()) {
        return Probe::No("no QFI\\xfb magic");
    }
    if w.head.get(4..8) != Some([0, 0, 0, 1].as_slice()) {
        return Probe::No("qcow magic but not version 1");
    }
    Probe::Yes
}

fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(Qcow1::open(lower, ctx)?))
}

/// An open qcow v1 image.
pub struct Qcow1 {
    file: Arc<dyn Layer>,
    header: QcowV1,
    l1_offset: u64,
    l1: Vec<u64>,
    /// The backing disk, or the stand-in for one that was not opened.
    backing: Option<Arc<dyn Layer>>,
    backing_opened: bool,
    backing_name: Option<String>,
    refs: Vec<ExternalRef>,
    findings: Vec<Finding>,
}

impl std::fmt::Debug for Qcow1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow1")
            .field("size", &self.header.size)
            .finish_non_exhaustive()
    }
}

/// The L2 table a walk over clusters is in.
#[derive(Debug, Default)]
pub struct L2Cursor {
    l1_index: Option<u64>,
    table: Vec<u64>,
}

/// Reads a table of big-endian u64 entries (`bytes` long, already checked against a named
/// limit and the file) in pieces, holding only the entries.
fn read_be_table(file: &dyn Layer, offset: u64, bytes: u64) -> Result<Vec<u64>> {
    const PIECE: u64 = 1024 * 1024;
    let mut out = Vec::with_capacity(usize::try_from(bytes / 8).unwrap_or(0));
    let mut piece = vec![0u8; PIECE.min(bytes) as usize];
    let mut at = offset;
    let end = offset.saturating_add(bytes);
    while at < end {
        let n = (end - at).min(PIECE) as usize;
        let buf = piece.get_mut(..n).unwrap_or_default();
        file.read_at(at, buf)?;
        out.extend(
            buf.chunks_exact(8)
                .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8]))),
        );
        at += n as u64;
    }
    Ok(out)
}

/// Where one cluster's data is.
enum Cluster {
    Unallocated,
    Plain(u64),
    /// Deflate-compressed: the L2 entry (see [`Qcow1::compressed`]).
    Compressed(u64),
}

impl Qcow1 {
    /// Opens `file` as qcow v1.
    pub fn open(file: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Qcow1> {
        Self::open_inner(file, ctx).map_err(|e| e.in_layer("qcow"))
    }

    fn open_inner(file: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Qcow1> {
        let file_len = file.len();
        let head = file.read_vec(0, HEADER_LEN, HEADER_LEN, "qcow header")?;
        let header = QcowV1::parse(&head)?;
        let b = Bytes::new(&head, 0);
        let backing_len = b.u32_be(16)?;
        let l1_offset = b.u64_be(40)?;
        if !CLUSTER_BITS.contains(&header.cluster_bits) {
            return Err(Error::malformed(
                32,
                format!("cluster_bits {} outside 9..=16", header.cluster_bits),
            ));
        }
        if !L2_BITS.contains(&header.l2_bits) {
            return Err(Error::malformed(
                33,
                format!("l2_bits {} outside 6..=13", header.l2_bits),
            ));
        }
        if header.crypt_method != 0 {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "encrypted qcow image (crypt_method {}): not read",
                    header.crypt_method
                ),
            )
            .for_rule(crate::rule::ENCRYPTION)
            .at(36));
        }
        let shift = u32::from(header.cluster_bits) + u32::from(header.l2_bits);
        let l1_entries = header.size.div_ceil(1u64 << shift);
        let l1_bytes = l1_entries
            .checked_mul(8)
            .filter(|&n| n <= MAX_QCOW1_L1_BYTES)
            .ok_or_else(|| {
                Error::limit(
                    "qcow L1 table bytes",
                    l1_entries.saturating_mul(8),
                    MAX_QCOW1_L1_BYTES,
                )
                .at(40)
            })?;
        if l1_offset
            .checked_add(l1_bytes)
            .is_none_or(|end| end > file_len)
        {
            return Err(Error::malformed(
                40,
                format!("L1 table at {l1_offset:#x} ({l1_bytes} bytes) is outside the file"),
            ));
        }
        let l1 = read_be_table(file.as_ref(), l1_offset, l1_bytes)
            .map_err(|e| e.during("reading the qcow L1 table"))?;
        let mut refs = Vec::new();
        let mut findings = Vec::new();
        let mut backing = None;
        let mut backing_opened = false;
        let mut backing_name = None;
        if header.backing_file_offset != 0 {
            if backing_len > MAX_BACKING_NAME {
                return Err(Error::limit(
                    "qcow backing file name length",
                    u64::from(backing_len),
                    u64::from(MAX_BACKING_NAME),
                )
                .at(16));
            }
            let name_bytes = file.read_vec(
                header.backing_file_offset,
                u64::from(backing_len),
                u64::from(MAX_BACKING_NAME),
                "qcow backing file name",
            )?;
            let name = String::from_utf8_lossy(&name_bytes).into_owned();
            let b = crate::open::open_backing(&file, &name, None, ctx, "qcow", header.size)?;
            backing_opened = b.opened;
            backing = Some(b.layer);
            findings.push(b.reference.finding().at(header.backing_file_offset));
            refs.push(b.reference);
            backing_name = Some(name);
        }
        Ok(Qcow1 {
            file,
            header,
            l1_offset,
            l1,
            backing,
            backing_opened,
            backing_name,
            refs,
            findings,
        })
    }

    fn cluster_size(&self) -> u64 {
        1 << self.header.cluster_bits
    }

    /// Bytes of guest disk one L1 entry covers.
    fn l1_span(&self) -> u64 {
        1 << (u32::from(self.header.cluster_bits) + u32::from(self.header.l2_bits))
    }

    /// The L2 table offset of L1 entry `l1_index` (0: the whole span is unallocated).
    fn l1_entry(&self, l1_index: u64) -> u64 {
        usize::try_from(l1_index)
            .ok()
            .and_then(|i| self.l1.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Where virtual cluster `index` is stored; `l2` keeps the last L2 table read whole,
    /// so that a walk reads each table once.
    fn cluster(&self, index: u64, l2: &mut L2Cursor) -> Result<Cluster> {
        let l2_bits = u32::from(self.header.l2_bits);
        let l1_index = index >> l2_bits;
        let l2_offset = self.l1_entry(l1_index);
        if l2_offset == 0 {
            return Ok(Cluster::Unallocated);
        }
        let slot = index & ((1 << l2_bits) - 1);
        let table_bytes = 8u64 << l2_bits;
        let at = l2_offset
            .checked_add(slot * 8)
            .filter(|&a| a <= MAX_HOST_OFFSET)
            .ok_or_else(|| Error::malformed(self.l1_offset, "L2 table offset overflows"))?;
        if l2.l1_index != Some(l1_index) {
            // A table that ends past the file is read entry by entry (below), so that only
            // the entries that are really missing fail.
            l2.table = if l2_offset
                .checked_add(table_bytes)
                .is_some_and(|e| e <= self.file.len())
            {
                read_be_table(self.file.as_ref(), l2_offset, table_bytes)
                    .map_err(|e| e.during("reading an L2 table"))?
            } else {
                Vec::new()
            };
            l2.l1_index = Some(l1_index);
        }
        let entry = match usize::try_from(slot).ok().and_then(|i| l2.table.get(i)) {
            Some(&e) => e,
            None => u64::from_be_bytes(
                self.file
                    .read_array::<8>(at)
                    .map_err(|e| e.during("reading an L2 entry"))?,
            ),
        };
        if entry == 0 {
            return Ok(Cluster::Unallocated);
        }
        if entry & COMPRESSED != 0 {
            return Ok(Cluster::Compressed(entry));
        }
        Ok(Cluster::Plain(entry))
    }

    /// The file offset and length of the compressed cluster with L2 entry `entry`.
    fn compressed(&self, entry: u64) -> (u64, u64) {
        let bits = 63 - u32::from(self.header.cluster_bits);
        let len = (entry >> bits) & (self.cluster_size() - 1);
        (entry & ((1 << bits) - 1), len)
    }
}

impl RunMap for Qcow1 {
    type Cursor = L2Cursor;

    /// One cluster, or the rest of an L1 span whose L2 table is unallocated.
    fn run(&self, pos: u64, max: u64, l2: &mut L2Cursor) -> Result<Run> {
        let cs = self.cluster_size();
        let span = self.l1_span();
        let within = pos % cs;
        let len = if self.l1_entry(pos / span) == 0 {
            (span - pos % span).min(max)
        } else {
            (cs - within).min(max)
        };
        let kind = match self.cluster(pos / cs, l2)? {
            Cluster::Unallocated => RunKind::Unallocated,
            Cluster::Plain(host) => RunKind::Data(host.saturating_add(within)),
            Cluster::Compressed(entry) => RunKind::Encoded(entry),
        };
        Ok(Run { kind, len })
    }

    fn sources(&self) -> RunSources<'_> {
        RunSources {
            file: self.file.as_ref(),
            file_len: self.file.len(),
            // A backing file shorter than the image reads as zeros past its end.
            backing: self.backing.as_deref(),
            backing_base: 0,
            data: DataExtents::Mapped,
        }
    }

    /// Inflates each compressed cluster (keys are L2 entries) into the part the read needs.
    fn read_encoded(&self, reads: &mut [EncodedRead<'_>]) -> Result<()> {
        let cs = self.cluster_size();
        let mut scratch = vec![0u8; cs as usize];
        for r in reads {
            let (offset, len) = self.compressed(r.key);
            let input = self.file.read_vec(
                offset,
                len.min(self.file.len().saturating_sub(offset)),
                cs,
                "compressed cluster",
            )?;
            compress::decompress(raw::COMPRESSION_ZLIB, &input, &mut scratch, offset)?;
            let within = (r.pos % cs) as usize;
            let from = within
                .checked_add(r.buf.len())
                .and_then(|end| scratch.get(within..end));
            r.buf.copy_from_slice(from.unwrap_or_default());
        }
        Ok(())
    }
}

impl vmsnap_core::RunLayer for Qcow1 {
    fn name(&self) -> &str {
        "qcow"
    }
    fn len(&self) -> u64 {
        self.header.size
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        let mut v = vec![self.file.clone()];
        v.extend(self.backing.clone());
        v
    }
    fn describe(&self) -> Value {
        json!({
            "format": "qcow",
            "version": 1,
            "virtual_size": self.header.size,
            "cluster_size": self.cluster_size(),
            "cluster_bits": self.header.cluster_bits,
            "l2_bits": self.header.l2_bits,
            "l1_table_offset": self.l1_offset,
            "l1_entries": self.l1.len(),
            "crypt_method": self.header.crypt_method,
            "backing_file": self.backing_name,
            "backing_opened": self.backing_opened,
        })
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        self.refs.clone()
    }
    fn path(&self) -> Option<&Path> {
        self.file.path()
    }
}

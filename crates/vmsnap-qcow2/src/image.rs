//! The translation engine shared by the active image and every snapshot view: L1 → L2 →
//! cluster (or subcluster) runs, which `vmsnap_core::RunMap` reads and lists, and the
//! decompressed clusters behind compressed runs.

use std::sync::Arc;

use vmsnap_core::{
    DataExtents, EncodedRead, Error, ErrorKind, Layer, Result, Run, RunKind, RunSources,
    UnavailableLayer,
};

use crate::cache::Cache;
use crate::compress::{decompress, Compressed};
use crate::header::Header;
use crate::limits::{COMPRESSED_CACHE_BYTES, L2_CACHE_BYTES, MAX_L1_BYTES};
use crate::raw;

/// Where data clusters are read from.
#[derive(Debug, Clone)]
pub enum DataFile {
    /// The qcow2 file itself.
    Same,
    /// An external data file, opened through the policy.
    External(Arc<dyn Layer>),
    /// An external data file that was not opened: reads of data clusters fail (or read
    /// zeros by opt-in) through the stand-in.
    Unavailable(Arc<UnavailableLayer>),
}

/// Everything a view needs to translate and read.
#[derive(Debug)]
pub struct Image {
    /// The qcow2 file.
    pub file: Arc<dyn Layer>,
    /// The header.
    pub header: Header,
    /// Where data clusters live.
    pub data: DataFile,
    /// The backing layer, when one was opened.
    pub backing: Option<Arc<dyn Layer>>,
    l2_cache: Cache<[u64]>,
    zcache: Cache<[u8]>,
    cluster_bits: u32,
    cluster_size: u64,
    l1_shift: u32,
    l2_mask: u64,
    sub_bits: u32,
    extended: bool,
    has_data_file: bool,
    encrypted: bool,
}

impl Image {
    /// Builds the engine for a validated header.
    pub fn new(
        file: Arc<dyn Layer>,
        header: Header,
        data: DataFile,
        backing: Option<Arc<dyn Layer>>,
        l2_cache_bytes: Option<u64>,
    ) -> Image {
        let cluster_bits = header.cluster_bits;
        let cluster_size = header.cluster_size();
        let extended = header.extended_l2();
        let l2_bits = header.l2_bits();
        Image {
            l2_cache: Cache::new(l2_cache_bytes.unwrap_or(L2_CACHE_BYTES), cluster_size),
            zcache: Cache::new(COMPRESSED_CACHE_BYTES, cluster_size),
            cluster_bits,
            cluster_size,
            l1_shift: cluster_bits + l2_bits,
            l2_mask: (1u64 << l2_bits) - 1,
            sub_bits: if extended {
                cluster_bits - 5
            } else {
                cluster_bits
            },
            extended,
            has_data_file: header.has_data_file(),
            encrypted: header.crypt_method != raw::CRYPT_NONE,
            file,
            header,
            data,
            backing,
        }
    }

    /// Cluster size.
    pub fn cluster_size(&self) -> u64 {
        self.cluster_size
    }

    /// Guest offset where the VM state of a snapshot of `disk_size` bytes starts
    /// (`qcow2_vm_state_offset`: the first L1-entry boundary at or after the disk).
    pub fn vm_state_offset(&self, disk_size: u64) -> Option<u64> {
        self.header
            .size_to_l1(disk_size)
            .checked_mul(1u64 << self.l1_shift)
    }

    /// Loads an L1 table (`what` names it in errors), validated like
    /// `qcow2_validate_table` plus file bounds.
    pub fn load_l1(&self, offset: u64, entries: u32, what: &'static str) -> Result<Arc<[u64]>> {
        load_l1(self.file.as_ref(), &self.header, offset, entries, what)
    }

    fn l2_table(&self, l2_offset: u64) -> Result<Arc<[u64]>> {
        if let Some(t) = self.l2_cache.get(l2_offset) {
            return Ok(t);
        }
        if l2_offset & (self.cluster_size - 1) != 0 {
            return Err(Error::malformed(
                l2_offset,
                format!("L2 table offset {l2_offset:#x} is not cluster aligned"),
            ));
        }
        let fits = l2_offset
            .checked_add(self.cluster_size)
            .is_some_and(|e| e <= self.file.len());
        if !fits {
            return Err(Error::truncated(
                l2_offset,
                format!(
                    "L2 table at {l2_offset:#x} lies past the end of the file ({} bytes)",
                    self.file.len()
                ),
            ));
        }
        let mut bytes = vec![0u8; self.cluster_size as usize];
        self.file
            .read_at(l2_offset, &mut bytes)
            .map_err(|e| e.during("reading L2 table"))?;
        let table: Arc<[u64]> = bytes
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_be_bytes(a)
            })
            .collect();
        self.l2_cache.insert(l2_offset, table.clone());
        Ok(table)
    }

    /// Meaning of subcluster (or cluster) `sc` of the cluster with `entry`/`bitmap`;
    /// `Data` offsets are of the unit's first byte.
    fn classify(&self, entry: u64, bitmap: u64, sc: u64, guest: u64, at: u64) -> Result<RunKind> {
        if entry & raw::OFLAG_COMPRESSED != 0 {
            if self.has_data_file {
                return Err(Error::malformed(
                    at,
                    "compressed cluster in an image with an external data file",
                ));
            }
            return Ok(RunKind::Encoded(entry));
        }
        let host = entry & raw::L2E_OFFSET_MASK;
        let allocated = host != 0 || (self.has_data_file && entry & raw::OFLAG_COPIED != 0);
        if !self.extended {
            if entry & raw::OFLAG_ZERO != 0 {
                return Ok(RunKind::Zero);
            }
            if !allocated {
                return Ok(RunKind::Unallocated);
            }
            self.check_host(host, guest, at)?;
            return Ok(RunKind::Data(host));
        }
        let zero = bitmap & (1u64 << (32 + sc)) != 0;
        if allocated {
            if (bitmap >> 32) & bitmap != 0 {
                return Err(Error::malformed(
                    at,
                    format!("extended L2 bitmap {bitmap:#018x} marks a subcluster both allocated and zero"),
                ));
            }
            self.check_host(host, guest, at)?;
            if zero {
                Ok(RunKind::Zero)
            } else if bitmap & (1u64 << sc) != 0 {
                Ok(RunKind::Data(host + (sc << self.sub_bits)))
            } else {
                Ok(RunKind::Unallocated)
            }
        } else if bitmap & raw::L2_BITMAP_ALL_ALLOC != 0 {
            Err(Error::malformed(
                at,
                format!("extended L2 bitmap {bitmap:#018x} allocates subclusters of an unallocated cluster"),
            ))
        } else if zero {
            Ok(RunKind::Zero)
        } else {
            Ok(RunKind::Unallocated)
        }
    }

    fn check_host(&self, host: u64, guest: u64, at: u64) -> Result<()> {
        if host & (self.cluster_size - 1) != 0 {
            return Err(Error::malformed(
                at,
                format!("data cluster offset {host:#x} is not cluster aligned"),
            ));
        }
        // In an external data file, host offset == guest offset (QEMU checks the same).
        if self.has_data_file && host != guest {
            return Err(Error::malformed(
                at,
                format!(
                    "external data file cluster {host:#x} does not match guest cluster {guest:#x}"
                ),
            ));
        }
        Ok(())
    }

    /// The run at L1-space offset `off`, at most `max` bytes long (> 0).
    pub fn run_at(&self, l1: &[u64], off: u64, max: u64) -> Result<(RunKind, u64)> {
        let l1_index = off >> self.l1_shift;
        let span_end = (l1_index + 1) << self.l1_shift;
        let to_span_end = span_end.wrapping_sub(off).min(max);
        let l1e = match usize::try_from(l1_index).ok().and_then(|i| l1.get(i)) {
            None => return Ok((RunKind::Unallocated, max)),
            Some(&e) => e,
        };
        let l2_offset = l1e & raw::L1E_OFFSET_MASK;
        if l2_offset == 0 {
            return Ok((RunKind::Unallocated, to_span_end));
        }
        let table = self.l2_table(l2_offset)?;
        let words = if self.extended { 2 } else { 1 };
        let unit = 1u64 << self.sub_bits;
        let mut pos = off;
        let mut first: Option<RunKind> = None;
        let mut total = 0u64;
        while total < to_span_end {
            let idx = ((pos >> self.cluster_bits) & self.l2_mask) as usize * words;
            let entry = table.get(idx).copied().unwrap_or(0);
            let bitmap = if self.extended {
                table.get(idx + 1).copied().unwrap_or(0)
            } else {
                0
            };
            let sc = if self.extended {
                (pos >> self.sub_bits) & (raw::SUBCLUSTERS - 1)
            } else {
                0
            };
            let guest = pos & !(self.cluster_size - 1);
            let run = self.classify(entry, bitmap, sc, guest, l2_offset + (idx as u64) * 8)?;
            // Bytes from `pos` to the end of this unit (a compressed cluster is one unit).
            let unit_len = if matches!(run, RunKind::Encoded(_)) {
                self.cluster_size - (pos & (self.cluster_size - 1))
            } else {
                unit - (pos & (unit - 1))
            };
            match first {
                None => {
                    let r = match run {
                        RunKind::Data(h) => RunKind::Data(h + (pos & (unit - 1))),
                        r => r,
                    };
                    first = Some(r);
                    if matches!(r, RunKind::Encoded(_)) {
                        total = unit_len;
                        break;
                    }
                }
                Some(f) => {
                    let continues = match (f, run) {
                        (RunKind::Data(h0), RunKind::Data(h)) => h0.checked_add(total) == Some(h),
                        (RunKind::Zero, RunKind::Zero)
                        | (RunKind::Unallocated, RunKind::Unallocated) => true,
                        _ => false,
                    };
                    if !continues {
                        break;
                    }
                }
            }
            total += unit_len;
            pos += unit_len;
        }
        Ok((
            first.unwrap_or(RunKind::Unallocated),
            total.min(to_span_end),
        ))
    }

    /// The run at L1-space offset `off`, 1 to `max` bytes long, as `RunMap` reads it:
    /// the data clusters of an encrypted image are encoded runs (which fail to read).
    #[inline]
    pub fn run(&self, l1: &[u64], off: u64, max: u64) -> Result<Run> {
        let (kind, len) = self.run_at(l1, off, max)?;
        let kind = match kind {
            RunKind::Data(h) if self.encrypted => RunKind::Encoded(h),
            k => k,
        };
        Ok(Run {
            kind,
            len: len.clamp(1, max),
        })
    }

    /// Where runs read from, for a view whose byte 0 is L1-space offset `base`.
    pub fn sources(&self, base: u64) -> RunSources<'_> {
        let (file, data): (&dyn Layer, _) = match &self.data {
            DataFile::Same => (self.file.as_ref(), DataExtents::Mapped),
            DataFile::External(l) => (l.as_ref(), DataExtents::Unmapped),
            DataFile::Unavailable(l) => (l.as_ref(), DataExtents::Unavailable),
        };
        RunSources {
            file,
            file_len: file.len(),
            backing: self.backing.as_deref(),
            backing_base: base,
            // Encrypted data clusters are encoded runs, listed without a lower offset.
            data,
        }
    }

    /// Fills the encoded runs of a read of a view whose byte 0 is L1-space offset `base`:
    /// parts of decompressed clusters (keys are L2 entries); in an encrypted image every
    /// encoded run fails.
    pub fn read_encoded(&self, base: u64, reads: &mut [EncodedRead<'_>]) -> Result<()> {
        for r in reads {
            if self.encrypted {
                return Err(encrypted_error(r.key));
            }
            let c = self.cluster(r.key)?;
            let start = (base.wrapping_add(r.pos) & (self.cluster_size - 1)) as usize;
            let src = start
                .checked_add(r.buf.len())
                .and_then(|end| c.get(start..end))
                .ok_or_else(|| Error::new(ErrorKind::Malformed, "compressed cluster bounds"))?;
            r.buf.copy_from_slice(src);
        }
        Ok(())
    }

    /// The decompressed cluster for a compressed L2 entry.
    fn cluster(&self, entry: u64) -> Result<Arc<[u8]>> {
        if let Some(c) = self.zcache.get(entry) {
            return Ok(c);
        }
        if self.encrypted {
            return Err(encrypted_error(entry));
        }
        let c = Compressed::from_entry(entry, self.cluster_bits);
        if c.offset >= self.file.len() {
            return Err(Error::truncated(
                c.offset,
                format!(
                    "compressed cluster at {:#x} starts past the end of the file",
                    c.offset
                ),
            ));
        }
        // The sector count may run past the end of the file: QEMU reads zeros there.
        let mut input = vec![0u8; c.len as usize];
        let avail = (self.file.len() - c.offset).min(c.len) as usize;
        if let Some(head) = input.get_mut(..avail) {
            self.file
                .read_at(c.offset, head)
                .map_err(|e| e.during("reading a compressed cluster"))?;
        }
        let mut out = vec![0u8; self.cluster_size as usize];
        decompress(self.header.compression_type, &input, &mut out, c.offset)?;
        let out: Arc<[u8]> = Arc::from(out);
        self.zcache.insert(entry, out.clone());
        Ok(out)
    }
}

fn encrypted_error(at: u64) -> Error {
    Error::unsupported(
        "the image is encrypted (crypt_method set); reading encrypted clusters is not supported",
    )
    .at(at)
}

/// Loads and validates an L1 table from `file`.
pub fn load_l1(
    file: &dyn Layer,
    h: &Header,
    offset: u64,
    entries: u32,
    what: &'static str,
) -> Result<Arc<[u64]>> {
    let bytes = u64::from(entries) * 8;
    if bytes > MAX_L1_BYTES {
        return Err(Error::limit(what, bytes, MAX_L1_BYTES).at(offset));
    }
    if entries == 0 {
        return Ok(Arc::from(Vec::new()));
    }
    if offset & (h.cluster_size() - 1) != 0 {
        return Err(Error::malformed(
            offset,
            format!("{what} offset {offset:#x} is not cluster aligned"),
        ));
    }
    if offset == 0 {
        return Err(Error::malformed(
            offset,
            format!("{what} at offset 0 overlaps the header (cluster 0 used as metadata)"),
        ));
    }
    if offset.checked_add(bytes).is_none_or(|e| e > file.len()) {
        return Err(Error::truncated(
            offset,
            format!(
                "{what} ({bytes} bytes at {offset:#x}) lies past the end of the file ({} bytes)",
                file.len()
            ),
        ));
    }
    // Read in pieces straight into the entries: the table is held once, not its bytes
    // and its entries side by side (32 MiB for the 16 MiB L1 of a 1 PiB image). A mapped
    // range collects into the `Arc` with one allocation.
    let per = (L1_READ_PIECE / 8) as usize;
    let mut piece = vec![0u8; L1_READ_PIECE.min(bytes) as usize];
    let mut failed = None;
    let l1: Arc<[u64]> = (0..entries as usize)
        .map(|i| {
            let k = i % per;
            if k == 0 && failed.is_none() {
                let at = offset + i as u64 * 8;
                let n = (offset + bytes - at).min(L1_READ_PIECE) as usize;
                if let Err(e) = file.read_at(at, piece.get_mut(..n).unwrap_or_default()) {
                    failed = Some(e);
                }
            }
            piece
                .get(k * 8..k * 8 + 8)
                .and_then(|c| <[u8; 8]>::try_from(c).ok())
                .map_or(0, u64::from_be_bytes)
        })
        .collect();
    match failed {
        Some(e) => Err(e),
        None => Ok(l1),
    }
}

/// Bytes of an L1 table read at a time.
const L1_READ_PIECE: u64 = 1024 * 1024;

//! The grain engine shared by every sparse extent (KDMV, streamOptimized, COWD, seSparse):
//! a grain directory, grain tables read on demand into a bounded cache, and grains that are
//! plain, zero, unallocated or zlib-compressed (inflated with bounded output, cached).

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use flate2::{Decompress, FlushDecompress, Status};
use serde_json::json;
use vmsnap_core::limits::MAX_VIRTUAL_SIZE;
use vmsnap_core::{
    Bytes, DataExtents, EncodedRead, Error, Layer, LayerExt, Result, Run, RunKind, RunMap,
    RunSources,
};

use crate::cache::Fifo;
use crate::header::{CowdHeader, SeSparseHeader, SparseHeader};
use crate::raw::*;

/// Which entry encoding a sparse extent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flavor {
    /// Hosted sparse (`KDMV`), optionally compressed (streamOptimized).
    Kdmv {
        /// GTE 1 is a zero grain.
        zero_grain: bool,
        /// Grains are zlib streams.
        compressed: bool,
        /// Compressed grains start with a `lba | size` marker.
        markers: bool,
    },
    /// VMDK3 `COWD` (vmfsSparse).
    Cowd,
    /// seSparse: u64 entries with type nibbles.
    SeSparse {
        /// Byte offset of the grain tables.
        gt_base: u64,
        /// Byte offset of the grains.
        grains_base: u64,
    },
}

/// Where one grain lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Loc {
    /// Not allocated here (parent or zeros).
    Unallocated,
    /// Reads as zeros.
    Zero,
    /// Plain bytes at this file offset.
    Plain(u64),
    /// A compressed grain (marker or stream) at this file offset.
    Compressed(u64),
}

/// The grain table a walk over grains is in (see [`SparseExtent::run`]).
#[derive(Debug, Default)]
pub struct GrainCursor {
    /// A walk over the extents: tables it reads are not put in the cache (the cursor
    /// holds the one in use), so that mapping a disk of many extent files does not fill
    /// every extent's cache.
    walk: bool,
    gd_index: Option<u64>,
    table: Option<(Arc<[u64]>, u64)>,
}

/// A sparse extent file opened for reading.
#[derive(Debug)]
pub struct SparseExtent {
    file: Arc<dyn Layer>,
    flavor: Flavor,
    capacity: u64,
    grain: u64,
    gt_entries: u64,
    entry_size: u64,
    gd: Vec<u64>,
    gt_cache: Mutex<Fifo<[u64]>>,
    grain_cache: Mutex<Fifo<[u8]>>,
    threads: usize,
    info: serde_json::Value,
}

fn sectors_to_bytes(s: u64, what: &str) -> Result<u64> {
    s.checked_mul(SECTOR)
        .filter(|&b| b <= MAX_VIRTUAL_SIZE)
        .ok_or_else(|| Error::limit(what, s, MAX_VIRTUAL_SIZE / SECTOR))
}

impl SparseExtent {
    // The geometry fields differ per flavor; one constructor keeps the checks in one place.
    #[allow(clippy::too_many_arguments)]
    fn build(
        file: Arc<dyn Layer>,
        flavor: Flavor,
        capacity_sectors: u64,
        grain_sectors: u64,
        gt_entries: u64,
        gd_offset: u64,
        gd_entries: u64,
        entry_size: u64,
        info: serde_json::Value,
    ) -> Result<Self> {
        if grain_sectors == 0 || gt_entries == 0 {
            return Err(Error::malformed(
                0,
                "grain size × grain-table entries is 0 (L1 entry size is invalid)",
            ));
        }
        if grain_sectors > MAX_GRAIN_SECTORS {
            return Err(Error::limit(
                "VMDK grain size (sectors)",
                grain_sectors,
                MAX_GRAIN_SECTORS,
            ));
        }
        if gd_entries > MAX_GD_ENTRIES {
            return Err(Error::limit(
                "VMDK grain directory entries",
                gd_entries,
                MAX_GD_ENTRIES,
            ));
        }
        let capacity = sectors_to_bytes(capacity_sectors, "VMDK extent capacity (sectors)")?;
        let grain = grain_sectors * SECTOR;
        let gd_bytes = gd_entries * entry_size;
        if gd_offset
            .checked_add(gd_bytes)
            .is_none_or(|e| e > file.len())
        {
            return Err(Error::truncated(
                gd_offset,
                format!("grain directory of {gd_bytes} bytes runs past the end of the file"),
            )
            .during("reading the grain directory"));
        }
        // Read in pieces straight into the entries: the directory is held once, not its
        // bytes and its entries side by side (62 MiB for a 62 TiB seSparse extent).
        let mut gd = Vec::with_capacity(gd_entries as usize);
        let mut at = gd_offset;
        let end = gd_offset + gd_bytes;
        while at < end {
            let n = (end - at).min(GD_READ_PIECE);
            let raw = file
                .read_vec(at, n, GD_READ_PIECE, "VMDK grain directory")
                .map_err(|e| e.during("reading the grain directory"))?;
            let b = Bytes::new(&raw, at);
            for i in 0..(raw.len() / entry_size as usize) {
                gd.push(if entry_size == 8 {
                    b.u64_le(i * 8)?
                } else {
                    u64::from(b.u32_le(i * 4)?)
                });
            }
            at += n;
        }
        let threads = vmsnap_core::parallelism().min(4);
        Ok(SparseExtent {
            file,
            flavor,
            capacity,
            grain,
            gt_entries,
            entry_size,
            gd,
            gt_cache: Mutex::new(Fifo::new(GT_CACHE_TABLES, GT_CACHE_BYTES)),
            grain_cache: Mutex::new(Fifo::new(usize::MAX, GRAIN_CACHE_BYTES)),
            threads,
            info,
        })
    }

    /// Opens a KDMV extent whose header (already replaced by the footer when GD_AT_END) is
    /// `h`.
    pub fn kdmv(file: Arc<dyn Layer>, h: &SparseHeader) -> Result<Self> {
        if h.version > MAX_VERSION {
            return Err(Error::unsupported(format!(
                "VMDK sparse header version {} (at most {MAX_VERSION})",
                h.version
            ))
            .at(4));
        }
        let gtes = u64::from(h.gtes_per_gt);
        if gtes > MAX_GTES_PER_GT {
            return Err(Error::limit("VMDK numGTEsPerGT", gtes, MAX_GTES_PER_GT).at(44));
        }
        let span = gtes
            .checked_mul(h.grain)
            .filter(|&s| s > 0)
            .ok_or_else(|| Error::malformed(20, "grain size × numGTEsPerGT is 0 or overflows"))?;
        let gd_entries = h.capacity.div_ceil(span);
        let overhead = h.overhead.checked_mul(SECTOR);
        if overhead.is_none_or(|o| o > file.len()) {
            return Err(Error::malformed(
                64,
                format!(
                    "grain offset {} sectors lies past the end of the file",
                    h.overhead
                ),
            ));
        }
        if h.gd_offset == GD_AT_END {
            return Err(Error::malformed(
                56,
                "grain directory offset is GD_AT_END in the footer",
            ));
        }
        let gd_off = h
            .gd_offset
            .checked_mul(SECTOR)
            .ok_or_else(|| Error::malformed(56, "grain directory offset overflows"))?;
        let compressed = h.compressed();
        if compressed && h.grain.saturating_mul(SECTOR) > MAX_COMPRESSED_GRAIN_BYTES {
            return Err(Error::limit(
                "VMDK compressed grain size (bytes)",
                h.grain.saturating_mul(SECTOR),
                MAX_COMPRESSED_GRAIN_BYTES,
            )
            .at(20));
        }
        let flavor = Flavor::Kdmv {
            zero_grain: h.flags & FLAG_ZERO_GRAIN != 0,
            compressed,
            markers: h.flags & FLAG_MARKERS != 0,
        };
        Self::build(
            file,
            flavor,
            h.capacity,
            h.grain,
            gtes,
            gd_off,
            gd_entries,
            4,
            h.to_json(),
        )
    }

    /// Opens a VMDK3 `COWD` extent.
    pub fn cowd(file: Arc<dyn Layer>) -> Result<Self> {
        let head = file.read_array::<64>(0)?;
        let h = CowdHeader::parse(&head, 0)?;
        let info = json!({
            "version": h.version, "flags": h.flags, "disk_sectors": h.disk_sectors,
            "granularity": h.granularity, "l1dir_offset": h.l1dir_offset,
            "l1dir_size": h.l1dir_size, "file_sectors": h.file_sectors,
        });
        Self::build(
            file,
            Flavor::Cowd,
            u64::from(h.disk_sectors),
            u64::from(h.granularity),
            COWD_GT_ENTRIES,
            u64::from(h.l1dir_offset) * SECTOR,
            u64::from(h.l1dir_size),
            4,
            info,
        )
    }

    /// Opens a seSparse extent.
    pub fn sesparse(file: Arc<dyn Layer>) -> Result<Self> {
        let head = file.read_array::<512>(0)?;
        let h = SeSparseHeader::parse(&head, 0)?;
        if h.version != SESPARSE_VERSION {
            return Err(Error::unsupported(format!("seSparse version {:#x}", h.version)).at(8));
        }
        if h.grain_size != SESPARSE_GRAIN_SECTORS || h.grain_table_size != SESPARSE_GT_SECTORS {
            return Err(Error::unsupported(format!(
                "seSparse grain size {} / grain-table size {} sectors (only 8 / 64)",
                h.grain_size, h.grain_table_size
            ))
            .at(24));
        }
        if h.flags != 0 || !h.reserved_zero || !h.pad_zero {
            return Err(Error::unsupported(
                "seSparse flags, reserved fields or padding are not zero",
            )
            .at(40));
        }
        let vol_off = h
            .volatile
            .0
            .checked_mul(SECTOR)
            .ok_or_else(|| Error::malformed(80, "volatile header offset overflows"))?;
        let vol = file.read_array::<512>(vol_off)?;
        let vb = Bytes::new(&vol, vol_off);
        if vb.u64_le(0)? != SESPARSE_VOLATILE_MAGIC {
            return Err(Error::malformed(
                vol_off,
                "bad seSparse volatile header magic",
            ));
        }
        if vb.slice(32, 480)?.iter().any(|&b| b != 0) {
            return Err(
                Error::unsupported("seSparse volatile header padding is not zero").at(vol_off + 32),
            );
        }
        if vb.u64_le(24)? != 0 {
            return Err(
                Error::unsupported("seSparse journal needs replay (dirty image)").at(vol_off + 24),
            );
        }
        let gd_entries = h
            .grain_dir
            .1
            .checked_mul(SECTOR / 8)
            .ok_or_else(|| Error::malformed(136, "grain directory size overflows"))?;
        let bytes = |s: u64, at: u64| {
            s.checked_mul(SECTOR)
                .ok_or_else(|| Error::malformed(at, "seSparse offset overflows"))
        };
        let flavor = Flavor::SeSparse {
            gt_base: bytes(h.grain_tables.0, 144)?,
            grains_base: bytes(h.grains.0, 192)?,
        };
        let info = json!({
            "version": h.version, "capacity_sectors": h.capacity,
            "grain_sectors": h.grain_size, "grain_table_sectors": h.grain_table_size,
            "grain_dir": [h.grain_dir.0, h.grain_dir.1],
            "grain_tables": [h.grain_tables.0, h.grain_tables.1],
            "grains": [h.grains.0, h.grains.1],
            "padding_zero": h.pad_zero,
        });
        Self::build(
            file,
            flavor,
            h.capacity,
            h.grain_size,
            h.grain_table_size * SECTOR / 8,
            bytes(h.grain_dir.0, 128)?,
            gd_entries,
            8,
            info,
        )
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Grain size in bytes.
    pub fn grain(&self) -> u64 {
        self.grain
    }

    /// The file the extent reads from.
    pub fn file(&self) -> &Arc<dyn Layer> {
        &self.file
    }

    /// The entry encoding.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Header fields and geometry, as JSON.
    pub fn describe(&self) -> serde_json::Value {
        let kind = match self.flavor {
            Flavor::Kdmv {
                compressed: true, ..
            } => "kdmv-compressed",
            Flavor::Kdmv { .. } => "kdmv",
            Flavor::Cowd => "cowd",
            Flavor::SeSparse { .. } => "sesparse",
        };
        json!({
            "kind": kind,
            "capacity": self.capacity,
            "grain_size": self.grain,
            "gt_entries": self.gt_entries,
            "gd_entries": self.gd.len(),
            "header": self.info,
        })
    }

    fn gt_offset(&self, gd_index: u64) -> Result<Option<u64>> {
        let Some(&e) = usize::try_from(gd_index).ok().and_then(|i| self.gd.get(i)) else {
            return Ok(None);
        };
        if e == 0 {
            return Ok(None);
        }
        match self.flavor {
            Flavor::SeSparse { gt_base, .. } => {
                if e & 0xFFFF_FFFF_0000_0000 != 0x1000_0000_0000_0000 {
                    return Err(Error::malformed(
                        0,
                        format!("seSparse grain directory entry {gd_index} is {e:#x}"),
                    ));
                }
                (e & 0xFFFF_FFFF)
                    .checked_mul(self.gt_entries * 8)
                    .and_then(|o| o.checked_add(gt_base))
                    .map(Some)
                    .ok_or_else(|| Error::malformed(0, "seSparse grain table offset overflows"))
            }
            _ => Ok(Some(e * SECTOR)),
        }
    }

    fn gt(&self, gd_index: u64, off: u64, keep: bool) -> Result<Arc<[u64]>> {
        if let Some(t) = self.gt_cache.lock().ok().and_then(|c| c.get(gd_index)) {
            return Ok(t);
        }
        let n = self.gt_entries * self.entry_size;
        let raw = self
            .file
            .read_vec(
                off,
                n,
                MAX_GTES_PER_GT.max(COWD_GT_ENTRIES) * 8,
                "VMDK grain table",
            )
            .map_err(|e| e.during("reading a grain table"))?;
        let t: Arc<[u64]> = if self.entry_size == 8 {
            raw.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect()
        } else {
            raw.chunks_exact(4)
                .map(|c| u64::from(u32::from_le_bytes(c.try_into().unwrap_or_default())))
                .collect()
        };
        if keep {
            if let Ok(mut c) = self.gt_cache.lock() {
                c.insert(gd_index, t.clone(), t.len() as u64 * 8);
            }
        }
        Ok(t)
    }

    /// The grain table covering grain directory entry `gd_index` with its file offset, kept
    /// in `cur` so that a walk over one table reads and looks it up once; `None` when the
    /// whole table is unallocated.
    fn table<'c>(
        &self,
        gd_index: u64,
        cur: &'c mut GrainCursor,
    ) -> Result<Option<(&'c [u64], u64)>> {
        if cur.gd_index != Some(gd_index) {
            cur.table = match self.gt_offset(gd_index)? {
                Some(off) => Some((self.gt(gd_index, off, !cur.walk)?, off)),
                None => None,
            };
            cur.gd_index = Some(gd_index);
        }
        Ok(cur.table.as_ref().map(|(t, off)| (&t[..], *off)))
    }

    /// Where grain `index` lives.
    pub fn locate(&self, index: u64) -> Result<Loc> {
        self.locate_in(index, &mut GrainCursor::default())
    }

    fn locate_in(&self, index: u64, cur: &mut GrainCursor) -> Result<Loc> {
        let Some((t, gt_off)) = self.table(index / self.gt_entries, cur)? else {
            return Ok(Loc::Unallocated);
        };
        let e = usize::try_from(index % self.gt_entries)
            .ok()
            .and_then(|i| t.get(i).copied())
            .unwrap_or(0);
        self.decode(e, index, gt_off)
    }

    /// What grain-table entry `e` of grain `index` (in the table at `gt_off`) means.
    #[inline]
    fn decode(&self, e: u64, index: u64, gt_off: u64) -> Result<Loc> {
        Ok(match self.flavor {
            Flavor::Kdmv {
                zero_grain,
                compressed,
                ..
            } => match e {
                0 => Loc::Unallocated,
                1 if zero_grain => Loc::Zero,
                _ if compressed => Loc::Compressed(e * SECTOR),
                _ => Loc::Plain(e * SECTOR),
            },
            Flavor::Cowd => match e {
                0 => Loc::Unallocated,
                _ => Loc::Plain(e * SECTOR),
            },
            Flavor::SeSparse { grains_base, .. } => match e >> 60 {
                0 if e == 0 => Loc::Unallocated,
                1 | 2 => Loc::Zero,
                3 => {
                    let cluster =
                        ((e & 0x0FFF_0000_0000_0000) >> 48) | ((e & 0x0000_FFFF_FFFF_FFFF) << 12);
                    let off = cluster
                        .checked_mul(self.grain)
                        .and_then(|o| o.checked_add(grains_base))
                        .ok_or_else(|| {
                            Error::malformed(gt_off, "seSparse grain offset overflows")
                        })?;
                    Loc::Plain(off)
                }
                _ => {
                    return Err(Error::malformed(
                        gt_off,
                        format!("seSparse grain table entry {e:#x} for grain {index}"),
                    ))
                }
            },
        })
    }

    /// The run of grains from extent offset `pos`, at most `max` (≥ 1) bytes long: the
    /// grains from there on while they are stored the same way (and, for plain grains,
    /// follow each other in the file). A compressed grain is a run of its own. Unallocated
    /// grain tables are passed over whole, so a walk costs one step per allocated table and
    /// one per run, never one per grain of virtual space. For plain grains the offset is
    /// that of `pos` itself.
    pub fn run(&self, pos: u64, max: u64, cur: &mut GrainCursor) -> Result<(Loc, u64)> {
        let grain = self.grain;
        let mut index = pos / grain;
        let within = pos % grain;
        let first = self.locate_in(index, cur)?;
        let loc = match first {
            Loc::Plain(o) => Loc::Plain(o.saturating_add(within)),
            other => other,
        };
        let mut len = (grain - within).min(max);
        if matches!(first, Loc::Compressed(_)) {
            return Ok((loc, len));
        }
        while len < max {
            index += 1;
            let gd_index = index / self.gt_entries;
            let slot = index % self.gt_entries;
            let Some((t, gt_off)) = self.table(gd_index, cur)? else {
                if first != Loc::Unallocated {
                    break;
                }
                // A whole unallocated table continues an unallocated run.
                let span = (self.gt_entries - slot).saturating_mul(grain);
                len = len.saturating_add(span).min(max);
                index += self.gt_entries - slot - 1;
                continue;
            };
            let Some(rest) = usize::try_from(slot).ok().and_then(|s| t.get(s..)) else {
                break;
            };
            let mut stepped = 0u64;
            let mut stop = false;
            if first == Loc::Unallocated {
                // Entry 0 is unallocated in every flavor: count the zeros at once.
                let zeros = leading_zeros(rest);
                stepped = zeros as u64;
                len = len.saturating_add(stepped.saturating_mul(grain)).min(max);
                if zeros < rest.len() || len >= max {
                    break;
                }
                index += stepped.saturating_sub(1);
                continue;
            }
            for &e in rest {
                let next = self.decode(e, index + stepped, gt_off)?;
                let follows = match (first, next) {
                    (Loc::Plain(a), Loc::Plain(b)) => {
                        // `len` counts from `pos`; grain `index + stepped` starts
                        // `len + within` bytes after grain `first`.
                        len.checked_add(within)
                            .and_then(|d| a.checked_add(d))
                            .is_some_and(|x| x == b)
                    }
                    (a, b) => a == b,
                };
                if !follows {
                    stop = true;
                    break;
                }
                stepped += 1;
                len = len.saturating_add(grain).min(max);
                if len >= max {
                    break;
                }
            }
            if stop || len >= max {
                break;
            }
            index += stepped.saturating_sub(1);
        }
        Ok((loc, len))
    }

    /// Inflates the compressed grain at `off` into `dst` (exactly one grain).
    fn inflate(&self, off: u64, dst: &mut [u8]) -> Result<()> {
        let markers = matches!(self.flavor, Flavor::Kdmv { markers: true, .. });
        let max = self.grain * 2;
        let flen = self.file.len();
        let (data_off, size) = if markers {
            let m = self.file.read_array::<12>(off)?;
            let size = u64::from(u32::from_le_bytes([m[8], m[9], m[10], m[11]]));
            if size == 0 || size > max {
                return Err(Error::malformed(
                    off,
                    format!(
                        "compressed grain size {size} is 0 or above 2 × grain ({max}) (CVE-2026-2243)"
                    ),
                ));
            }
            (off.saturating_add(12), size)
        } else {
            (off, max.min(flen.saturating_sub(off)))
        };
        if data_off.checked_add(size).is_none_or(|e| e > flen) {
            return Err(Error::truncated(
                off,
                format!("compressed grain of {size} bytes runs past the end of the file"),
            ));
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let (buf, dec) = &mut *s;
            buf.resize(size as usize, 0);
            self.file.read_at(data_off, buf)?;
            dec.reset(true);
            let st = dec.decompress(buf, dst, FlushDecompress::Finish);
            match st {
                Ok(Status::StreamEnd) if dec.total_out() == dst.len() as u64 => Ok(()),
                Ok(Status::StreamEnd) => Err(Error::malformed(
                    off,
                    format!(
                        "compressed grain inflates to {} bytes, not one grain",
                        dec.total_out()
                    ),
                )),
                Ok(_) => Err(Error::malformed(
                    off,
                    "compressed grain does not end within one grain of output",
                )),
                Err(e) => Err(Error::malformed(
                    off,
                    format!("bad zlib stream in grain: {e}"),
                )),
            }
        })
    }

    fn cached_grain(&self, off: u64) -> Result<Arc<[u8]>> {
        if let Some(g) = self.grain_cache.lock().ok().and_then(|c| c.get(off)) {
            return Ok(g);
        }
        let mut v = vec![0u8; self.grain as usize];
        self.inflate(off, &mut v)?;
        let g: Arc<[u8]> = Arc::from(v);
        if let Ok(mut c) = self.grain_cache.lock() {
            c.insert(off, g.clone(), self.grain);
        }
        Ok(g)
    }

    /// Fills the compressed grains of one read (keys are the grains' file offsets): from
    /// the cache; grains the read covers whole are inflated straight into it, on several
    /// threads when there are enough of them, and parts of grains through the cache.
    pub fn read_grains(&self, reads: &mut [EncodedRead<'_>]) -> Result<()> {
        let mut jobs: Vec<(&mut [u8], u64)> = Vec::new();
        for r in reads.iter_mut() {
            let within = r.pos % self.grain;
            let hit = self.grain_cache.lock().ok().and_then(|c| c.get(r.key));
            match hit {
                Some(g) => copy_from(r.buf, &g, within)?,
                None if within == 0 && r.buf.len() as u64 == self.grain => {
                    jobs.push((&mut *r.buf, r.key))
                }
                None => copy_from(r.buf, &self.cached_grain(r.key)?, within)?,
            }
        }
        let run = |part: &mut [(&mut [u8], u64)]| -> Result<()> {
            for (dst, off) in part.iter_mut() {
                self.inflate(*off, dst)?;
            }
            Ok(())
        };
        if self.threads < 2 || jobs.len() < 4 {
            return run(&mut jobs);
        }
        let per = jobs.len().div_ceil(self.threads);
        std::thread::scope(|s| {
            let mut parts = jobs.chunks_mut(per);
            let first = parts.next();
            let handles: Vec<_> = parts.map(|p| s.spawn(move || run(p))).collect();
            let mut r = first.map_or(Ok(()), run);
            for h in handles {
                let hr = h
                    .join()
                    .unwrap_or_else(|_| Err(Error::malformed(0, "grain inflate thread failed")));
                if r.is_ok() {
                    r = hr;
                }
            }
            r
        })
    }
}

/// A sparse extent as one piece of a disk, read and listed through [`RunMap`]: its grains
/// are runs of its file, and its unallocated grains are the parent disk's bytes from the
/// piece's start on (zeros without a parent).
#[derive(Debug, Clone, Copy)]
pub struct SparsePiece<'a> {
    /// The extent.
    pub extent: &'a SparseExtent,
    /// The parent disk (or the stand-in for one that was not opened).
    pub parent: Option<&'a dyn Layer>,
    /// Where the piece starts in the disk.
    pub start: u64,
}

impl RunMap for SparsePiece<'_> {
    type Cursor = GrainCursor;

    #[inline]
    fn run(&self, pos: u64, max: u64, cur: &mut GrainCursor) -> Result<Run> {
        let (loc, len) = self.extent.run(pos, max, cur)?;
        let kind = match loc {
            Loc::Unallocated => RunKind::Unallocated,
            Loc::Zero => RunKind::Zero,
            Loc::Plain(o) => RunKind::Data(o),
            Loc::Compressed(o) => RunKind::Encoded(o),
        };
        Ok(Run { kind, len })
    }

    fn sources(&self) -> RunSources<'_> {
        let file = self.extent.file.as_ref();
        RunSources {
            file,
            file_len: file.len(),
            backing: self.parent,
            backing_base: self.start,
            data: DataExtents::Mapped,
        }
    }

    /// A listing does not put the grain tables it reads in the cache (see
    /// [`GrainCursor`]).
    fn listing_cursor(&self) -> GrainCursor {
        GrainCursor {
            walk: true,
            ..GrainCursor::default()
        }
    }

    fn read_encoded(&self, reads: &mut [EncodedRead<'_>]) -> Result<()> {
        self.extent.read_grains(reads)
    }
}

thread_local! {
    static SCRATCH: RefCell<(Vec<u8>, Decompress)> = RefCell::new((Vec::new(), Decompress::new(true)));
}

/// How many entries at the start of `t` are 0, a block at a time.
fn leading_zeros(t: &[u64]) -> usize {
    let mut n = 0;
    let mut blocks = t.chunks_exact(16);
    for b in &mut blocks {
        if b.iter().fold(0, |a, &e| a | e) != 0 {
            break;
        }
        n += 16;
    }
    n + t
        .get(n..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&e| e == 0)
        .count()
}

fn copy_from(dst: &mut [u8], src: &[u8], at: u64) -> Result<()> {
    let s = usize::try_from(at)
        .ok()
        .and_then(|a| src.get(a..a.checked_add(dst.len())?))
        .ok_or_else(|| Error::malformed(at, "read outside a decompressed grain"))?;
    dst.copy_from_slice(s);
    Ok(())
}

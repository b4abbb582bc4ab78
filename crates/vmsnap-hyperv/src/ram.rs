//! Guest RAM of a saved state: `RamMemoryBlock<d>` metadata (GPA ranges) and
//! `RamBlock<n>` 1 MiB data blocks (raw, or the compressed page-record stream) become a
//! guest-physical segment map. Older key names (VmVersion <= 0x500:
//! `RamMemoryBlock/<d>`, `RamBlock/<n>`, `/savedVM/partition_state`) are handled too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use vmsnap_core::{
    Bytes, Decoder, Error, ErrorKind, Finding, Layer, Overlap, Result, Segment, SegmentMap,
    SegmentMapBuilder,
};

use crate::cache::BlockCache;
use crate::container::Container;
use crate::keys::Key;
use crate::limits::{
    MAX_GUEST_BYTES, RAM_CACHE_BLOCKS, RAM_INDEX_BLOCKS, RAM_READ_AHEAD_BLOCKS, RAM_READ_STREAMS,
};
use crate::pages::{decode_block, decode_range, PageIndex, BLOCK, PAGE};
use crate::value::{ArrayData, Value};

/// Pages per data block.
const PAGES_PER_BLOCK: u64 = (BLOCK / PAGE) as u64;
/// Bytes of a modern `MemoryBlockSaveStruct`.
pub const MEMORY_BLOCK_LEN: usize = 48;
/// Fewest metadata bytes accepted from the older layouts (up to `GpaIndexStart`).
pub const MEMORY_BLOCK_MIN_LEN: usize = 32;

/// One `RamMemoryBlock` (a contiguous GPA range).
#[derive(Debug, Clone, Serialize)]
pub struct MemoryBlock {
    /// Its number.
    pub index: u32,
    /// `SavedStateVersion`.
    pub version: u32,
    /// Flags (IsHotAdded, IsSgx, IsVtl2Mb, IsSpecificPurpose).
    pub flags: u32,
    /// Pages in the range.
    pub pages: u64,
    /// First data page (index into the RamBlock sequence, 256 pages per block).
    pub mbp_index_start: u64,
    /// First guest-physical page.
    pub gpa_index_start: u64,
    /// NUMA node, when recorded.
    pub virtual_node: Option<u32>,
    /// KSR block id, when recorded.
    pub ksr_block_id: Option<u64>,
}

/// Where a data block's bytes are.
#[derive(Debug, Clone)]
enum Source {
    File { offset: u64, size: u32 },
    Inline(Arc<[u8]>),
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::File { size, .. } => u64::from(*size),
            Source::Inline(b) => b.len() as u64,
        }
    }
}

/// One compressed (or inline) data block, decoded on demand through the cache: whole
/// (and cached) when read whole or read ahead of a sequential reader, else only the
/// records of the pages read, found through the block's cached [`PageIndex`].
///
/// A page read decodes only its own records, so a corrupt XPRESS payload elsewhere in
/// the block does not fail it (the whole-block decode does); a malformed record header
/// anywhere in the block fails both, as the index walk checks every header.
#[derive(Debug)]
pub struct BlockDecoder {
    number: u64,
    source: Source,
    cache: Arc<BlockCache>,
}

impl BlockDecoder {
    /// Calls `f` with input bytes `range` of the block (all when `None`) and their file
    /// offset, read into a recycled buffer (inline data is borrowed).
    fn with_input<T>(
        &self,
        lower: &dyn Layer,
        range: Option<(usize, usize)>,
        f: impl FnOnce(&[u8], u64) -> Result<T>,
    ) -> Result<T> {
        let total = self.source.len();
        let (a, b) = range.unwrap_or((0, usize::try_from(total).unwrap_or(usize::MAX)));
        let origin = match &self.source {
            Source::File { offset, .. } => *offset,
            Source::Inline(_) => 0,
        };
        let bad = || {
            Error::malformed(
                origin,
                format!(
                    "input range {a}..{b} of RamBlock{} out of bounds",
                    self.number
                ),
            )
        };
        if a > b || b as u64 > total {
            return Err(bad());
        }
        match &self.source {
            Source::Inline(bytes) => f(bytes.get(a..b).ok_or_else(bad)?, a as u64),
            Source::File { offset, size } => {
                let at = offset.checked_add(a as u64).ok_or_else(bad)?;
                if offset
                    .checked_add(u64::from(*size))
                    .is_none_or(|e| e > lower.len())
                {
                    return Err(Error::truncated(
                        *offset,
                        format!(
                            "compressed RAM block of {size} bytes ends past the end of the {} layer ({} bytes)",
                            lower.name(),
                            lower.len()
                        ),
                    ));
                }
                let mut buf = self.cache.input();
                if buf.len() < b - a {
                    buf.resize(b - a, 0);
                }
                let r = match buf.get_mut(..b - a) {
                    Some(dst) => lower.read_at(at, dst).and_then(|()| f(dst, at)),
                    None => Err(bad()),
                };
                self.cache.recycle_input(buf);
                r
            }
        }
    }

    fn decoded(&self, lower: &dyn Layer) -> Result<Arc<Vec<u8>>> {
        if let Some(b) = self.cache.get(self.number) {
            return Ok(b);
        }
        let mut out = self.cache.buffer(BLOCK);
        self.with_input(lower, None, |input, base| {
            decode_into(input, &mut out, base)
        })
        .map_err(|e| e.during("decoding a RAM block"))?;
        Ok(self.cache.insert(self.number, out))
    }

    /// Fills `buf` with bytes `offset..` of the block, decoding only the records they
    /// need (the block is not cached).
    fn read_pages(&self, lower: &dyn Layer, offset: usize, buf: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(buf.len())
            .filter(|&e| e <= BLOCK)
            .ok_or_else(|| Error::out_of_bounds(offset as u64, buf.len() as u64, BLOCK as u64))?;
        if self.source.len() == BLOCK as u64 {
            // Stored raw (inline): the bytes are the block's.
            return self.with_input(lower, Some((offset, end)), |input, _| {
                buf.copy_from_slice(input);
                Ok(())
            });
        }
        let mut scratch = self.cache.input();
        let r = match self.cache.index(self.number) {
            Some(index) => {
                let data_end = end.min(index.produced());
                if data_end <= offset {
                    buf.fill(0);
                    Ok(())
                } else {
                    let (a, b, out) = index
                        .input_range(offset, data_end)
                        .ok_or_else(|| Error::malformed(0, "page index out of range"))?;
                    self.with_input(lower, Some((a, b)), |input, base| {
                        decode_range(input, base, out, &index, offset, buf, &mut scratch)
                    })
                }
            }
            None => self.with_input(lower, None, |input, base| {
                // First page read of this block: walk all its headers once, keep the
                // index, and decode from the bytes already read.
                let index = Arc::new(PageIndex::build(input, base)?);
                self.cache.insert_index(self.number, index.clone());
                let data_end = end.min(index.produced());
                if data_end <= offset {
                    buf.fill(0);
                    return Ok(());
                }
                let (a, b, out) = index
                    .input_range(offset, data_end)
                    .ok_or_else(|| Error::malformed(base, "page index out of range"))?;
                let part = input
                    .get(a..b)
                    .ok_or_else(|| Error::malformed(base, "page index out of range"))?;
                decode_range(
                    part,
                    base.saturating_add(a as u64),
                    out,
                    &index,
                    offset,
                    buf,
                    &mut scratch,
                )
            }),
        };
        self.cache.recycle_input(scratch);
        r.map_err(|e| e.during("decoding a RAM block"))
    }
}

fn decode_into(input: &[u8], out: &mut [u8], base: u64) -> Result<()> {
    if input.len() == BLOCK {
        out.copy_from_slice(input);
        return Ok(());
    }
    decode_block(input, out, base).map(|_| ())
}

impl Decoder for BlockDecoder {
    fn decoded_len(&self) -> u64 {
        BLOCK as u64
    }
    fn read(&self, lower: &dyn Layer, offset: u64, buf: &mut [u8]) -> Result<()> {
        let start = usize::try_from(offset)
            .map_err(|_| Error::out_of_bounds(offset, buf.len() as u64, BLOCK as u64))?;
        let whole = self.cache.get(self.number);
        let b = match whole {
            Some(b) => b,
            None if buf.len() >= BLOCK => self.decoded(lower)?,
            None => return self.read_pages(lower, start, buf),
        };
        let src = b
            .get(start..start.saturating_add(buf.len()))
            .ok_or_else(|| Error::out_of_bounds(offset, buf.len() as u64, BLOCK as u64))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Where recent reads ended, to tell sequential readers (each read starting where one
/// of them stopped) from random ones.
#[derive(Debug, Default)]
struct Streams {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    tick: u64,
    /// (end of a recent read, when it was made).
    ends: [(Option<u64>, u64); RAM_READ_STREAMS],
}

impl Streams {
    /// Records a read of `start..end`; whether it starts within a page of where a
    /// recent read ended.
    fn note(&self, start: u64, end: u64) -> bool {
        let Ok(mut g) = self.slots.lock() else {
            return false;
        };
        g.tick = g.tick.wrapping_add(1);
        let t = g.tick;
        let page = PAGE as u64;
        let near = |e: u64| start <= e.saturating_add(page) && start.saturating_add(page) >= e;
        if let Some(s) = g.ends.iter_mut().find(|(e, _)| e.is_some_and(near)) {
            *s = (Some(end), t);
            return true;
        }
        if let Some(s) = g.ends.iter_mut().min_by_key(|(_, age)| *age) {
            *s = (Some(end), t);
        }
        false
    }
}

/// Guest RAM found in a container, ready to read.
#[derive(Debug, Clone)]
pub struct Ram {
    /// Guest-physical map (reads go to the container's replayed image).
    pub map: Arc<SegmentMap>,
    /// The metadata blocks.
    pub blocks: Vec<MemoryBlock>,
    /// Data blocks found, raw and compressed.
    pub data_blocks: (u64, u64),
    /// Compressed blocks by guest range start, for parallel prefetch.
    pub compressed: Arc<Vec<(u64, Arc<BlockDecoder>)>>,
    /// The decoded-block cache.
    pub cache: Arc<BlockCache>,
    /// Saved-state version.
    pub vm_version: Option<i64>,
    /// `/savedstate/type`.
    pub state_type: Option<String>,
    /// Which key names were used (`modern` or `legacy`).
    pub key_layout: &'static str,
    /// Findings.
    pub findings: Vec<Finding>,
    streams: Arc<Streams>,
}

fn array_child(c: &Container, id: u32) -> Option<&Key> {
    let k = c.tree.key(id)?;
    match &k.value {
        Value::Array(_) => Some(k),
        Value::Node { .. } => c
            .tree
            .children_of(Some(id))
            .iter()
            .filter_map(|&x| c.tree.key(x))
            .find(|x| matches!(x.value, Value::Array(_))),
        _ => None,
    }
}

/// The `partition_state` key, modern or legacy.
pub fn partition_state(c: &Container) -> Option<&Key> {
    [
        "/savedstate/savedVM/partition_state",
        "/savedVM/partition_state",
    ]
    .iter()
    .find_map(|p| c.tree.get(p))
    .and_then(|id| array_child(c, id))
}

/// Whether the container has guest-RAM metadata keys.
pub fn has_ram(c: &Container) -> bool {
    !find_keys(c).0.is_empty()
}

/// (metadata keys by index, data keys by number, layout name).
type Found<'a> = (Vec<(u32, &'a Key)>, HashMap<u64, &'a Key>, &'static str);

fn numbered<'a>(c: &'a Container, parent: Option<u32>, prefix: &str) -> Vec<(u64, &'a Key)> {
    let mut out = Vec::new();
    for &id in c.tree.children_of(parent) {
        let Some(k) = c.tree.key(id) else { continue };
        let Some(rest) = k.name.strip_prefix(prefix) else {
            continue;
        };
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let (Ok(n), Some(a)) = (rest.parse::<u64>(), array_child(c, id)) {
            out.push((n, a));
        }
    }
    out
}

fn find_keys(c: &Container) -> Found<'_> {
    let saved = c.tree.get("/savedstate");
    let meta = numbered(c, saved, "RamMemoryBlock");
    if !meta.is_empty() {
        let data = numbered(c, saved, "RamBlock");
        return (contiguous(meta), first_by_number(data), "modern");
    }
    // Older names: a `RamMemoryBlock` node with numbered children, at the root or in
    // /savedstate.
    for base in [None, saved] {
        let Some(node) = c.tree.child(base, "RamMemoryBlock") else {
            continue;
        };
        let meta = numbered(c, Some(node), "");
        if meta.is_empty() {
            continue;
        }
        let data = c
            .tree
            .child(base, "RamBlock")
            .map(|n| numbered(c, Some(n), ""))
            .unwrap_or_default();
        return (contiguous(meta), first_by_number(data), "legacy");
    }
    (Vec::new(), HashMap::new(), "none")
}

/// Metadata blocks numbered 0, 1, … until one is missing (first of repeated names).
fn contiguous(mut v: Vec<(u64, &Key)>) -> Vec<(u32, &Key)> {
    v.sort_by_key(|(n, k)| (*n, k.insertion));
    let mut out = Vec::new();
    for (n, k) in v {
        if n == out.len() as u64 {
            out.push((n as u32, k));
        }
    }
    out
}

fn first_by_number(v: Vec<(u64, &Key)>) -> HashMap<u64, &Key> {
    let mut m = HashMap::with_capacity(v.len());
    for (n, k) in v {
        m.entry(n).or_insert(k);
    }
    m
}

fn parse_block(index: u32, data: &[u8], at: u64) -> Result<MemoryBlock> {
    if data.len() < MEMORY_BLOCK_MIN_LEN {
        return Err(Error::malformed(
            at,
            format!(
                "RamMemoryBlock{index} holds {} bytes, at least {MEMORY_BLOCK_MIN_LEN} needed",
                data.len()
            ),
        ));
    }
    let b = Bytes::new(data, at);
    Ok(MemoryBlock {
        index,
        version: b.u32_le(0)?,
        flags: b.u32_le(4)?,
        pages: b.u64_le(8)?,
        mbp_index_start: b.u64_le(16)?,
        gpa_index_start: b.u64_le(24)?,
        virtual_node: b.u32_le(32).ok(),
        ksr_block_id: b.u64_le(40).ok(),
    })
}

fn data_source(k: &Key) -> Option<Source> {
    match &k.value {
        Value::Array(ArrayData::File(s)) => Some(Source::File {
            offset: s.offset,
            size: s.size,
        }),
        Value::Array(ArrayData::Inline(v)) => Some(Source::Inline(Arc::from(v.as_slice()))),
        _ => None,
    }
}

impl Ram {
    /// Finds and maps the guest RAM of `c`. `NotFound` when it has no RAM keys.
    pub fn open(c: &Container) -> Result<Ram> {
        let (meta, data, layout) = find_keys(c);
        if meta.is_empty() {
            return Err(Error::new(
                ErrorKind::NotFound,
                "no guest RAM keys (/savedstate/RamMemoryBlock0 or the older RamMemoryBlock/0)",
            ));
        }
        let mut findings = Vec::new();
        let vm_version = ["/savedstate/VmVersion", "/configuration/properties/version"]
            .iter()
            .find_map(|p| c.value(p).and_then(Value::as_i128))
            .map(|v| v as i64);
        if let Some(v) = vm_version {
            if v <= 0x100 {
                return Err(Error::unsupported(format!(
                    "saved-state version {v:#x} (<= 1.0) is not supported"
                )));
            }
            if (v <= 0x500) != (layout == "legacy") {
                findings.push(Finding::info(
                    "ram_keys",
                    format!("VmVersion {v:#x} but the {layout} RAM key names are used"),
                ));
            }
        }
        if layout == "legacy" {
            findings.push(Finding::info(
                "ram_keys",
                "older RAM key names (RamMemoryBlock/<d>, RamBlock/<n>); the metadata layout is assumed to be the documented one",
            ));
        }
        let state_type = c
            .value("/savedstate/type")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut blocks = Vec::new();
        for (i, k) in &meta {
            let Value::Array(a) = &k.value else { continue };
            let bytes = c.array_bytes(a, 4096)?;
            blocks.push(parse_block(*i, &bytes, k.file_offset)?);
        }
        let mut size = 0u64;
        for b in &blocks {
            let end = b
                .gpa_index_start
                .checked_add(b.pages)
                .and_then(|p| p.checked_mul(PAGE as u64))
                .filter(|&e| e <= MAX_GUEST_BYTES)
                .ok_or_else(|| {
                    Error::limit(
                        "RAM block guest-physical end",
                        b.gpa_index_start.saturating_add(b.pages),
                        MAX_GUEST_BYTES / PAGE as u64,
                    )
                })?;
            b.mbp_index_start.checked_add(b.pages).ok_or_else(|| {
                Error::malformed(0, format!("RamMemoryBlock{} data pages overflow", b.index))
            })?;
            size = size.max(end);
        }
        let cache = Arc::new(BlockCache::new(RAM_CACHE_BLOCKS, RAM_INDEX_BLOCKS));
        let mut decoders: HashMap<u64, Arc<BlockDecoder>> = HashMap::new();
        let mut compressed: Vec<(u64, Arc<BlockDecoder>)> = Vec::new();
        let max_block = data.keys().copied().max();
        let (mut raw_n, mut comp_n) = (0u64, 0u64);
        let mut missing = 0u64;
        let mut builder = SegmentMapBuilder::new(size, Overlap::Reject);
        for b in &blocks {
            let mut done = 0u64;
            while done < b.pages {
                let dpage = b.mbp_index_start + done;
                let block = dpage / PAGES_PER_BLOCK;
                let in_block = dpage % PAGES_PER_BLOCK;
                let run = (PAGES_PER_BLOCK - in_block).min(b.pages - done);
                let gpa = (b.gpa_index_start + done) * PAGE as u64;
                let len = run * PAGE as u64;
                if max_block.is_none_or(|m| block > m) {
                    missing = missing.saturating_add(b.pages - done);
                    break;
                }
                let src = data
                    .get(&block)
                    .and_then(|k| data_source(k).map(|s| (s, k)));
                match src {
                    None => missing += run,
                    Some((Source::File { offset, size }, _)) if u64::from(size) == BLOCK as u64 => {
                        builder.push(Segment::plain(gpa, len, offset + in_block * PAGE as u64))?;
                    }
                    Some((source, _)) => {
                        let dec = decoders
                            .entry(block)
                            .or_insert_with(|| {
                                Arc::new(BlockDecoder {
                                    number: block,
                                    source: source.clone(),
                                    cache: cache.clone(),
                                })
                            })
                            .clone();
                        if source.len() > BLOCK as u64 {
                            return Err(Error::malformed(
                                0,
                                format!(
                                    "RamBlock{block} holds {} bytes, more than 1 MiB",
                                    source.len()
                                ),
                            ));
                        }
                        compressed.push((gpa, dec.clone()));
                        builder.push(Segment::compressed(gpa, len, dec, in_block * PAGE as u64))?;
                    }
                }
                done += run;
            }
        }
        for k in data.values() {
            if let Some(s) = data_source(k) {
                if s.len() == BLOCK as u64 && matches!(s, Source::File { .. }) {
                    raw_n += 1;
                } else {
                    comp_n += 1;
                }
            }
        }
        if missing > 0 {
            findings.push(Finding::warning(
                "ram_block_missing",
                format!("{missing} guest pages have no RamBlock data and read as zeros"),
            ));
        }
        let map = builder.build()?;
        compressed.sort_by_key(|(g, _)| *g);
        Ok(Ram {
            map: Arc::new(map),
            blocks,
            data_blocks: (raw_n, comp_n),
            compressed: Arc::new(compressed),
            cache,
            vm_version,
            state_type,
            key_layout: layout,
            findings,
            streams: Arc::default(),
        })
    }

    /// Call before reading `len` bytes at `start`. A read that continues a recent one
    /// (a sequential reader: dd, convert) and needs a block not decoded yet decodes that
    /// block and the next ones in parallel (read-ahead); any other read larger than a
    /// block decodes the blocks it spans in parallel ([`Ram::prefetch`]); smaller random
    /// reads decode only their pages, later, in the decoder.
    pub fn before_read(&self, lower: &dyn Layer, start: u64, len: u64) {
        if self.compressed.is_empty() {
            return;
        }
        let end = start.saturating_add(len);
        if self.streams.note(start, end) {
            // One batch per window, sized to keep every thread busy, and small enough
            // (a quarter of the cache) to stay cached until it is read.
            let window = RAM_READ_AHEAD_BLOCKS
                .max(vmsnap_core::parallelism().saturating_mul(2))
                .min(RAM_CACHE_BLOCKS / 4);
            self.decode_ahead(lower, start, end, window.saturating_sub(1), 1);
        } else if len > BLOCK as u64 {
            self.prefetch(lower, start, len);
        }
    }

    /// Decodes, in parallel, the compressed blocks a read of `range` will touch that are
    /// not cached yet (at most half the cache, so they survive until used).
    pub fn prefetch(&self, lower: &dyn Layer, start: u64, len: u64) {
        self.decode_ahead(lower, start, start.saturating_add(len), 0, 2);
    }

    /// Decodes the uncached blocks of `start..end` and of the `ahead` blocks after it,
    /// when the read needs at least one uncached block and there are at least `min`.
    fn decode_ahead(&self, lower: &dyn Layer, start: u64, end: u64, ahead: usize, min: usize) {
        let first = self
            .compressed
            .partition_point(|(g, _)| g.saturating_add(BLOCK as u64) <= start);
        let entries = self.compressed.get(first..).unwrap_or_default();
        let needed = entries
            .iter()
            .take_while(|(g, _)| *g < end)
            .any(|(_, d)| !self.cache.contains(d.number));
        if !needed {
            return;
        }
        let mut todo: Vec<&Arc<BlockDecoder>> = Vec::new();
        let mut past = 0usize;
        let mut last = None;
        for (g, d) in entries {
            if todo.len() >= RAM_CACHE_BLOCKS / 2 {
                break;
            }
            if *g >= end {
                // A block split over two segments counts once.
                if last != Some(d.number) {
                    if past >= ahead {
                        break;
                    }
                    past += 1;
                }
            }
            last = Some(d.number);
            if !self.cache.contains(d.number) && !todo.iter().any(|x| x.number == d.number) {
                todo.push(d);
            }
        }
        if todo.len() >= min {
            decode_parallel(lower, &todo);
        }
    }
}

/// Decodes `todo` into the cache on up to `parallelism()` threads (this one included),
/// each taking the next block when done with one. Scoped: every thread has ended when
/// this returns. Errors are left for the read itself to report.
fn decode_parallel(lower: &dyn Layer, todo: &[&Arc<BlockDecoder>]) {
    let next = AtomicUsize::new(0);
    let work = || {
        while let Some(d) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
            let _ = d.decoded(lower);
        }
    };
    let threads = vmsnap_core::parallelism().min(todo.len());
    if threads < 2 {
        work();
        return;
    }
    let work = &work;
    std::thread::scope(|s| {
        for _ in 1..threads {
            // No thread (resource limits): this one does the rest.
            if std::thread::Builder::new().spawn_scoped(s, work).is_err() {
                break;
            }
        }
        work();
    });
}

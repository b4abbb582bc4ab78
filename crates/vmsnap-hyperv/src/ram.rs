//! Guest RAM of a saved state: `RamMemoryBlock<d>` metadata (GPA ranges) and
//! `RamBlock<n>` 1 MiB data blocks (raw, or the compressed page-record stream) become a
//! guest-physical segment map. Older key names (VmVersion <= 0x500:
//! `RamMemoryBlock/<d>`, `RamBlock/<n>`, `/savedVM/partition_state`) are handled too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use vmsnap_core::{
    Bytes, Error, ErrorKind, Finding, Layer, Overlap, Result, Segment, SegmentMap,
    SegmentMapBuilder,
};

use crate::cache::BlockCache;
use crate::container::Container;
use crate::decoder::{BlockDecoder, Source};
use crate::keys::Key;
use crate::limits::{MAX_GUEST_BYTES, RAM_CACHE_BLOCKS, RAM_INDEX_BLOCKS};
use crate::pages::{BLOCK, PAGE};
use crate::readahead::ReadAhead;
use crate::value::{ArrayData, Value};

/// Pages per data block.
const PAGES_PER_BLOCK: u64 = (BLOCK / PAGE) as u64;
/// Bytes of a modern `MemoryBlockSaveStruct`.
pub const MEMORY_BLOCK_LEN: usize = 48;
/// Fewest metadata bytes accepted from the older layouts (up to `GpaIndexStart`).
pub(crate) const MEMORY_BLOCK_MIN_LEN: usize = 32;

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

/// Guest RAM found in a container, ready to read.
#[derive(Debug, Clone)]
pub struct Ram {
    /// Guest-physical map (reads go to the container's replayed image).
    pub(crate) map: Arc<SegmentMap>,
    /// The metadata blocks.
    pub(crate) blocks: Vec<MemoryBlock>,
    /// Data blocks found, raw and compressed.
    pub(crate) data_blocks: (u64, u64),
    /// The decoded-block cache.
    pub(crate) cache: Arc<BlockCache>,
    /// Read-ahead over the compressed blocks.
    pub(crate) read_ahead: Arc<ReadAhead>,
    /// Saved-state version.
    pub(crate) vm_version: Option<i64>,
    /// `/savedstate/type`.
    pub(crate) state_type: Option<String>,
    /// Which key names were used (`modern` or `legacy`).
    pub(crate) key_layout: &'static str,
    /// Findings.
    pub(crate) findings: Vec<Finding>,
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
pub(crate) fn partition_state(c: &Container) -> Option<&Key> {
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
type Found<'a> = (Vec<(u32, &'a Key)>, BTreeMap<u64, &'a Key>, &'static str);

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
    (Vec::new(), BTreeMap::new(), "none")
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

fn first_by_number(v: Vec<(u64, &Key)>) -> BTreeMap<u64, &Key> {
    let mut m = BTreeMap::new();
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
    /// Guest-physical map (reads go to the container's replayed image).
    pub fn map(&self) -> &SegmentMap {
        &self.map
    }

    /// The `RamMemoryBlock` metadata blocks.
    pub fn blocks(&self) -> &[MemoryBlock] {
        &self.blocks
    }

    /// Data blocks found: (raw, compressed).
    pub fn data_blocks(&self) -> (u64, u64) {
        self.data_blocks
    }

    /// Saved-state version, when recorded.
    pub fn vm_version(&self) -> Option<i64> {
        self.vm_version
    }

    /// `/savedstate/type`, when recorded.
    pub fn state_type(&self) -> Option<&str> {
        self.state_type.as_deref()
    }

    /// Which key names were used (`modern` or `legacy`).
    pub fn key_layout(&self) -> &'static str {
        self.key_layout
    }

    /// Findings made while locating guest RAM.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Whether data block `n` (in `RamBlock` order) is decoded whole in the cache.
    pub fn is_decoded(&self, n: u64) -> bool {
        self.cache.contains(n)
    }

    /// Waits until no background read-ahead is running (decoding is otherwise
    /// asynchronous; a read never needs this).
    pub fn wait_idle(&self) {
        self.cache.wait_idle();
    }

    /// Finds and maps the guest RAM of `c`. `NotFound` when it has no RAM keys.
    pub(crate) fn open(c: &Container) -> Result<Ram> {
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
                    crate::rule::RAM_KEYS,
                    format!("VmVersion {v:#x} but the {layout} RAM key names are used"),
                ));
            }
        }
        if layout == "legacy" {
            findings.push(Finding::info(
                crate::rule::RAM_KEYS,
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
        check_disjoint(&blocks)?;
        let cache = Arc::new(BlockCache::new(RAM_CACHE_BLOCKS, RAM_INDEX_BLOCKS));
        let mut decoders: HashMap<u64, Arc<BlockDecoder>> = HashMap::new();
        let mut compressed: Vec<(u64, Arc<BlockDecoder>)> = Vec::new();
        let (mut raw_n, mut comp_n) = (0u64, 0u64);
        let mut missing = 0u64;
        let mut builder = SegmentMapBuilder::new(size, Overlap::Reject);
        for b in blocks.iter().filter(|b| b.pages > 0) {
            // Only the data blocks that exist are visited: a range of 2^40 pages with
            // two data blocks costs two steps, and the rest counts as missing at once.
            // (`mbp_index_start + pages` was checked above.)
            let mbp_end = b.mbp_index_start + b.pages;
            let first = b.mbp_index_start / PAGES_PER_BLOCK;
            let last = (mbp_end - 1) / PAGES_PER_BLOCK;
            let mut covered = 0u64;
            for (&block, k) in data.range(first..=last) {
                let Some(source) = data_source(k) else {
                    continue;
                };
                // The block's data pages within this range (block <= last, so no
                // overflow), and where they go.
                let dstart = (block * PAGES_PER_BLOCK).max(b.mbp_index_start);
                let dend = ((block + 1) * PAGES_PER_BLOCK).min(mbp_end);
                let in_block = dstart - block * PAGES_PER_BLOCK;
                let gpa = (b.gpa_index_start + (dstart - b.mbp_index_start)) * PAGE as u64;
                let len = (dend - dstart) * PAGE as u64;
                covered += dend - dstart;
                match source {
                    Source::File { offset, size } if u64::from(size) == BLOCK as u64 => {
                        builder.push(Segment::plain(gpa, len, offset + in_block * PAGE as u64))?;
                    }
                    source => {
                        if source.len() > BLOCK as u64 {
                            return Err(Error::malformed(
                                k.file_offset,
                                format!(
                                    "RamBlock{block} holds {} bytes, more than 1 MiB",
                                    source.len()
                                ),
                            ));
                        }
                        let dec = decoders
                            .entry(block)
                            .or_insert_with(|| {
                                Arc::new(BlockDecoder::new(block, source, cache.clone()))
                            })
                            .clone();
                        compressed.push((gpa, dec.clone()));
                        builder.push(Segment::compressed(gpa, len, dec, in_block * PAGE as u64))?;
                    }
                }
            }
            missing = missing.saturating_add(b.pages - covered);
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
                crate::rule::RAM_BLOCK_MISSING,
                format!("{missing} guest pages have no RamBlock data and read as zeros"),
            ));
        }
        let map = builder.build()?;
        Ok(Ram {
            map: Arc::new(map),
            blocks,
            data_blocks: (raw_n, comp_n),
            read_ahead: Arc::new(ReadAhead::new(compressed, cache.clone())),
            cache,
            vm_version,
            state_type,
            key_layout: layout,
            findings,
        })
    }

    /// Reads guest-physical bytes at `offset` from `image` (the container's replayed
    /// image), with read-ahead for sequential and large reads.
    pub(crate) fn read<L: Layer + 'static>(
        &self,
        image: &Arc<L>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        if self.read_ahead.is_empty() {
            // Raw blocks only: no shared counter to touch on every read.
            return self.map.read(image.as_ref(), offset, buf);
        }
        let _reading = self.read_ahead.enter();
        self.read_ahead.before_read(image, offset, buf.len() as u64);
        self.map.read(image.as_ref(), offset, buf)
    }
}

/// Refuses metadata blocks whose data-page ranges overlap: every guest page is stored
/// once, and overlapping ranges would let a small file map one data block at many
/// addresses.
fn check_disjoint(blocks: &[MemoryBlock]) -> Result<()> {
    let mut ranges: Vec<(u64, u64, u32)> = blocks
        .iter()
        .filter(|b| b.pages > 0)
        .map(|b| {
            (
                b.mbp_index_start,
                b.mbp_index_start.saturating_add(b.pages),
                b.index,
            )
        })
        .collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        if let [(_, end, a), (start, _, b)] = w {
            if start < end {
                return Err(Error::malformed(
                    0,
                    format!("RamMemoryBlock{a} and RamMemoryBlock{b} claim the same data pages"),
                ));
            }
        }
    }
    Ok(())
}

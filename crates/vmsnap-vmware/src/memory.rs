//! The `memory` group: regions (`regionsCount`, `regionPPN[i]`, `regionPageNum[i]`,
//! `regionSize[i]`, all in pages) and the embedded `Memory` block, turned into a
//! guest-physical segment map over the memory's bytes.

use vmsnap_core::{Error, Overlap, Result, Segment, SegmentMap, SegmentMapBuilder};

use crate::checkpoint::Checkpoint;
use crate::raw::{GROUP_MEMORY, MAX_REGIONS, PAGE_SIZE};
use crate::tag::{Block, Tag};

/// One region: guest pages `ppn..ppn+pages` stored from page `page_num` of the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First guest-physical page.
    pub ppn: u64,
    /// First page within the memory bytes (the `.vmem` or the `Memory` block).
    pub page_num: u64,
    /// Number of pages.
    pub pages: u64,
}

/// What the `memory` group says.
#[derive(Debug, Clone, Default)]
pub struct MemoryInfo {
    /// Whether the checkpoint has a `memory` group.
    pub has_group: bool,
    /// `regionsCount`, when present.
    pub regions_count: Option<u64>,
    /// The regions, in index order.
    pub regions: Vec<Region>,
    /// The `Memory` block, when present.
    pub embedded: Option<Block>,
    /// `align_mask`, when present (crash parses it and never uses it; so do we).
    pub align_mask: Option<u64>,
    /// Findings about the layout.
    pub findings: Vec<vmsnap_core::Finding>,
}

fn number(t: &Tag) -> Result<u64> {
    t.number().ok_or_else(|| {
        Error::malformed(
            t.offset,
            format!("tag {} is not a number of 1 to 8 bytes", t.full_name()),
        )
    })
}

/// Reads the memory layout from the checkpoint. Every region tag's index must be below
/// `regionsCount`, and every region below it must have its three tags.
pub fn memory_info(ck: &Checkpoint) -> Result<MemoryInfo> {
    let mut info = MemoryInfo {
        has_group: ck.group(GROUP_MEMORY).is_some(),
        ..MemoryInfo::default()
    };
    let tags = ck.group_tags(GROUP_MEMORY);
    for t in tags {
        match (t.name.as_str(), t.indices.as_slice()) {
            ("regionsCount", []) if info.regions_count.is_none() => {
                info.regions_count = Some(number(t)?)
            }
            ("align_mask", []) => info.align_mask = t.number(),
            ("Memory", _) if info.embedded.is_none() => {
                if let Some(b) = t.block() {
                    info.embedded = Some(*b);
                }
            }
            _ => {}
        }
    }
    let count = info.regions_count.unwrap_or(0);
    if count > MAX_REGIONS {
        return Err(Error::limit("VMware regionsCount", count, MAX_REGIONS));
    }
    let mut slots: Vec<[Option<u64>; 3]> = vec![[None; 3]; count as usize];
    for t in tags {
        let which = match t.name.as_str() {
            "regionPPN" => 0,
            "regionPageNum" => 1,
            "regionSize" => 2,
            _ => continue,
        };
        if info.regions_count.is_none() {
            // Volatility 2's rule: without regionsCount the memory is one run from 0.
            info.findings.push(
                vmsnap_core::Finding::warning(
                    crate::rule::MEMORY,
                    format!(
                        "region tag {} present but no regionsCount; region tags ignored, memory read as one run",
                        t.full_name()
                    ),
                )
                .at(t.offset),
            );
            break;
        }
        let i = match t.indices.as_slice() {
            [i] => u64::from(*i),
            _ => {
                return Err(Error::malformed(
                    t.offset,
                    format!("region tag {} must have exactly one index", t.full_name()),
                ))
            }
        };
        let slot = slots
            .get_mut(i as usize)
            .filter(|_| i < count)
            .ok_or_else(|| {
                Error::malformed(
                    t.offset,
                    format!(
                        "region tag {} has index {i}, out of range for regionsCount {count}",
                        t.full_name()
                    ),
                )
            })?;
        if let Some(s) = slot.get_mut(which) {
            if s.is_none() {
                *s = Some(number(t)?);
            }
        }
    }
    for (i, s) in slots.iter().enumerate() {
        match s {
            [Some(ppn), Some(page_num), Some(pages)] => info.regions.push(Region {
                ppn: *ppn,
                page_num: *page_num,
                pages: *pages,
            }),
            _ => {
                return Err(Error::malformed(
                    0,
                    format!("region {i} lacks one of regionPPN, regionPageNum, regionSize"),
                ))
            }
        }
    }
    Ok(info)
}

fn pages_to_bytes(pages: u64, what: &str) -> Result<u64> {
    pages
        .checked_mul(PAGE_SIZE)
        .ok_or_else(|| Error::malformed(0, format!("{what} {pages:#x} pages overflows")))
}

/// Builds the guest-physical map: regions when there are any (each must lie inside the
/// `mem_len` bytes of memory at `base`), otherwise one identity run over all of it.
pub fn build_map(regions: &[Region], base: u64, mem_len: u64) -> Result<SegmentMap> {
    if regions.is_empty() {
        let mut b = SegmentMapBuilder::new(mem_len, Overlap::Reject);
        b.push(Segment::plain(0, mem_len, base))?;
        return b.build();
    }
    let mut size = 0u64;
    for r in regions {
        let end = r
            .ppn
            .checked_add(r.pages)
            .ok_or_else(|| Error::malformed(0, "region end overflows"))?;
        size = size.max(pages_to_bytes(end, "region end")?);
    }
    let mut b = SegmentMapBuilder::new(size, Overlap::Reject);
    for (i, r) in regions.iter().enumerate() {
        let start = pages_to_bytes(r.ppn, "regionPPN")?;
        let len = pages_to_bytes(r.pages, "regionSize")?;
        let from = pages_to_bytes(r.page_num, "regionPageNum")?;
        let to = from
            .checked_add(len)
            .filter(|&e| e <= mem_len)
            .ok_or_else(|| {
                Error::truncated(
                    from,
                    format!(
                        "region {i} (pages {:#x}+{:#x} of the memory) ends past the memory's {mem_len:#x} bytes",
                        r.page_num, r.pages
                    ),
                )
            })?;
        let _ = to;
        let lower = base
            .checked_add(from)
            .ok_or_else(|| Error::malformed(0, "region offset overflows"))?;
        b.push(Segment::plain(start, len, lower))?;
    }
    b.build()
}

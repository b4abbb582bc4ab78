//! The guest-virtual layer: reads through the page tables, enumerates mappings.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::{check_read, AddressSpace, Error, Extent, ExtentKind, Layer, Result};

use crate::cache::{Cached, DirectCache, Region};
use crate::mode::{address_of_offset, Mode};
use crate::walk::{levels, Entry, Flags, Walk, Walker};

/// Most table entries one `extents` call visits (hostile tables that map everything
/// everywhere end with an error instead of running for hours).
pub const MAX_WALK_ENTRIES: u64 = 64 * 1024 * 1024;

const PAGE: u64 = 4096;

/// A guest-virtual address space of one page-table root.
#[derive(Debug)]
pub struct VirtualLayer {
    lower: Arc<dyn Layer>,
    mode: Mode,
    root: u64,
    nxe: bool,
    cpu: Option<u32>,
    root_source: &'static str,
    tlb: DirectCache<Cached>,
    regions: DirectCache<Region>,
}

impl VirtualLayer {
    /// A layer translating through the tables at `root` in `mode` over `lower`.
    pub fn new(lower: Arc<dyn Layer>, mode: Mode, root: u64, nxe: bool) -> Self {
        VirtualLayer {
            lower,
            mode,
            root: mode.root_of(root),
            nxe,
            cpu: None,
            root_source: "given",
            // 4096 pages (16 MiB) and 4096 regions (8 GiB of 2 MiB regions).
            tlb: DirectCache::new(256),
            regions: DirectCache::new(256),
        }
    }

    /// Records which vCPU the root came from.
    pub fn from_cpu(mut self, cpu: u32) -> Self {
        self.cpu = Some(cpu);
        self.root_source = "cpu";
        self
    }

    /// The paging mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The root table address.
    pub fn root(&self) -> u64 {
        self.root
    }

    fn walker(&self) -> Walker<'_> {
        Walker {
            lower: self.lower.as_ref(),
            mode: self.mode,
            root: self.root,
            nxe: self.nxe,
        }
    }

    /// Walks `offset`, recording every entry read.
    pub fn walk(&self, offset: u64) -> Walk {
        self.walker().walk(offset, true)
    }

    /// Index bits of the last level (9, or 10 in 32-bit paging).
    fn last_bits(&self) -> u32 {
        match self.mode {
            Mode::Bits32 { .. } => 10,
            _ => 9,
        }
    }

    /// Physical address of 4 KiB page `vpn`, through the caches.
    fn page(&self, vpn: u64) -> Cached {
        if let Some(c) = self.tlb.get(vpn) {
            return c;
        }
        let bits = self.last_bits();
        let region_key = vpn >> bits;
        let in_region = vpn & ((1 << bits) - 1);
        let c = match self.regions.get(region_key) {
            Some(Region::Unmapped) => Cached::Unmapped,
            Some(Region::Large(base)) => Cached::Mapped(base + in_region * PAGE),
            Some(Region::Table(pt)) => {
                let w = self.walker();
                let lvls = levels(self.mode);
                match (lvls.last(), w.read_entry(pt + in_region * w.entry_size())) {
                    (Some(lv), Some(value)) => match w.decode(lv, true, value) {
                        Entry::Page(base) => Cached::Mapped(base),
                        _ => Cached::Unmapped,
                    },
                    _ => Cached::Unmapped,
                }
            }
            None => self.walk_and_remember(vpn, region_key),
        };
        self.tlb.put(vpn, c);
        c
    }

    /// A full walk of page `vpn`, remembering what covers its last-level region.
    fn walk_and_remember(&self, vpn: u64, region_key: u64) -> Cached {
        let lvls = levels(self.mode).len();
        let region_size = PAGE << self.last_bits();
        match self.walker().walk(vpn * PAGE, true) {
            Walk::Mapped {
                physical,
                page_size,
                steps,
                ..
            } => {
                if page_size == PAGE {
                    if let Some(pde) = steps.len().checked_sub(2).and_then(|i| steps.get(i)) {
                        let pt = if self.walker().entry_size() == 8 {
                            pde.value & 0x000F_FFFF_FFFF_F000
                        } else {
                            pde.value & 0xFFFF_F000
                        };
                        self.regions.put(region_key, Region::Table(pt));
                    }
                } else {
                    let region_base = physical - (vpn * PAGE) % region_size;
                    self.regions.put(region_key, Region::Large(region_base));
                }
                Cached::Mapped(physical)
            }
            Walk::NotMapped { steps, .. } => {
                if steps.len() < lvls {
                    // The walk stopped above the last level (steps end with the bad entry):
                    // the whole region is unmapped.
                    self.regions.put(region_key, Region::Unmapped);
                }
                Cached::Unmapped
            }
        }
    }

    /// Mapped runs in `range` with their permissions and page size: contiguous pages
    /// with contiguous physical addresses and equal attributes are one run.
    pub fn mappings(&self, range: Range<u64>) -> Result<Vec<(Extent, Flags, u64)>> {
        self.mappings_bounded(range, MAX_WALK_ENTRIES)
    }

    /// [`VirtualLayer::mappings`] visiting at most `budget` table entries.
    pub fn mappings_bounded(
        &self,
        range: Range<u64>,
        budget: u64,
    ) -> Result<Vec<(Extent, Flags, u64)>> {
        let end = range.end.min(self.len());
        let mut out: Vec<(Extent, Flags, u64)> = Vec::new();
        if range.start >= end {
            return Ok(out);
        }
        let mut budget = budget;
        let w = self.walker();
        let lvls = levels(self.mode);
        let top = Flags {
            writable: true,
            user: true,
            nx: false,
        };
        enumerate(
            &w,
            lvls,
            0,
            self.root,
            0,
            range.start..end,
            top,
            &mut out,
            &mut budget,
        )?;
        Ok(out)
    }
}

/// Walks the table at `table` (level `depth`, covering offsets from `base`), appending
/// mapped runs that intersect `range`.
#[allow(clippy::too_many_arguments)]
fn enumerate(
    w: &Walker<'_>,
    lvls: &[crate::walk::Level],
    depth: usize,
    table: u64,
    base: u64,
    range: Range<u64>,
    flags: Flags,
    out: &mut Vec<(Extent, Flags, u64)>,
    budget: &mut u64,
) -> Result<()> {
    let Some(lv) = lvls.get(depth) else {
        return Ok(());
    };
    let last = depth + 1 == lvls.len();
    let span = 1u64 << lv.shift;
    let count = 1u64 << lv.bits;
    // Read the whole table at once (4 KiB, or 32 bytes for a PAE PDPT).
    let bytes = count * w.entry_size();
    let mut buf = vec![0u8; bytes as usize];
    if w.lower.read_at(table, &mut buf).is_err() {
        return Ok(()); // a table outside physical memory maps nothing
    }
    let first = range.start.saturating_sub(base) / span;
    for index in first..count {
        let start = base + index * span;
        if start >= range.end {
            break;
        }
        if start.saturating_add(span) <= range.start {
            continue;
        }
        *budget = budget.checked_sub(1).ok_or_else(|| {
            Error::new(
                vmsnap_core::ErrorKind::LimitExceeded,
                "page tables map more entries than the walk limit allows",
            )
        })?;
        let at = (index * w.entry_size()) as usize;
        let value = if w.entry_size() == 4 {
            buf.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(|b: [u8; 4]| u64::from(u32::from_le_bytes(b)))
        } else {
            buf.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let Some(value) = value else { continue };
        match w.decode(lv, last, value) {
            Entry::Invalid(_) => {}
            Entry::Table(next) => {
                let mut f = flags;
                w.accumulate(&mut f, lv, value);
                enumerate(
                    w,
                    lvls,
                    depth + 1,
                    next,
                    start,
                    range.clone(),
                    f,
                    out,
                    budget,
                )?;
            }
            Entry::Page(phys) => {
                let mut f = flags;
                w.accumulate(&mut f, lv, value);
                // Clip the page to the range.
                let s = start.max(range.start);
                let e = (start + span).min(range.end);
                let e_ext = Extent::data(s, e - s, Some(phys + (s - start)));
                match out.last_mut() {
                    Some((last, lf, ps))
                        if *lf == f && *ps == span && last.continues_with(&e_ext) =>
                    {
                        last.len += e_ext.len;
                    }
                    _ => out.push((e_ext, f, span)),
                }
            }
        }
    }
    Ok(())
}

impl Layer for VirtualLayer {
    fn name(&self) -> &str {
        "x86"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestVirtual
    }
    fn len(&self) -> u64 {
        self.mode.space_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        let mut pos = offset;
        let mut rest = buf;
        while !rest.is_empty() {
            let in_page = pos % PAGE;
            let n = ((PAGE - in_page) as usize).min(rest.len());
            let (now, later) = rest.split_at_mut(n);
            match self.page(pos / PAGE) {
                Cached::Mapped(phys) => self
                    .lower
                    .read_at(phys + in_page, now)
                    .map_err(|e| e.in_layer("x86").during("reading a mapped page"))?,
                Cached::Unmapped => now.fill(0),
            }
            rest = later;
            pos += n as u64;
        }
        Ok(())
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len());
        let mut out = Vec::new();
        let mut pos = range.start;
        for (e, _, _) in self.mappings(range.start..end)? {
            if e.offset > pos {
                out.push(Extent::of(ExtentKind::Unallocated, pos, e.offset - pos));
            }
            pos = e.end();
            out.push(e);
        }
        if pos < end {
            out.push(Extent::of(ExtentKind::Unallocated, pos, end - pos));
        }
        Ok(out)
    }
    fn extent_attributes(&self, extent: &Extent) -> Option<serde_json::Value> {
        if extent.kind != ExtentKind::Data {
            return None;
        }
        match self.walker().walk(extent.offset, false) {
            Walk::Mapped {
                page_size, flags, ..
            } => Some(json!({
                "address": format!("{:#x}", address_of_offset(self.mode, extent.offset)),
                "page_size": page_size,
                "writable": flags.writable,
                "user": flags.user,
                "nx": flags.nx,
            })),
            Walk::NotMapped { .. } => None,
        }
    }
    fn translate(&self, offset: u64) -> Result<Option<serde_json::Value>> {
        let walk = self.walk(offset);
        Ok(Some(json!({
            "mode": self.mode.id(),
            "root": format!("{:#x}", self.root),
            "offset": format!("{offset:#x}"),
            "address": format!("{:#x}", address_of_offset(self.mode, offset)),
            "walk": walk,
        })))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        json!({
            "format": "x86",
            "mode": self.mode.id(),
            "root": format!("{:#x}", self.root),
            "root_from": self.root_source,
            "cpu": self.cpu,
            "nx_enabled": self.nxe,
            "virtual_size": self.len(),
            "addressing": match self.mode {
                Mode::Level4 => "offsets are the low 48 bits of canonical addresses: 0xffff8000_00000000 and up are at 0x8000_0000_0000 and up",
                Mode::Level5 => "offsets are the low 57 bits of canonical addresses",
                _ => "offsets are linear addresses",
            },
        })
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

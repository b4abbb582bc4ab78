//! `.xen_p2m` / `.xen_pfn` → the guest-physical segment map: page `i` of `.xen_pages`
//! holds pfn `table[i]`; consecutive pfns in consecutive pages coalesce into one segment.
//! The table is read in chunks, so memory follows the number of runs, not of pages.

use vmsnap_core::{
    Bytes, Error, Layer, LayerExt, Overlap, Result, ResultExt, Segment, SegmentMap,
    SegmentMapBuilder,
};

use crate::dump::{Dump, Table};
use crate::raw::*;

/// A built map and what building it counted.
#[derive(Debug)]
pub struct Built {
    /// The map.
    pub map: SegmentMap,
    /// Entries of the table.
    pub entries: u64,
    /// Entries naming a page (not `XC_CORE_INVALID_PFN`).
    pub mapped_pages: u64,
    /// Pages of `.xen_pages` (at least `entries`).
    pub pages: u64,
    /// For PV dumps, the pfn whose gmfn is `find_gmfn`, when asked and found.
    pub found_pfn: Option<u64>,
}

/// A run of pages: `count` pfns from `pfn` in pages from `page`.
#[derive(Debug, Clone, Copy)]
struct Run {
    pfn: u64,
    page: u64,
    count: u64,
}

/// Maps the dump's pages; `find_gmfn` (PV) asks for the pfn of one machine frame.
pub fn build(lower: &dyn Layer, dump: &Dump, find_gmfn: Option<u64>) -> Result<Built> {
    let file_size = lower.len();
    let ps = dump.header.page_size;
    let pages_range = dump.pages.data_range(file_size)?;
    if !dump.pages.size.is_multiple_of(ps) {
        return Err(Error::malformed(
            dump.pages.at,
            format!(
                ".xen_pages holds {:#x} bytes, not a multiple of the {ps}-byte page size",
                dump.pages.size
            ),
        ));
    }
    let pages = dump.pages.size / ps;
    let t = &dump.table_section;
    let esize = dump.table.entry_size();
    if !t.size.is_multiple_of(esize) {
        return Err(Error::malformed(
            t.at,
            format!(
                "{} holds {:#x} bytes, not a multiple of its {esize}-byte entries",
                t.name, t.size
            ),
        ));
    }
    let entries = t.size / esize;
    if entries > pages {
        return Err(Error::malformed(
            t.at,
            format!(
                "{} has {entries} entries but .xen_pages only {pages} pages",
                t.name
            ),
        ));
    }
    let table_range = t.data_range(file_size)?;
    let e = dump.elf.endian;
    let mut runs: Vec<Run> = Vec::new();
    let mut mapped_pages = 0u64;
    let mut end = 0u64;
    let mut found_pfn = None;
    let chunk_entries = TABLE_CHUNK / esize;
    let mut i = 0u64;
    while i < entries {
        let n = (entries - i).min(chunk_entries);
        // i * esize <= t.size, which fits the file.
        let at = table_range.start + i * esize;
        let raw = lower
            .read_vec(at, n * esize, TABLE_CHUNK, "page table chunk")
            .during("reading the page frame table")?;
        let b = Bytes::new(&raw, at);
        for k in 0..n {
            let off = (k * esize) as usize;
            let pfn = e.u64(&b, off)?;
            let page = i + k;
            if pfn == INVALID_PFN {
                continue;
            }
            if dump.table == Table::P2m {
                let gmfn = e.u64(&b, off + 8)?;
                if find_gmfn == Some(gmfn) && found_pfn.is_none() {
                    found_pfn = Some(pfn);
                }
            }
            let start = pfn.checked_mul(ps).filter(|s| *s < MAX_PHYS_END);
            let Some(start) = start else {
                return Err(Error::limit(
                    &format!("address of pfn {pfn:#x} (entry {page} of {})", t.name),
                    u128::from(pfn)
                        .saturating_mul(u128::from(ps))
                        .min(u128::from(u64::MAX)) as u64,
                    MAX_PHYS_END,
                )
                .at(b.file_offset(off)));
            };
            end = end.max(start + ps);
            mapped_pages += 1;
            match runs.last_mut() {
                Some(r) if r.pfn + r.count == pfn && r.page + r.count == page => r.count += 1,
                _ => {
                    if runs.len() >= vmsnap_core::limits::MAX_SEGMENTS {
                        return Err(Error::limit(
                            "number of runs of pages",
                            runs.len() as u64 + 1,
                            vmsnap_core::limits::MAX_SEGMENTS as u64,
                        )
                        .at(b.file_offset(off)));
                    }
                    runs.push(Run {
                        pfn,
                        page,
                        count: 1,
                    });
                }
            }
        }
        i += n;
    }
    let mut mb = SegmentMapBuilder::new(end, Overlap::Reject);
    for r in &runs {
        // Each run lies within .xen_pages and below MAX_PHYS_END.
        mb.push(Segment::plain(
            r.pfn * ps,
            r.count * ps,
            pages_range.start + r.page * ps,
        ))?;
    }
    let map = mb.build().map_err(|err| {
        Error::malformed(
            t.offset,
            format!("{} names a page frame twice: {}", t.name, err.message()),
        )
    })?;
    Ok(Built {
        map,
        entries,
        mapped_pages,
        pages,
        found_pfn,
    })
}

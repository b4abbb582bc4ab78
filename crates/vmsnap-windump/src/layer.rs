//! A Windows crash dump as guest-physical memory.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    AddressSpace, CpuState, Error, Extent, Finding, Findings, Layer, LayerExt, OpenCtx, Overlap,
    Result, ResultExt, Segment, SegmentMap, SegmentMapBuilder,
};

use crate::header::{Header, Width};
use crate::raw::*;
use crate::summary::Summary;

/// The plugin name.
pub const NAME: &str = "windump";

/// CR0.PG and CR0.PE: paging on, as it is in any system that wrote a crash dump.
const CR0_PG_PE: u64 = (1 << 31) | 1;
/// CR4.PSE (large pages in 32-bit paging, which Windows uses).
const CR4_PSE: u64 = 1 << 4;
/// CR4.PAE.
const CR4_PAE: u64 = 1 << 5;
/// EFER.LME | EFER.LMA: long mode.
const EFER_LONG: u64 = (1 << 8) | (1 << 10);

/// An open crash dump: each run (full dumps) or each run of set bitmap bits (bitmap dumps)
/// mapped to its pages in the file; page frames the dump does not hold read as zeros and
/// are unallocated.
#[derive(Debug)]
pub struct Windump {
    lower: Arc<dyn Layer>,
    header: Header,
    summary: Option<Summary>,
    map: SegmentMap,
    data_offset: u64,
    pages_present: u64,
    findings: Findings,
}

impl Windump {
    /// Opens the dump on `lower` (the typed API for embedders).
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_layer(lower)
    }

    /// Opens without a context (nothing outside the file is read).
    pub fn open_layer(lower: Arc<dyn Layer>) -> Result<Self> {
        let path = lower.path().map(Path::to_path_buf);
        let r = Self::open_inner(lower).in_layer(NAME);
        match path {
            Some(p) => r.map_err(|e| e.in_file(p)),
            None => r,
        }
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Self> {
        let file_size = lower.len();
        let head = lower.read_vec(0, file_size.min(8), 8, "signature")?;
        let width = Width::of_signature(&head).ok_or_else(|| {
            Error::malformed(
                0,
                "no PAGEDUMP or PAGEDU64 signature (not a Windows crash dump)",
            )
        })?;
        let hb = width.layout().header_bytes;
        if file_size < hb {
            return Err(Error::truncated(
                0,
                format!(
                    "{file_size} bytes are too short for the {hb}-byte {} header",
                    width.signature()
                ),
            ));
        }
        let raw = lower.read_vec(0, hb, hb, "dump header")?;
        let header = Header::parse(&raw).during("reading the dump header")?;
        let l = width.layout();
        let mut findings = Findings::new();
        let (map, summary, data_offset, pages_present) = match header.dump_type {
            DUMP_TYPE_FULL => {
                let (map, pages) = map_runs(&header, file_size)?;
                if pages != header.number_of_pages {
                    findings.push(
                        Finding::warning(
                            crate::rule::PAGE_COUNT,
                            format!(
                                "NumberOfPages says {} but the runs hold {pages} pages",
                                header.number_of_pages
                            ),
                        )
                        .at(l.number_of_pages),
                    );
                }
                (map, None, hb, pages)
            }
            DUMP_TYPE_BITMAP_FULL | DUMP_TYPE_BITMAP_KERNEL => {
                let s = Summary::read(lower.as_ref(), hb)?;
                let size = s.bitmap_size * PAGE;
                let mut b = SegmentMapBuilder::new(size, Overlap::Reject);
                let pages = s.map(lower.as_ref(), &mut b)?;
                let map = b.build().during("mapping the bitmap's pages")?;
                if pages != s.pages {
                    findings.push(
                        Finding::warning(
                            crate::rule::PAGE_COUNT,
                            format!(
                                "the summary header's Pages says {} but the bitmap has {pages} \
                                 bits set",
                                s.pages
                            ),
                        )
                        .at(hb + summary::PAGES),
                    );
                }
                let data = s.header_size;
                (map, Some(s), data, pages)
            }
            other => {
                return Err(Error::unsupported(format!(
                    "crash dump type {other} ({}): only full (1) and bitmap (5, 6) dumps hold \
                     physical memory this reader maps",
                    header.dump_type_name()
                ))
                .at(l.dump_type))
            }
        };
        // Checked when mapping: the pages end inside the file.
        let end = data_offset + pages_present * PAGE;
        if header.required_dump_space != 0 && header.required_dump_space != file_size {
            findings.push(
                Finding::info(
                    crate::rule::DUMP_SIZE,
                    format!(
                        "RequiredDumpSpace is {} bytes but the file has {file_size} (the \
                         pages end at {end})",
                        header.required_dump_space
                    ),
                )
                .at(l.required_dump_space),
            );
        }
        Ok(Windump {
            lower,
            header,
            summary,
            map,
            data_offset,
            pages_present,
            findings,
        })
    }

    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The summary header of a bitmap dump.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// Pages the dump holds.
    pub fn pages_present(&self) -> u64 {
        self.pages_present
    }

    /// The guest-physical segment map.
    pub fn segment_map(&self) -> &SegmentMap {
        &self.map
    }

    /// The paging registers the header implies: CR3 from `DirectoryTableBase`; 4-level
    /// paging for 64-bit x86 dumps, PAE or 32-bit paging for 32-bit ones as `PaeEnabled`
    /// says. `None` for other machines and when no root is recorded (zero).
    fn paging(&self) -> Option<(&'static str, u64, u64)> {
        let h = &self.header;
        if h.directory_table_base == 0 {
            return None;
        }
        match (h.width, h.machine_image_type) {
            (Width::Bits64, MACHINE_AMD64) => Some(("x86_64", CR4_PAE, EFER_LONG)),
            (Width::Bits32, MACHINE_I386) if h.pae() => Some(("x86", CR4_PAE, 0)),
            (Width::Bits32, MACHINE_I386) => Some(("x86", CR4_PSE, 0)),
            _ => None,
        }
    }
}

/// The runs of a full dump mapped in order from the end of the header; the pages they hold.
fn map_runs(h: &Header, file_size: u64) -> Result<(SegmentMap, u64)> {
    let l = h.width.layout();
    let mut size = 0u64;
    let mut pages = 0u64;
    for r in &h.runs {
        // Checked by the header: every run ends at or below MAX_PHYS_END.
        size = size.max((r.base_page + r.page_count) * PAGE);
        pages += r.page_count;
    }
    // At most 86 runs below 2^40 pages each: no overflow.
    let end = l.header_bytes + pages * PAGE;
    if end > file_size {
        return Err(Error::truncated(
            l.memory_block,
            format!(
                "{} runs hold {pages} pages, which end at {end:#x}, past the end of the file \
                 ({file_size:#x} bytes)",
                h.runs.len()
            ),
        ));
    }
    let mut b = SegmentMapBuilder::new(size, Overlap::Reject);
    let mut at = l.header_bytes;
    for r in &h.runs {
        b.push(Segment::plain(r.base_page * PAGE, r.page_count * PAGE, at))?;
        at += r.page_count * PAGE;
    }
    let map = b.build().during("mapping the dump's runs")?;
    Ok((map, pages))
}

impl Layer for Windump {
    fn name(&self) -> &str {
        NAME
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestPhysical
    }
    fn len(&self) -> u64 {
        self.map.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.map
            .read(self.lower.as_ref(), offset, buf)
            .map_err(|e| e.in_layer(NAME))
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        Ok(self.map.extents(range))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Value {
        let h = &self.header;
        json!({
            "format": NAME,
            "virtual_size": self.map.size(),
            "header": h.to_json(),
            "runs": h.runs.iter().take(MAX_LISTED_RUNS).map(|r| json!({
                "base_page": r.base_page,
                "page_count": r.page_count,
            })).collect::<Vec<_>>(),
            "runs_listed": h.runs.len().min(MAX_LISTED_RUNS),
            "summary": self.summary.as_ref().map(Summary::to_json),
            "data_offset": self.data_offset,
            "pages_present": self.pages_present,
            "segments": self.map.segments().len(),
        })
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.to_vec()
    }
    fn cpu_state(&self) -> Vec<CpuState> {
        let Some((arch, cr4, efer)) = self.paging() else {
            return Vec::new();
        };
        vec![CpuState {
            index: 0,
            arch,
            cr0: CR0_PG_PE,
            cr3: self.header.directory_table_base,
            cr4,
            efer,
            regs: Default::default(),
        }]
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

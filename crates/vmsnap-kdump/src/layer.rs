//! A kdump-compressed dump as guest-physical memory.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::hex::hex;
use vmsnap_core::{
    check_read, AddressSpace, CpuState, DataExtents, EncodedRead, Error, Extent, Finding, Findings,
    Layer, LayerExt, OpenCtx, Result, ResultExt, Run, RunKind, RunMap, RunSources,
};
use vmsnap_elf::{
    parse_notes, vmcoreinfo_lines, CoreNotes, Note, EM_386, EM_X86_64, NT_PRSTATUS,
    PRSTATUS_I386_SIZE, PRSTATUS_X86_64_SIZE,
};

use crate::bitmap::PageBitmap;
use crate::flat::{is_flattened, FlatFile};
use crate::header::Header;
use crate::page::{decompress, PageCache, PageDesc, DESC_BYTES};
use crate::raw::*;

/// The plugin name.
pub const NAME: &str = "kdump";

/// Bytes of the first bitmap compared with the second at a time.
const BITMAP_CHUNK: u64 = 1 << 20;

/// An open kdump-compressed dump: guest-physical memory, page by page.
#[derive(Debug)]
pub struct Kdump {
    file: Arc<dyn Layer>,
    /// The dump file: `file`, or the file its flattened records stand for.
    dump: Arc<dyn Layer>,
    flat: Option<(u64, i64)>,
    header: Header,
    dumped: PageBitmap,
    existing: u64,
    excluded: u64,
    zero_page: Option<u64>,
    notes: Vec<Note>,
    machine: u16,
    core: CoreNotes,
    vmcoreinfo: Vec<String>,
    cache: PageCache,
    findings: Findings,
}

/// Descriptors read while walking one range.
#[derive(Debug, Default)]
pub struct DescCursor {
    first: u64,
    bytes: Vec<u8>,
}

impl Kdump {
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

    fn open_inner(file: Arc<dyn Layer>) -> Result<Self> {
        let sig = file.read_vec(0, file.len().min(16), 16, "signature")?;
        let (dump, flat): (Arc<dyn Layer>, _) = if is_flattened(&sig) {
            let f = FlatFile::open(file.clone())?;
            let info = (f.records(), f.version());
            (Arc::new(f), Some(info))
        } else {
            (file.clone(), None)
        };
        let dump_len = dump.len();
        if dump_len < HEADER_BYTES as u64 {
            return Err(Error::truncated(
                0,
                format!(
                    "{dump_len} bytes are too short for the {HEADER_BYTES}-byte disk_dump_header"
                ),
            ));
        }
        let head = dump.read_vec(
            0,
            HEADER_BYTES as u64,
            HEADER_BYTES as u64,
            "disk_dump_header",
        )?;
        let header = Header::parse(&head, dump_len, |at, len| {
            dump.read_vec(at, len, len, "kdump_sub_header")
        })
        .during("reading the disk_dump_header")?;
        let e = header.endian;
        let mut findings = Findings::new();

        // The bitmaps: they must cover every page frame.
        let need = header.max_mapnr.div_ceil(8);
        if header.bitmap_bytes() < need {
            return Err(Error::malformed(
                header.bitmap1_offset(),
                format!(
                    "each bitmap holds {} bytes but {} page frames need {need}",
                    header.bitmap_bytes(),
                    header.max_mapnr
                ),
            ));
        }
        // Writers store both bitmaps whole, flattened or not: a file smaller than them is
        // not a dump of that many pages (and a flattened file cannot make them up from gaps).
        if need.saturating_mul(2) > file.len() {
            return Err(Error::truncated(
                header.bitmap1_offset(),
                format!(
                    "two bitmaps of {need} bytes for {} page frames do not fit in the file \
                     ({} bytes)",
                    header.max_mapnr,
                    file.len()
                ),
            ));
        }
        let bytes2 = dump
            .read_vec(
                header.bitmap2_offset(),
                need,
                MAX_BITMAP_BYTES,
                "second bitmap",
            )
            .during("reading the bitmap of dumped pages")?;
        let dumped = PageBitmap::new(&bytes2, header.max_mapnr);
        drop(bytes2);
        let (existing, excluded, stray) = compare_bitmaps(dump.as_ref(), &header, &dumped)?;
        if stray > 0 {
            findings.push(
                Finding::warning(
                    crate::rule::BITMAPS,
                    format!("{stray} dumped pages are not in the bitmap of existing pages"),
                )
                .at(header.bitmap1_offset()),
            );
        }

        // The descriptors of the dumped pages must lie in the dump.
        let count = dumped.count();
        let desc_end = count
            .checked_mul(PAGE_DESC_SIZE)
            .and_then(|n| n.checked_add(header.descriptors_offset()))
            .filter(|&end| end <= dump_len && count * PAGE_DESC_SIZE <= file.len())
            .ok_or_else(|| {
                Error::truncated(
                    header.descriptors_offset(),
                    format!(
                        "the descriptors of {count} dumped pages at {:#x} run past the end of \
                         the dump ({dump_len:#x} bytes)",
                        header.descriptors_offset()
                    ),
                )
            })?;

        // The shared zero page that makedumpfile and QEMU write first, right after the
        // descriptors: pages whose descriptor points at it are zeros.
        let bs = header.block_size;
        let mut zero_page = None;
        if count > 0 && desc_end.checked_add(bs).is_some_and(|e| e <= dump_len) {
            let page = dump.read_vec(desc_end, bs, bs, "the first data page")?;
            if page.iter().all(|&b| b == 0) {
                zero_page = Some(desc_end);
            }
        }

        // Notes (QEMU's CPU state, the kernel's prstatus) and VMCOREINFO.
        let mut notes = Vec::new();
        if let Some((at, len)) = header.notes {
            let data = dump
                .read_vec(at, len, MAX_NOTE_BYTES, "ELF notes")
                .during("reading the ELF notes")?;
            parse_notes(&data, at, e, &mut notes).during("parsing the ELF notes")?;
        }
        let machine = machine_of(&header, &notes);
        let core = CoreNotes::interpret(&notes, e, machine);
        for f in &core.findings {
            findings.push(f.clone());
        }
        let mut vmcoreinfo = Vec::new();
        if let Some((at, len)) = header.vmcoreinfo {
            let text = dump
                .read_vec(at, len, MAX_VMCOREINFO_BYTES, "VMCOREINFO")
                .during("reading VMCOREINFO")?;
            vmcoreinfo = vmcoreinfo_lines(&text);
        }
        if vmcoreinfo.is_empty() {
            vmcoreinfo = core.vmcoreinfo.clone();
        }

        if header.status & DUMP_DH_COMPRESSED_INCOMPLETE != 0 {
            findings.push(
                Finding::warning(
                    crate::rule::INCOMPLETE,
                    "the dump is marked incomplete (the writer ran out of space): pages it \
                     did not write read as zeros or fail",
                )
                .at(header.layout_status_offset()),
            );
        }
        if let Some((start, end)) = header.split {
            findings.push(Finding::warning(
                crate::rule::SPLIT,
                format!(
                    "one part of a split dump: page frames {start:#x}..{end:#x}; the other \
                     parts are separate files"
                ),
            ));
        }
        let unread = header.status & COMPRESSION_FLAGS & !DUMP_DH_COMPRESSED_ZLIB;
        if unread != 0 {
            findings.push(Finding::warning(
                crate::rule::COMPRESSION,
                format!(
                    "pages compressed with {} cannot be read by this build (reading one fails)",
                    crate::header::compression_names(unread)
                ),
            ));
        }
        Ok(Kdump {
            file,
            dump,
            flat,
            header,
            dumped,
            existing,
            excluded,
            zero_page,
            notes,
            machine,
            core,
            vmcoreinfo,
            cache: PageCache::new(),
            findings,
        })
    }

    /// The checked headers.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How many pages were dumped (are present).
    pub fn dumped_pages(&self) -> u64 {
        self.dumped.count()
    }

    /// Whether page frame `pfn` was dumped.
    pub fn is_dumped(&self, pfn: u64) -> bool {
        self.dumped.get(pfn)
    }

    /// Whether the file is in makedumpfile's flattened form.
    pub fn flattened(&self) -> bool {
        self.flat.is_some()
    }

    /// VMCOREINFO as `key=value` lines.
    pub fn vmcoreinfo(&self) -> &[String] {
        &self.vmcoreinfo
    }

    /// What the ELF notes say (QEMU CPU states, prstatus).
    pub fn core_notes(&self) -> &CoreNotes {
        &self.core
    }

    /// The descriptor of the `index`th dumped page, through `cursor`.
    fn desc(&self, index: u64, cursor: &mut DescCursor) -> Result<PageDesc> {
        let have = cursor.bytes.len() as u64 / PAGE_DESC_SIZE;
        if index < cursor.first || index >= cursor.first + have {
            let n = DESC_CHUNK.min(self.dumped.count().saturating_sub(index));
            let at = self.header.descriptors_offset() + index * PAGE_DESC_SIZE;
            cursor.bytes = self
                .dump
                .read_vec(
                    at,
                    n * PAGE_DESC_SIZE,
                    DESC_CHUNK * PAGE_DESC_SIZE,
                    "page descriptors",
                )
                .during("reading page descriptors")?;
            cursor.first = index;
        }
        let i = ((index - cursor.first) * PAGE_DESC_SIZE) as usize;
        let at = self.header.descriptors_offset() + index * PAGE_DESC_SIZE;
        let raw = cursor
            .bytes
            .get(i..i + DESC_BYTES)
            .ok_or_else(|| Error::truncated(at, "page descriptor past the descriptors read"))?;
        PageDesc::parse(
            raw,
            at,
            self.header.endian,
            self.header.block_size,
            self.dump.len(),
        )
    }

    /// How page frame `pfn` is stored.
    fn kind_of(&self, pfn: u64, cursor: &mut DescCursor) -> Result<RunKind> {
        if !self.dumped.get(pfn) {
            return Ok(RunKind::Unallocated);
        }
        let d = self.desc(self.dumped.rank(pfn), cursor)?;
        Ok(if d.compressed() {
            RunKind::Encoded(pfn)
        } else if Some(d.offset) == self.zero_page {
            RunKind::Zero
        } else {
            RunKind::Data(d.offset)
        })
    }

    /// The decompressed page `pfn`.
    fn page(&self, pfn: u64) -> Result<Arc<[u8]>> {
        if let Some(p) = self.cache.get(pfn) {
            return Ok(p);
        }
        let d = self.desc(self.dumped.rank(pfn), &mut DescCursor::default())?;
        let input = self
            .dump
            .read_vec(
                d.offset,
                d.size,
                self.header.block_size * MAX_COMPRESSED_FACTOR,
                "a compressed page",
            )
            .during("reading a compressed page")?;
        let mut out = vec![0u8; self.header.block_size as usize];
        decompress(d.flags, &input, &mut out, d.offset)?;
        let page: Arc<[u8]> = Arc::from(out);
        self.cache.insert(pfn, page.clone());
        Ok(page)
    }

    fn notes_json(&self) -> Value {
        Value::Array(
            self.notes
                .iter()
                .take(MAX_LISTED_NOTES)
                .map(|n| {
                    json!({
                        "name": n.name,
                        "type": n.n_type,
                        "desc_offset": n.desc_offset,
                        "desc_size": n.desc.len(),
                    })
                })
                .collect(),
        )
    }
}

/// Most notes listed one by one in `describe()`.
const MAX_LISTED_NOTES: usize = 1024;

/// Counts the pages of the first bitmap, those of them not dumped, and dumped pages not in
/// it, reading the first bitmap a chunk at a time.
fn compare_bitmaps(dump: &dyn Layer, h: &Header, dumped: &PageBitmap) -> Result<(u64, u64, u64)> {
    let need = h.max_mapnr.div_ceil(8);
    let (mut existing, mut excluded, mut stray) = (0u64, 0u64, 0u64);
    let mut done = 0u64;
    while done < need {
        let n = (need - done).min(BITMAP_CHUNK);
        let bytes = dump
            .read_vec(h.bitmap1_offset() + done, n, BITMAP_CHUNK, "first bitmap")
            .during("reading the bitmap of existing pages")?;
        let first_pfn = done * 8;
        let part = PageBitmap::new(&bytes, (n * 8).min(h.max_mapnr - first_pfn));
        let w0 = (first_pfn / 64) as usize;
        for (i, w1) in part.words().iter().enumerate() {
            let w2 = dumped.words().get(w0 + i).copied().unwrap_or(0);
            existing += u64::from(w1.count_ones());
            excluded += u64::from((w1 & !w2).count_ones());
            stray += u64::from((w2 & !w1).count_ones());
        }
        done += n;
    }
    Ok((existing, excluded, stray))
}

/// The guest's `e_machine`: from the utsname when it names an x86 machine; else (QEMU
/// writes "Unknown") from the prstatus note QEMU writes next to its x86 CPU notes, which
/// has the x86-64 layout exactly when the guest is in long mode (the ELF core QEMU writes
/// then says `EM_X86_64`, else `EM_386`, whatever the header's width); else unknown (0).
fn machine_of(h: &Header, notes: &[Note]) -> u16 {
    let uts = h
        .utsname
        .iter()
        .find(|(k, _)| *k == "machine")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let prstatus = notes
        .iter()
        .find(|n| n.name == "CORE" && n.n_type == NT_PRSTATUS)
        .map(|n| n.desc.len());
    match (uts, prstatus) {
        ("x86_64", _) => EM_X86_64,
        ("i386" | "i486" | "i586" | "i686", _) => EM_386,
        (_, Some(PRSTATUS_X86_64_SIZE)) => EM_X86_64,
        (_, Some(PRSTATUS_I386_SIZE)) => EM_386,
        _ => 0,
    }
}

impl RunMap for Kdump {
    type Cursor = DescCursor;

    fn run(&self, pos: u64, max: u64, cursor: &mut DescCursor) -> Result<Run> {
        let bs = self.header.block_size;
        vmsnap_core::block_run(bs, pos / bs, pos % bs, max, |pfn| self.kind_of(pfn, cursor))
    }

    fn sources(&self) -> RunSources<'_> {
        RunSources {
            file: self.dump.as_ref(),
            file_len: self.dump.len(),
            backing: None,
            backing_base: 0,
            data: if self.flat.is_some() {
                DataExtents::Unmapped
            } else {
                DataExtents::Mapped
            },
        }
    }

    fn read_encoded(&self, reads: &mut [EncodedRead<'_>]) -> Result<()> {
        let bs = self.header.block_size;
        for r in reads {
            let page = self.page(r.key)?;
            let start = (r.pos % bs) as usize;
            let src = start
                .checked_add(r.buf.len())
                .and_then(|end| page.get(start..end))
                .ok_or_else(|| {
                    Error::malformed(r.pos, "internal: read past a decompressed page")
                })?;
            r.buf.copy_from_slice(src);
        }
        Ok(())
    }
}

impl Layer for Kdump {
    fn name(&self) -> &str {
        NAME
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestPhysical
    }
    fn len(&self) -> u64 {
        // Checked at open to stay at or below MAX_PHYS_END.
        self.header.max_mapnr * self.header.block_size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        self.read_runs(offset, buf).map_err(|e| {
            let e = e.in_layer(NAME);
            match self.file.path() {
                Some(p) => e.in_file(p),
                None => e,
            }
        })
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len());
        if range.start >= end {
            return Ok(Vec::new());
        }
        self.run_extents(range.start..end).in_layer(NAME)
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.file.clone()]
    }
    fn describe(&self) -> Value {
        let h = &self.header;
        let m = self.machine;
        json!({
            "format": NAME,
            "virtual_size": self.len(),
            "form": if self.flat.is_some() { "flattened" } else { "raw" },
            "flattened_records": self.flat.map(|f| f.0),
            "flattened_version": self.flat.map(|f| f.1),
            "dump_size": self.dump.len(),
            "signature": h.signature,
            "header_version": h.version,
            "layout_bits": h.layout.as_str(),
            "endian": if h.endian.big { "big" } else { "little" },
            "utsname": h.utsname_json(),
            "timestamp_sec": h.timestamp_sec,
            "status": hex(u64::from(h.status)),
            "compression": h.compression(),
            "incomplete": h.status & DUMP_DH_COMPRESSED_INCOMPLETE != 0,
            "block_size": h.block_size,
            "sub_header_blocks": h.sub_hdr_blocks,
            "bitmap_blocks": h.bitmap_blocks,
            "max_mapnr": h.max_mapnr,
            "pages_existing": self.existing,
            "pages_dumped": self.dumped.count(),
            "pages_excluded": self.excluded,
            "zero_page_offset": self.zero_page,
            "dump_level": h.dump_level,
            "phys_base": hex(h.phys_base),
            "nr_cpus": h.nr_cpus,
            "current_cpu": h.current_cpu,
            "split": h.split.map(|(s, e)| json!({"start_pfn": s, "end_pfn": e})),
            "vmcoreinfo_offset": h.vmcoreinfo.map(|r| r.0),
            "notes_offset": h.notes.map(|r| r.0),
            "notes_size": h.notes.map(|r| r.1),
            "eraseinfo_offset": h.eraseinfo.map(|r| r.0),
            "notes": self.notes_json(),
            "notes_listed": self.notes.len().min(MAX_LISTED_NOTES),
            "qemu_cpus": self.core.qemu_cpus.iter().map(|c| c.to_json(m)).collect::<Vec<_>>(),
            "prstatus": self.core.prstatus.iter().map(|p| json!({
                "pid": p.pid, "layout": p.layout,
                "registers": p.regs.iter().map(|(k, v)| (k.clone(), json!(hex(*v))))
                    .collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "vmcoreinfo": self.vmcoreinfo,
        })
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.to_vec()
    }
    fn cpu_state(&self) -> Vec<CpuState> {
        self.core
            .qemu_cpus
            .iter()
            .map(|c| c.to_cpu_state(self.machine))
            .collect()
    }
    fn path(&self) -> Option<&Path> {
        self.file.path()
    }
}

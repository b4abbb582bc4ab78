//! Writes Windows crash dumps from guest-physical memory by the documented layout (the
//! `builder` feature): full (type 1, runs) and bitmap (types 5 and 6) dumps, 32- and
//! 64-bit. The corpus samples, the real-guest test and the benches turn QEMU's ELF cores
//! into dumps with it; Volatility 3's crash layers are the check that the layout is right.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{Error, FileLayer, Layer, Result};

use crate::header::Width;
use crate::raw::*;

/// Which kind of dump to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Type 1: the header's runs, the pages after the header in run order.
    Full,
    /// Type 5: a complete dump with an `FDMP` bitmap.
    BitmapFull,
    /// Type 6: a kernel dump with an `SDMP` bitmap.
    BitmapKernel,
}

/// What goes into the header.
#[derive(Debug, Clone)]
pub struct Spec {
    /// 32- or 64-bit header.
    pub width: Width,
    /// Dump type.
    pub kind: Kind,
    /// `DirectoryTableBase` (CR3).
    pub cr3: u64,
    /// `PaeEnabled` (32-bit headers).
    pub pae: bool,
    /// `BugCheckCode` and its four parameters.
    pub bug_check: (u32, [u64; 4]),
    /// `KdDebuggerDataBlock`, `PsActiveProcessHead`, `PsLoadedModuleList`, `PfnDataBase`.
    pub kernel: [u64; 4],
    /// `NumberProcessors`.
    pub processors: u32,
    /// `SystemTime` (FILETIME).
    pub system_time: u64,
    /// `Comment`.
    pub comment: String,
}

impl Spec {
    /// A spec with recognisable placeholder kernel fields (the guests dumped are Linux:
    /// there is no Windows kernel whose addresses the header could name).
    pub fn new(width: Width, kind: Kind, cr3: u64, pae: bool) -> Spec {
        let k = match width {
            Width::Bits32 => 0x8000_0000u64,
            Width::Bits64 => 0xffff_f800_0000_0000u64,
        };
        Spec {
            width,
            kind,
            cr3,
            pae,
            // MANUALLY_INITIATED_CRASH1 (as written on a user's request).
            bug_check: (0xdead_dead, [1, 2, 3, 4]),
            kernel: [k + 0x4b_1000, k + 0x4c_2000, k + 0x4d_3000, k + 0x2000_0000],
            processors: 1,
            // 2024-01-02T03:04:05Z.
            system_time: (1_704_164_645 + 11_644_473_600) * 10_000_000,
            comment: "vmsnap-windump builder".into(),
        }
    }
}

/// Page runs `(first page frame, pages)` covering `[start, start + len)` byte ranges,
/// rounded out to pages, sorted and merged.
pub fn page_runs(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = ranges
        .iter()
        .filter(|r| r.1 > 0)
        .map(|&(s, l)| (s / PAGE, (s + l).div_ceil(PAGE)))
        .collect();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out.into_iter().map(|(s, e)| (s, e - s)).collect()
}

fn io(e: std::io::Error) -> Error {
    Error::from(e)
}

/// Writes a dump of the pages `runs` (`(first page frame, pages)`, sorted, disjoint) of
/// `mem` to `out`; pages past the end of `mem` are written as zeros. Returns the bytes
/// written.
pub fn write(
    mem: &dyn Layer,
    runs: &[(u64, u64)],
    spec: &Spec,
    out: &mut dyn Write,
) -> Result<u64> {
    let l = spec.width.layout();
    let pages: u64 = runs.iter().map(|r| r.1).sum();
    let frames = runs.last().map(|r| r.0 + r.1).unwrap_or(0);
    if spec.width == Width::Bits32
        && (frames > u64::from(u32::MAX) || spec.cr3 > u64::from(u32::MAX))
    {
        return Err(Error::unsupported(
            "a 32-bit dump holds page frames and CR3 below 2^32 only",
        ));
    }
    let mut head = Vec::new();
    // Windows fills the unused header with "PAGE".
    for _ in 0..l.header_bytes / 4 {
        head.extend_from_slice(SIGNATURE);
    }
    let put = |h: &mut Vec<u8>, at: u64, bytes: &[u8]| {
        h[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    };
    let word = |h: &mut Vec<u8>, at: u64, v: u64| match spec.width {
        Width::Bits32 => {
            let v = u32::try_from(v).unwrap_or(u32::MAX);
            h[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes());
        }
        Width::Bits64 => h[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes()),
    };
    let (valid, machine) = match spec.width {
        Width::Bits32 => (VALID_DUMP32, MACHINE_I386),
        Width::Bits64 => (VALID_DUMP64, MACHINE_AMD64),
    };
    put(&mut head, 4, valid);
    put(&mut head, 8, &0xfu32.to_le_bytes());
    put(&mut head, 0xc, &19041u32.to_le_bytes());
    word(&mut head, l.directory_table_base, spec.cr3);
    word(&mut head, l.pfn_data_base, spec.kernel[3]);
    word(&mut head, l.ps_loaded_module_list, spec.kernel[2]);
    word(&mut head, l.ps_active_process_head, spec.kernel[1]);
    put(&mut head, l.machine_image_type, &machine.to_le_bytes());
    put(
        &mut head,
        l.number_processors,
        &spec.processors.to_le_bytes(),
    );
    put(&mut head, l.bug_check_code, &spec.bug_check.0.to_le_bytes());
    for (i, p) in spec.bug_check.1.iter().enumerate() {
        word(&mut head, l.bug_check_parameters + i as u64 * l.word, *p);
    }
    put(&mut head, l.version_user, &[0u8; VERSION_USER_BYTES]);
    if let Some(o) = l.pae_enabled {
        put(&mut head, o, &[u8::from(spec.pae), 0, 0, 0]);
    }
    head[l.kd_secondary_version as usize] = 0;
    word(&mut head, l.kd_debugger_data_block, spec.kernel[0]);
    // The run buffer: zeroed, then the runs for a full dump (bitmap dumps have none).
    put(
        &mut head,
        l.memory_block,
        &[0u8; MEMORY_BLOCK_BYTES as usize],
    );
    let dump_type = match spec.kind {
        Kind::Full => {
            if runs.len() as u64 > l.max_runs() {
                return Err(Error::limit("runs", runs.len() as u64, l.max_runs()));
            }
            put(
                &mut head,
                l.memory_block,
                &(runs.len() as u32).to_le_bytes(),
            );
            match spec.width {
                Width::Bits32 => put(&mut head, l.number_of_pages, &(pages as u32).to_le_bytes()),
                Width::Bits64 => put(&mut head, l.number_of_pages, &pages.to_le_bytes()),
            }
            for (i, &(base, count)) in runs.iter().enumerate() {
                let at = l.first_run + i as u64 * l.run_bytes();
                word(&mut head, at, base);
                word(&mut head, at + l.word, count);
            }
            DUMP_TYPE_FULL
        }
        Kind::BitmapFull => DUMP_TYPE_BITMAP_FULL,
        Kind::BitmapKernel => DUMP_TYPE_BITMAP_KERNEL,
    };
    let mut comment = [0u8; COMMENT_BYTES];
    let c = spec.comment.as_bytes();
    comment[..c.len().min(COMMENT_BYTES - 1)].copy_from_slice(&c[..c.len().min(COMMENT_BYTES - 1)]);
    put(&mut head, l.comment, &comment);
    put(&mut head, l.dump_type, &dump_type.to_le_bytes());
    for f in [
        l.mini_dump_fields,
        l.secondary_data_state,
        l.product_type,
        l.suite_mask,
        l.writer_status,
    ] {
        put(&mut head, f, &0u32.to_le_bytes());
    }
    put(&mut head, l.product_type, &1u32.to_le_bytes());
    put(
        &mut head,
        l.system_up_time,
        &(3600u64 * 10_000_000).to_le_bytes(),
    );
    put(&mut head, l.system_time, &spec.system_time.to_le_bytes());
    // The exception record: a breakpoint at the kernel base.
    put(&mut head, l.exception_record, &0x8000_0003u32.to_le_bytes());
    word(&mut head, l.exception_record + 8 + l.word, spec.kernel[0]);

    // Bitmap dumps: the summary header, the bitmap, padding to a page.
    let mut summary = Vec::new();
    if spec.kind != Kind::Full {
        let bitmap_bytes = frames.div_ceil(64) * 8;
        let data = (l.header_bytes + summary::BITMAP + bitmap_bytes).div_ceil(PAGE) * PAGE;
        summary = vec![0u8; (data - l.header_bytes) as usize];
        let sig = if spec.kind == Kind::BitmapFull {
            summary::FULL
        } else {
            summary::KERNEL
        };
        summary[..4].copy_from_slice(sig);
        summary[4..8].copy_from_slice(summary::VALID_DUMP);
        let at = |o: u64| o as usize;
        summary[at(summary::HEADER_SIZE)..at(summary::HEADER_SIZE) + 8]
            .copy_from_slice(&data.to_le_bytes());
        summary[at(summary::PAGES)..at(summary::PAGES) + 8].copy_from_slice(&pages.to_le_bytes());
        summary[at(summary::BITMAP_SIZE)..at(summary::BITMAP_SIZE) + 8]
            .copy_from_slice(&frames.to_le_bytes());
        for &(base, count) in runs {
            for pfn in base..base + count {
                summary[at(summary::BITMAP) + (pfn / 8) as usize] |= 1 << (pfn % 8);
            }
        }
    }
    let total = l.header_bytes + summary.len() as u64 + pages * PAGE;
    put(&mut head, l.required_dump_space, &total.to_le_bytes());
    out.write_all(&head).map_err(io)?;
    out.write_all(&summary).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    for &(base, count) in runs {
        let (mut at, end) = (base * PAGE, (base + count) * PAGE);
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            let chunk = &mut buf[..n];
            chunk.fill(0);
            let have = mem.len().saturating_sub(at).min(n as u64) as usize;
            if have > 0 {
                mem.read_at(at, &mut chunk[..have])?;
            }
            out.write_all(chunk).map_err(io)?;
            at += n as u64;
        }
    }
    Ok(total)
}

/// What a dump is built from: guest-physical memory and the pages to write.
#[derive(Debug)]
pub struct Source {
    /// Guest-physical memory.
    pub mem: Arc<dyn Layer>,
    /// `(first page frame, pages)`, sorted and disjoint.
    pub runs: Vec<(u64, u64)>,
    /// The first vCPU's CR3, as the source records it (0 when it records none).
    pub cr3: u64,
}

/// The guest-physical memory, page runs (its PT_LOADs rounded out to pages) and first
/// vCPU's CR3 (from its QEMU note) of a QEMU ELF core.
pub fn elf_source(core: &Path) -> Result<Source> {
    let elf = vmsnap_elf::ElfCore::open_layer(Arc::new(FileLayer::open(core)?))?;
    let ranges: Vec<(u64, u64)> = elf.loads().iter().map(|p| (p.paddr, p.filesz)).collect();
    let cr3 = elf.qemu_cpus().first().map(|c| c.cr[3]).unwrap_or(0);
    Ok(Source {
        mem: Arc::new(elf),
        runs: page_runs(&ranges),
        cr3,
    })
}

/// Writes the dump of the ELF core `core` (its PT_LOADs, rounded out to pages) to `out`;
/// `spec.cr3` is used as given. Returns the bytes written.
pub fn from_elf_core(core: &Path, spec: &Spec, out: &Path) -> Result<u64> {
    let src = elf_source(core)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(out)?);
    let n = write(src.mem.as_ref(), &src.runs, spec, &mut f)?;
    f.flush()?;
    Ok(n)
}

//! Writes Xen dump-core files by the documented layout (feature `builder`): the samples,
//! tests and benches are made with it, as no Xen runs here. It follows what
//! libxenguest's `xc_domain_dumpcore_via_callback` writes: the ELF header, seven section
//! headers (null, `.shstrtab`, `.note.Xen`, `.xen_prstatus`, `.xen_shared_info`,
//! `.xen_pages`, `.xen_pfn`/`.xen_p2m`), the four notes, the vCPU contexts, a zero
//! shared-info page, padding to a page, the pages, the table, then the section names.
//! It shares no code with the reader beyond the constants of `raw`.

use std::io::Write;

use vmsnap_core::{CpuState, Error, ExtentKind, Layer, Result};

use crate::raw::*;

/// The kind of domain to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// HVM: `.xen_pfn`, `XC_CORE_MAGIC_HVM`, `ctrlreg[3]` = the guest's CR3.
    Hvm,
    /// PV: `.xen_p2m` with gmfn = pfn + `gmfn_offset`, `XC_CORE_MAGIC`, `ctrlreg[3]` =
    /// the machine address of the CR3's frame.
    Pv,
}

/// What to write.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// HVM or PV.
    pub kind: Kind,
    /// `e_machine` (`EM_X86_64` writes x86-64 contexts, `EM_386` x86-32 ones).
    pub machine: u16,
    /// PV: machine frame of pfn 0 (gmfn = pfn + this).
    pub gmfn_offset: u64,
    /// Unused entries (`~0`, zero pages) appended to the table, as a live dump that lost
    /// pages writes.
    pub invalid_tail: u64,
}

impl Options {
    /// An x86-64 domain of `kind` without unused entries.
    pub fn new(kind: Kind) -> Self {
        Options {
            kind,
            machine: vmsnap_elf::EM_X86_64,
            gmfn_offset: 0x10_0000,
            invalid_tail: 0,
        }
    }
}

const PAGE: u64 = 4096;
const SHT_PROGBITS: u32 = 1;
const SHT_STRTAB: u32 = 3;
const SHT_NOTE: u32 = 7;

/// The pfns of every page of `mem` that holds data or zeros (not unallocated), ascending.
pub fn present_pfns(mem: &dyn Layer) -> Result<Vec<u64>> {
    let mut pfns: Vec<u64> = Vec::new();
    for e in mem.extents(0..mem.len())? {
        if e.kind == ExtentKind::Unallocated {
            continue;
        }
        let first = e.offset / PAGE;
        let last = (e.offset + e.len).div_ceil(PAGE);
        for p in first..last {
            if pfns.last() != Some(&p) {
                pfns.push(p);
            }
        }
    }
    Ok(pfns)
}

fn put(buf: &mut [u8], at: usize, v: &[u8]) {
    if let Some(d) = buf.get_mut(at..at + v.len()) {
        d.copy_from_slice(v);
    }
}

fn context(cpu: &CpuState, o: &Options, cr3: u64) -> Vec<u8> {
    let l = if o.machine == vmsnap_elf::EM_X86_64 {
        &CONTEXT_X86_64
    } else {
        &CONTEXT_X86_32
    };
    let mut c = vec![0u8; CONTEXT_X86_64.size as usize];
    let w = |c: &mut Vec<u8>, at: usize, size: usize, v: u64| {
        put(c, at, v.to_le_bytes().get(..size).unwrap_or_default());
    };
    w(&mut c, l.flags, l.word, VGCF_ONLINE | 1);
    let reg = |n: &str| {
        // x86-32 names map to the 64-bit ones the CPU state uses.
        let wide = match n {
            "eflags" => "rflags".to_string(),
            n if n.starts_with('e') => format!("r{}", &n[1..]),
            n => n.to_string(),
        };
        cpu.regs
            .get(&wide)
            .or(cpu.regs.get(n))
            .copied()
            .unwrap_or(0)
    };
    for &(name, at, size) in l.regs {
        w(&mut c, l.user_regs + at, size, reg(name));
    }
    let cr = [cpu.cr0, 0, reg("cr2"), cr3, cpu.cr4, 0, 0, 0];
    for (k, v) in cr.iter().enumerate() {
        w(&mut c, l.ctrlreg + k * l.word, l.word, *v);
    }
    for &(name, at) in l.bases {
        let v = match name {
            "fs_base" => reg("fs_base"),
            "gs_base_kernel" => reg("gs_base"),
            _ => reg("kernel_gs_base"),
        };
        w(&mut c, at, 8, v);
    }
    c
}

fn note(out: &mut Vec<u8>, ty: u32, desc: &[u8]) {
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(b"Xen\0");
    out.extend_from_slice(desc);
}

fn cstr(buf: &mut [u8], at: usize, s: &str) {
    put(buf, at, s.as_bytes());
}

fn shdr(out: &mut Vec<u8>, name: u32, ty: u32, off: u64, size: u64, align: u64, ent: u64) {
    out.extend_from_slice(&name.to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&[0u8; 16]); // flags, addr
    out.extend_from_slice(&off.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // link, info
    out.extend_from_slice(&align.to_le_bytes());
    out.extend_from_slice(&ent.to_le_bytes());
}

/// Writes the dump-core of `mem` (guest-physical) with one context per entry of `cpus`
/// (at least one: a zeroed context when `cpus` is empty) to `out`.
pub fn write(mem: &dyn Layer, cpus: &[CpuState], o: &Options, out: &mut dyn Write) -> Result<()> {
    let pfns = present_pfns(mem)?;
    let zero_cpu = CpuState {
        index: 0,
        arch: "x86_64",
        cr0: 0,
        cr3: 0,
        cr4: 0,
        efer: 0,
        regs: Default::default(),
    };
    let cpus: Vec<&CpuState> = if cpus.is_empty() {
        vec![&zero_cpu]
    } else {
        cpus.iter().collect()
    };
    let nr_pages = pfns.len() as u64 + o.invalid_tail;
    let (table_name, esize): (&str, u64) = match o.kind {
        Kind::Hvm => (SEC_PFN, PFN_ENTRY_SIZE),
        Kind::Pv => (SEC_P2M, P2M_ENTRY_SIZE),
    };
    let names: Vec<&str> = vec![
        "",
        ".shstrtab",
        SEC_NOTE,
        SEC_PRSTATUS,
        SEC_SHARED_INFO,
        SEC_PAGES,
        table_name,
    ];
    let mut strtab = Vec::new();
    let mut name_at = Vec::new();
    for n in &names {
        name_at.push(strtab.len() as u32);
        strtab.extend_from_slice(n.as_bytes());
        strtab.push(0);
    }
    let name_at = |i: usize| name_at.get(i).copied().unwrap_or(0);

    // Notes.
    let mut notes = Vec::new();
    note(&mut notes, XEN_ELFNOTE_DUMPCORE_NONE, &[]);
    let mut h = Vec::new();
    let magic = match o.kind {
        Kind::Hvm => XC_CORE_MAGIC_HVM,
        Kind::Pv => XC_CORE_MAGIC,
    };
    for v in [magic, cpus.len() as u64, nr_pages, PAGE] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    note(&mut notes, XEN_ELFNOTE_DUMPCORE_HEADER, &h);
    let mut ver = vec![0u8; VERSION_DESC_SIZE];
    put(&mut ver, 0, &4u64.to_le_bytes());
    put(&mut ver, 8, &19u64.to_le_bytes());
    cstr(&mut ver, VERSION_EXTRA_AT, ".0-vmsnap");
    cstr(&mut ver, VERSION_COMPILER_AT, "vmsnap-xen builder");
    cstr(&mut ver, VERSION_DATE_AT, "2026-12-07");
    cstr(
        &mut ver,
        VERSION_CAPS_AT,
        "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64",
    );
    cstr(&mut ver, VERSION_CHANGESET_AT, "builder");
    put(
        &mut ver,
        VERSION_VIRT_START_AT,
        &0xffff_8000_0000_0000u64.to_le_bytes(),
    );
    put(&mut ver, VERSION_DESC_SIZE - 8, &PAGE.to_le_bytes());
    note(&mut notes, XEN_ELFNOTE_DUMPCORE_XEN_VERSION, &ver);
    note(
        &mut notes,
        XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION,
        &1u64.to_le_bytes(),
    );

    // Contexts.
    let ctx_size = CONTEXT_X86_64.size;
    let mut prstatus = Vec::new();
    for c in &cpus {
        let cr3 = match o.kind {
            Kind::Hvm => c.cr3,
            Kind::Pv => ((c.cr3 >> 12) + o.gmfn_offset) << 12,
        };
        prstatus.extend(context(c, o, cr3));
    }

    // Offsets.
    let shnum = names.len() as u64;
    let notes_at = 64 + shnum * 64;
    let prstatus_at = notes_at + notes.len() as u64;
    let shinfo_at = prstatus_at + prstatus.len() as u64;
    let pages_at = (shinfo_at + PAGE).div_ceil(PAGE) * PAGE;
    let pages_len = nr_pages * PAGE;
    let table_at = pages_at + pages_len;
    let table_len = nr_pages * esize;
    let strtab_at = table_at + table_len;

    let mut head = Vec::new();
    head.extend_from_slice(b"\x7fELF\x02\x01\x01\x00\x01");
    head.resize(16, 0);
    head.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    head.extend_from_slice(&o.machine.to_le_bytes());
    head.extend_from_slice(&1u32.to_le_bytes());
    head.extend_from_slice(&0u64.to_le_bytes()); // entry
    head.extend_from_slice(&0u64.to_le_bytes()); // phoff
    head.extend_from_slice(&64u64.to_le_bytes()); // shoff
    head.extend_from_slice(&0u32.to_le_bytes()); // flags
    head.extend_from_slice(&64u16.to_le_bytes());
    head.extend_from_slice(&56u16.to_le_bytes());
    head.extend_from_slice(&0u16.to_le_bytes()); // phnum
    head.extend_from_slice(&64u16.to_le_bytes());
    head.extend_from_slice(&(shnum as u16).to_le_bytes());
    head.extend_from_slice(&1u16.to_le_bytes()); // shstrndx
    shdr(&mut head, 0, 0, 0, 0, 0, 0);
    shdr(
        &mut head,
        name_at(1),
        SHT_STRTAB,
        strtab_at,
        strtab.len() as u64,
        0,
        0,
    );
    shdr(
        &mut head,
        name_at(2),
        SHT_NOTE,
        notes_at,
        notes.len() as u64,
        0,
        0,
    );
    shdr(
        &mut head,
        name_at(3),
        SHT_PROGBITS,
        prstatus_at,
        prstatus.len() as u64,
        8,
        ctx_size,
    );
    shdr(
        &mut head,
        name_at(4),
        SHT_PROGBITS,
        shinfo_at,
        PAGE,
        8,
        PAGE,
    );
    shdr(
        &mut head,
        name_at(5),
        SHT_PROGBITS,
        pages_at,
        pages_len,
        PAGE,
        PAGE,
    );
    shdr(
        &mut head,
        name_at(6),
        SHT_PROGBITS,
        table_at,
        table_len,
        8,
        esize,
    );
    head.extend_from_slice(&notes);
    head.extend_from_slice(&prstatus);
    head.resize(pages_at as usize, 0);
    let io = |e: std::io::Error| Error::from(e);
    out.write_all(&head).map_err(io)?;

    let mut page = vec![0u8; PAGE as usize];
    for &p in &pfns {
        let at = p * PAGE;
        page.fill(0);
        let n = (mem.len().saturating_sub(at)).min(PAGE) as usize;
        mem.read_at(at, page.get_mut(..n).unwrap_or_default())?;
        out.write_all(&page).map_err(io)?;
    }
    page.fill(0);
    for _ in 0..o.invalid_tail {
        out.write_all(&page).map_err(io)?;
    }
    let mut table = Vec::with_capacity(table_len as usize);
    for &p in &pfns {
        table.extend_from_slice(&p.to_le_bytes());
        if o.kind == Kind::Pv {
            table.extend_from_slice(&(p + o.gmfn_offset).to_le_bytes());
        }
    }
    for _ in 0..o.invalid_tail {
        for _ in 0..esize / 8 {
            table.extend_from_slice(&INVALID_PFN.to_le_bytes());
        }
    }
    out.write_all(&table).map_err(io)?;
    out.write_all(&strtab).map_err(io)?;
    Ok(())
}

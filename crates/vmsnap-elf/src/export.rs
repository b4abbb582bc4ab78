//! Guest-physical memory written as an ELF64 core, laid out as QEMU's `dump-guest-memory`
//! lays out its own (dump/dump.c, target/i386/arch_dump.c), so that vmsnap, Volatility,
//! gdb and crash read it back:
//!
//! ```text
//! ELF header | PT_NOTE | PT_LOAD … | [section header 0: PN_XNUM count] | notes | memory
//! ```
//!
//! * One `PT_LOAD` per contiguous range of the memory's extents that is not a hole
//!   (data, zero and unavailable extents merged): `p_paddr` = `p_vaddr` = the guest
//!   address (QEMU's choice without paging), `p_filesz` = `p_memsz`. Zero pages inside a
//!   range stay in the segment and become holes of the sparse output, so the guest's RAM
//!   layout keeps a handful of segments instead of one per run of non-zero pages, and
//!   zero pages read back as memory that is present, as in the source.
//! * Each segment's file offset is congruent to its address modulo 4 KiB, so pages stay
//!   page-aligned in the file.
//! * Notes, when the memory records CPU state: per vCPU a `CORE`/`NT_PRSTATUS` note (pid =
//!   index + 1), then per vCPU a `QEMU` note (`QEMUCPUState` version 1); `e_machine` is
//!   `EM_X86_64` with the x86-64 prstatus when the first vCPU is in long mode, else
//!   `EM_386` with the i386 one (QEMU's rule). No CPU state, no notes.
//!
//! The result is a [`Composed`] layer of the file's bytes: any layer copier writes it
//! (sparse, in parallel, to a stream).

use std::sync::Arc;

use vmsnap_core::compose::{Composed, ComposedBuilder};
use vmsnap_core::{present_ranges, AddressSpace, CpuState, Error, ErrorKind, Layer, Result};

use crate::cpu::{Prstatus, QemuCpu};
use crate::raw::*;

/// The name of the exported layer.
pub const EXPORT_NAME: &str = "elf-export";

/// Page size the segments' file offsets are aligned to (relative to their address).
const PAGE: u64 = 4096;
/// `EV_CURRENT`.
const EV_CURRENT: u8 = 1;

/// Lays out `memory` (a guest-physical layer) as an ELF64 core.
pub fn export(memory: Arc<dyn Layer>) -> Result<Composed> {
    if memory.space() != AddressSpace::GuestPhysical {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "layer {} is {} space, not guest-physical memory: only memory is written as an ELF core",
                memory.name(),
                memory.space().as_str()
            ),
        ));
    }
    let ranges = present_ranges(&memory.extents(0..memory.len())?);
    let (machine, notes) = cpu_notes(&memory.cpu_state())?;
    let phnum = (ranges.len() as u64).saturating_add(u64::from(!notes.is_empty()));
    if phnum > MAX_PROGRAM_HEADERS {
        return Err(Error::limit(
            "number of program headers",
            phnum,
            MAX_PROGRAM_HEADERS,
        ));
    }
    // The count goes into section header 0 when it does not fit e_phnum (as QEMU does).
    let xnum = phnum >= u64::from(PN_XNUM);
    // phnum <= MAX_PROGRAM_HEADERS (2^22): none of these overflow.
    let phoff = EHDR64_SIZE as u64;
    let shoff = phoff + phnum * u64::from(PHDR64_SIZE);
    let notes_off = shoff + if xnum { u64::from(SHDR64_SIZE) } else { 0 };
    let header_len = notes_off + notes.len() as u64;

    // Where each range's bytes go.
    let overflow = || {
        Error::new(
            ErrorKind::InvalidArgument,
            "the ELF core would exceed 2^64 bytes",
        )
    };
    let mut offsets = Vec::with_capacity(ranges.len());
    let mut cursor = header_len;
    for r in &ranges {
        let at = cursor
            .checked_add(r.start.wrapping_sub(cursor) % PAGE)
            .ok_or_else(overflow)?;
        offsets.push(at);
        cursor = at.checked_add(r.end - r.start).ok_or_else(overflow)?;
    }

    let mut head = Vec::with_capacity(header_len as usize);
    // ELF header.
    head.extend_from_slice(&ELF_MAGIC);
    head.extend_from_slice(&[ELFCLASS64, ELFDATA2LSB, EV_CURRENT]);
    head.resize(16, 0);
    head.extend_from_slice(&ET_CORE.to_le_bytes());
    head.extend_from_slice(&machine.to_le_bytes());
    head.extend_from_slice(&u32::from(EV_CURRENT).to_le_bytes());
    head.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    head.extend_from_slice(&phoff.to_le_bytes());
    head.extend_from_slice(&(if xnum { shoff } else { 0 }).to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    head.extend_from_slice(&(EHDR64_SIZE as u16).to_le_bytes());
    head.extend_from_slice(&PHDR64_SIZE.to_le_bytes());
    head.extend_from_slice(&(phnum.min(u64::from(PN_XNUM)) as u16).to_le_bytes());
    head.extend_from_slice(&(if xnum { SHDR64_SIZE } else { 0 }).to_le_bytes());
    head.extend_from_slice(&u16::from(xnum).to_le_bytes()); // e_shnum
    head.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
                                                 // Program headers.
    if !notes.is_empty() {
        let len = notes.len() as u64;
        program_header(&mut head, PT_NOTE, notes_off, 0, len);
    }
    for (r, &at) in ranges.iter().zip(&offsets) {
        program_header(&mut head, PT_LOAD, at, r.start, r.end - r.start);
    }
    if xnum {
        // Section header 0: only sh_info (at 44) holds the program header count.
        let mut sh = [0u8; SHDR64_SIZE as usize];
        if let Some(info) = sh.get_mut(44..48) {
            info.copy_from_slice(&(phnum as u32).to_le_bytes());
        }
        head.extend_from_slice(&sh);
    }
    head.extend_from_slice(&notes);

    let mut b = ComposedBuilder::new();
    b.push_bytes(&head)?;
    for (r, &at) in ranges.iter().zip(&offsets) {
        b.pad_to(at)?;
        b.push_lower(r.start, r.end - r.start)?;
    }
    b.build(EXPORT_NAME, memory)
}

/// Appends one `Elf64_Phdr`; `p_flags` and `p_align` are 0 and `p_vaddr` = `p_paddr`, as
/// QEMU writes them.
fn program_header(head: &mut Vec<u8>, p_type: u32, offset: u64, paddr: u64, len: u64) {
    head.extend_from_slice(&p_type.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes()); // p_flags
    head.extend_from_slice(&offset.to_le_bytes());
    head.extend_from_slice(&paddr.to_le_bytes()); // p_vaddr
    head.extend_from_slice(&paddr.to_le_bytes());
    head.extend_from_slice(&len.to_le_bytes()); // p_filesz
    head.extend_from_slice(&len.to_le_bytes()); // p_memsz
    head.extend_from_slice(&0u64.to_le_bytes()); // p_align
}

/// `e_machine` and the notes for `cpus`: per vCPU a prstatus, then per vCPU a QEMU note.
fn cpu_notes(cpus: &[CpuState]) -> Result<(u16, Vec<u8>)> {
    if let Some(c) = cpus.iter().find(|c| !matches!(c.arch, "x86" | "x86_64")) {
        return Err(Error::unsupported(format!(
            "vCPU {} records {} registers; only x86 CPU state can be written as ELF notes",
            c.index, c.arch
        )));
    }
    let long = cpus.first().is_some_and(CpuState::long_mode);
    let machine = if long || cpus.is_empty() {
        EM_X86_64
    } else {
        EM_386
    };
    let mut notes = Vec::new();
    for c in cpus {
        let desc = Prstatus::to_bytes(c, c.index.saturating_add(1), long);
        note(&mut notes, b"CORE\0", NT_PRSTATUS, &desc);
    }
    for c in cpus {
        note(
            &mut notes,
            b"QEMU\0",
            0,
            &QemuCpu::from_cpu_state(c).to_bytes(),
        );
    }
    Ok((machine, notes))
}

/// Appends one note, name and descriptor padded to 4 bytes.
fn note(out: &mut Vec<u8>, name: &[u8], n_type: u32, desc: &[u8]) {
    for x in [name.len() as u32, desc.len() as u32, n_type] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(name);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use vmsnap_core::{Extent, ExtentKind, LayerExt, MemSource};

    use super::*;
    use crate::ElfCore;

    /// Memory with holes and a recorded vCPU, for the round trip.
    #[derive(Debug)]
    struct Memory {
        bytes: Vec<u8>,
        extents: Vec<Extent>,
        cpus: Vec<CpuState>,
    }

    impl Layer for Memory {
        fn name(&self) -> &str {
            "memory"
        }
        fn space(&self) -> AddressSpace {
            AddressSpace::GuestPhysical
        }
        fn len(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
            let at = offset as usize;
            buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
            Ok(())
        }
        fn extents(&self, _range: std::ops::Range<u64>) -> Result<Vec<Extent>> {
            Ok(self.extents.clone())
        }
        fn lower(&self) -> Vec<Arc<dyn Layer>> {
            Vec::new()
        }
        fn describe(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
        fn cpu_state(&self) -> Vec<CpuState> {
            self.cpus.clone()
        }
    }

    fn memory(cpus: Vec<CpuState>) -> Arc<dyn Layer> {
        let mut bytes = vec![0u8; 0x6000];
        for (i, b) in bytes.iter_mut().enumerate().take(0x1800).skip(0x1000) {
            *b = i as u8 | 1;
        }
        bytes[0x5fff] = 0x42;
        Arc::new(Memory {
            bytes,
            extents: vec![
                Extent::of(ExtentKind::Unallocated, 0, 0x1000),
                Extent::data(0x1000, 0x800, None),
                Extent::of(ExtentKind::Zero, 0x1800, 0x800),
                Extent::of(ExtentKind::Unallocated, 0x2000, 0x3000),
                Extent::data(0x5000, 0x1000, None),
            ],
            cpus,
        })
    }

    fn vcpu(index: u32) -> CpuState {
        let mut regs = BTreeMap::new();
        for (i, name) in ["rax", "rbx", "rsp", "rip", "rflags", "r15"]
            .iter()
            .enumerate()
        {
            regs.insert((*name).to_string(), 0xffff_8000_0000_0000 + i as u64);
        }
        regs.insert("cs".into(), 0x10);
        regs.insert("cs_flags".into(), 0x20_9b00);
        regs.insert("gdtr_base".into(), 0xffff_f000_0000_1000);
        regs.insert("gdtr_limit".into(), 0x7f);
        regs.insert("cr2".into(), 0x1234);
        regs.insert("kernel_gs_base".into(), 0xffff_8880_0000_0000);
        CpuState {
            index,
            arch: "x86_64",
            cr0: 0x8005_0033,
            cr3: 0x10_0000 + u64::from(index) * 0x1000,
            cr4: 0x3406f0,
            efer: 0xd01,
            regs,
        }
    }

    fn reopen(c: Composed) -> ElfCore {
        let mut file = vec![0u8; c.len() as usize];
        c.read_at(0, &mut file).unwrap();
        let file: Arc<dyn Layer> =
            Arc::new(vmsnap_core::FileLayer::new(Arc::new(MemSource::new(file))));
        ElfCore::open_layer(file).unwrap()
    }

    #[test]
    fn round_trips_present_bytes_and_cpu_state() {
        let mem = memory(vec![vcpu(0), vcpu(1)]);
        let c = export(mem.clone()).unwrap();
        // Header, then page-aligned data; the padding and zero pages are holes.
        let e = c.extents(0..c.len()).unwrap();
        assert_eq!(e[0].kind, ExtentKind::Data);
        assert!(e
            .iter()
            .any(|x| x.kind == ExtentKind::Zero && x.len == 0x800));
        let core = reopen(c);
        assert_eq!(core.header().machine, EM_X86_64);
        let loads: Vec<(u64, u64)> = core.loads().iter().map(|p| (p.paddr, p.filesz)).collect();
        assert_eq!(loads, vec![(0x1000, 0x1000), (0x5000, 0x1000)]);
        assert!(core
            .loads()
            .iter()
            .all(|p| p.offset % PAGE == p.paddr % PAGE));
        assert_eq!(core.len(), 0x6000);
        let mut want = vec![0u8; 0x6000];
        let mut got = vec![0u8; 0x6000];
        mem.read_at(0, &mut want).unwrap();
        core.read_at(0, &mut got).unwrap();
        assert_eq!(got, want);
        let holes: Vec<_> = core
            .extents(0..0x6000)
            .unwrap()
            .into_iter()
            .filter(|x| x.kind == ExtentKind::Unallocated)
            .map(|x| (x.offset, x.len))
            .collect();
        assert_eq!(holes, vec![(0, 0x1000), (0x2000, 0x3000)]);

        let cpus = core.cpu_state();
        assert_eq!(cpus.len(), 2);
        for (got, want) in cpus.iter().zip([vcpu(0), vcpu(1)]) {
            assert_eq!((got.cr0, got.cr3, got.cr4), (want.cr0, want.cr3, want.cr4));
            for name in [
                "rax",
                "rbx",
                "rsp",
                "rip",
                "rflags",
                "r15",
                "cs",
                "cr2",
                "kernel_gs_base",
            ] {
                assert_eq!(got.regs[name], want.regs[name], "{name}");
            }
            assert_eq!(got.regs["gdt_base"], want.regs["gdtr_base"]);
            assert_eq!(got.regs["gdt_limit"], 0x7f);
            assert_eq!(got.regs["cs_flags"], 0x20_9b00);
            // Long mode with NXE is what the reader infers from an x86-64 core.
            assert_eq!(got.efer & 0xd00, 0xd00);
        }
        let pr = core.prstatus();
        assert_eq!(pr.len(), 2);
        assert_eq!((pr[0].pid, pr[1].pid), (1, 2));
        assert_eq!(pr[1].layout, "x86_64");
        assert_eq!(pr[1].regs["rip"], vcpu(1).regs["rip"]);
        assert_eq!(pr[1].regs["eflags"], vcpu(1).regs["rflags"]);
        assert_eq!(pr[1].regs["orig_rax"], 0);
    }

    #[test]
    fn a_32_bit_vcpu_gets_the_i386_layout_and_no_state_no_notes() {
        let mut c32 = vcpu(0);
        c32.efer = 0;
        c32.cr4 = 0x10; // PSE, no PAE
        c32.regs.insert("rip".into(), 0xc010_0000);
        let core = reopen(export(memory(vec![c32])).unwrap());
        assert_eq!(core.header().machine, EM_386);
        assert_eq!(core.prstatus()[0].layout, "i386");
        assert_eq!(core.prstatus()[0].regs["eip"], 0xc010_0000);
        assert_eq!(core.cpu_state()[0].cr3, 0x10_0000);
        assert_eq!(core.cpu_state()[0].efer, 0);

        let core = reopen(export(memory(Vec::new())).unwrap());
        assert!(core.notes().is_empty());
        assert_eq!(core.loads().len(), 2);
    }

    #[test]
    fn many_ranges_use_pn_xnum() {
        let n = 0x1_0000u64;
        let extents: Vec<Extent> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    Extent::data(i * 16, 16, None)
                } else {
                    Extent::of(ExtentKind::Unallocated, i * 16, 16)
                }
            })
            .collect();
        let mem: Arc<dyn Layer> = Arc::new(Memory {
            bytes: (0..n * 16).map(|i| (i / 16) as u8).collect(),
            extents,
            cpus: Vec::new(),
        });
        let core = reopen(export(mem).unwrap());
        assert_eq!(core.loads().len(), (n / 2) as usize);
        assert_eq!(core.read_vec(0x20, 16, 16, "t").unwrap(), vec![2u8; 16]);
    }

    #[test]
    fn other_spaces_and_architectures_are_refused() {
        let file: Arc<dyn Layer> = Arc::new(vmsnap_core::FileLayer::new(Arc::new(MemSource::new(
            vec![0; 16],
        ))));
        assert_eq!(export(file).unwrap_err().kind(), ErrorKind::InvalidArgument);
        let mut c = vcpu(0);
        c.arch = "aarch64";
        assert_eq!(
            export(memory(vec![c])).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}

//! VirtualBox `dumpvmcore` cores: the `VBCORE` descriptor and `VBCPU` registers read back
//! field by field as `include/VBox/vmm/dbgfcorefmt.h` lays them out (a core written here
//! with a distinct value in every field), and the committed samples (corpus/elf/vbox-*.elf, written
//! by make-vbox.py around QEMU cores) read their source's RAM and stack the x86 layer.
//! Volatility 3's ELF layer reading the samples is
//! crates/vmsnap-python/tests/test_volatility_xen.py.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{FileLayer, Layer, MemSource};
use vmsnap_elf::ElfCore;

fn open(bytes: Vec<u8>) -> ElfCore {
    ElfCore::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))))).unwrap()
}

fn note(name: &str, ty: u32, desc: &[u8]) -> Vec<u8> {
    // As DBGFCoreWrite.cpp: n_namesz without the NUL, name and descriptor padded to 8.
    let mut n = Vec::new();
    n.extend_from_slice(&(name.len() as u32).to_le_bytes());
    n.extend_from_slice(&(desc.len().div_ceil(8) as u32 * 8).to_le_bytes());
    n.extend_from_slice(&ty.to_le_bytes());
    let mut nm = name.as_bytes().to_vec();
    nm.push(0);
    nm.resize(nm.len().div_ceil(8) * 8, 0);
    n.extend(nm);
    let mut d = desc.to_vec();
    d.resize(d.len().div_ceil(8) * 8, 0);
    n.extend(d);
    n
}

/// A DBGFCORECPU (format 1.6) whose u64 at byte offset `o` is `0x5a00_0000_0000 + o`
/// wherever a u64 lies, with the u32/u16 fields of selectors set apart.
fn cpu(seed: u64) -> Vec<u8> {
    let mut c = vec![0u8; 584 + 64];
    for o in (0..576).step_by(8) {
        c[o..o + 8].copy_from_slice(&(seed + o as u64).to_le_bytes());
    }
    // DBGFCORESEL at 144 + 24 k (cs ds es fs gs ss) and 416/440 (ldtr, tr): base u64,
    // limit u32, attr u32, sel u16.
    for at in [144, 168, 192, 216, 240, 264, 416, 440] {
        c[at + 8..at + 12].copy_from_slice(&(0x1000 + at as u32).to_le_bytes());
        c[at + 12..at + 16].copy_from_slice(&(0x2000 + at as u32).to_le_bytes());
        c[at + 16..at + 24].copy_from_slice(&[(at & 0xff) as u8, 0x30, 0, 0, 0, 0, 0, 0]);
    }
    // gdtr/idtr: addr u64, cb u32.
    for at in [384, 400] {
        c[at + 8..at + 16].copy_from_slice(&(0x3000 + at as u64).to_le_bytes());
    }
    // Paging on with PAE, long mode: a CR0/CR4/EFER the x86 layer accepts.
    c[288..296].copy_from_slice(&0x8005_0033u64.to_le_bytes());
    c[312..320].copy_from_slice(&0x6b0u64.to_le_bytes());
    c[488..496].copy_from_slice(&0xd01u64.to_le_bytes());
    c
}

fn core(fmt: u32, cpus: &[Vec<u8>], declared: u32) -> Vec<u8> {
    let mut notes = Vec::new();
    let mut d = Vec::new();
    for v in [
        0xc01a_c0de,
        fmt,
        24,
        (6 << 24) | (1 << 16) | 50,
        161_095,
        declared,
    ] {
        d.extend_from_slice(&u32::to_le_bytes(v));
    }
    notes.extend(note("VBCORE", 0xb00, &d));
    for c in cpus {
        notes.extend(note("VBCPU", 0xb01, c));
    }
    let mut f = vec![0u8; 64];
    f[..7].copy_from_slice(b"\x7fELF\x02\x01\x00");
    f[16..18].copy_from_slice(&4u16.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&2u16.to_le_bytes());
    let notes_at = 64 + 2 * 56u64;
    let mem_at = notes_at + notes.len() as u64;
    for (t, off, pa, len) in [
        (4u32, notes_at, 0u64, notes.len() as u64),
        (1, mem_at, 0x1000, 0x1000),
    ] {
        f.extend_from_slice(&t.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes());
        for v in [off, 0, pa, len, len, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
    }
    f.extend(notes);
    f.extend(std::iter::repeat_n(0xabu8, 0x1000));
    f
}

#[test]
fn every_documented_field_reads_back() {
    let seeds = [0x5a00_0000_0000u64, 0x6b00_0000_0000];
    let c = open(core(0x0001_0006, &seeds.map(cpu), 2));
    let v = c.vbox();
    let d = v.descriptor.unwrap();
    assert_eq!(
        (d.magic, d.fmt_version, d.cb_self, d.vbox_revision, d.cpus),
        (0xc01a_c0de, 0x0001_0006, 24, 161_095, 2)
    );
    let j = c.describe();
    assert_eq!(j["vbox"]["vbox_version"], "6.1.50");
    assert_eq!(j["vbox"]["format_version"], "1.6");
    assert!(c.findings().is_empty(), "{:?}", c.findings());
    let cpus = c.cpu_state();
    assert_eq!(cpus.len(), 2);
    for (k, (cs, seed)) in cpus.iter().zip(seeds).enumerate() {
        assert_eq!(cs.index, k as u32);
        assert_eq!(cs.arch, "x86_64");
        assert_eq!((cs.cr0, cs.cr4, cs.efer), (0x8005_0033, 0x6b0, 0xd01));
        assert_eq!(cs.cr3, seed + 304);
        let r = |n: &str| cs.regs[n];
        // The 18 general registers in DBGFCORECPU's order.
        for (i, n) in [
            "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
            "r14", "r15", "rip", "rsp", "rbp", "rflags",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(r(n), seed + 8 * i as u64, "{n}");
        }
        for (n, at) in [
            ("cs", 144u64),
            ("ds", 168),
            ("es", 192),
            ("fs", 216),
            ("gs", 240),
            ("ss", 264),
            ("ldtr", 416),
            ("tr", 440),
        ] {
            assert_eq!(r(&format!("{n}_base")), seed + at, "{n}");
            assert_eq!(r(&format!("{n}_limit")), 0x1000 + at, "{n}");
            assert_eq!(r(&format!("{n}_attr")), 0x2000 + at, "{n}");
            assert_eq!(r(n), 0x3000 | (at & 0xff), "{n}");
        }
        assert_eq!(r("cr2"), seed + 296);
        for i in 0..8u64 {
            assert_eq!(r(&format!("dr{i}")), seed + 320 + 8 * i);
        }
        assert_eq!(
            (r("gdtr_base"), r("gdtr_limit")),
            (seed + 384, 0x3000 + 384)
        );
        assert_eq!(
            (r("idtr_base"), r("idtr_limit")),
            (seed + 400, 0x3000 + 400)
        );
        for (n, at) in [
            ("sysenter_cs", 464u64),
            ("sysenter_eip", 472),
            ("sysenter_esp", 480),
            ("star", 496),
            ("pat", 504),
            ("lstar", 512),
            ("cstar", 520),
            ("sfmask", 528),
            ("kernel_gs_base", 536),
            ("apic_base", 544),
            ("tsc_aux", 552),
        ] {
            assert_eq!(r(n), seed + at, "{n}");
        }
    }
}

#[test]
fn unknown_versions_and_short_notes_give_findings_not_registers() {
    // Format 1.0 wrote raw CPUMCTX: not decoded.
    let c = open(core(0x0001_0000, &[cpu(0)], 1));
    assert!(c.cpu_state().is_empty());
    assert_eq!(c.findings()[0].rule, vmsnap_elf::rule::VBOX_NOTE);
    // A VBCPU note cut short, and a descriptor counting two vCPUs.
    let mut short = cpu(0);
    short.truncate(400);
    let c = open(core(0x0001_0006, &[short], 2));
    assert!(c.cpu_state().is_empty());
    assert_eq!(c.findings().len(), 2, "{:?}", c.findings());
}

fn corpus(rel: &str) -> Vec<u8> {
    std::fs::read(vmsnap_testkit::corpus(rel)).unwrap()
}

#[test]
fn the_samples_hold_their_sources_ram_and_vcpu() {
    for (sample, source) in [
        ("elf/vbox-small.elf", "elf/small.elf"),
        ("elf/vbox-slice.elf", "elf/guest-slice.elf"),
    ] {
        let v = open(corpus(sample));
        let src = corpus(source);
        let q = open(src.clone());
        for (l, data) in vmsnap_testkit::elf::loads_in(&src) {
            let mut got = vec![0u8; data.len()];
            v.read_at(l.paddr, &mut got).unwrap();
            assert!(got == data, "{sample} at {:#x}", l.paddr);
        }
        let (vc, qc) = (v.cpu_state(), q.cpu_state());
        assert_eq!(vc.len(), qc.len(), "{sample}");
        assert_eq!(
            (vc[0].cr0, vc[0].cr3, vc[0].cr4),
            (qc[0].cr0, qc[0].cr3, qc[0].cr4),
            "{sample}"
        );
        assert_eq!(vc[0].regs["rip"], qc[0].regs["rip"], "{sample}");
        assert_eq!(vc[0].efer, 0xd01);
    }
    assert_eq!(
        open(corpus("elf/vbox-slice.elf")).cpu_state()[0].cr3,
        0x2a10000
    );
}

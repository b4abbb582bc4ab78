//! Crafted cores: one per limit or malformation, each with its expected error kind, plus
//! the mapping rules (unsorted segments, zero tails, virtual addresses, notes).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use vmsnap_core::{AddressSpace, ErrorKind, Extent, ExtentKind, LayerExt};
use vmsnap_testkit::elf::{build, note, Ph};

const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;

fn err(f: Vec<u8>) -> vmsnap_core::Error {
    open(f).unwrap_err()
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn unsorted_segments_and_zero_tails() {
    let a = pattern(0x1000, 1);
    let b = pattern(0x800, 2);
    let mut payload = a.clone();
    payload.extend_from_slice(&b);
    // Segment 0 maps high memory, segment 1 low memory with a zero tail.
    let phs = [
        Ph::load(0x10000, 0, 0x1000, 0x1000),
        Ph::load(0x2000, 0x1000, 0x800, 0x2000),
    ];
    for is64 in [true, false] {
        let core = open(build(is64, 4, EM_386, &phs, &payload)).unwrap();
        assert_eq!(core.len(), 0x11000);
        assert_eq!(core.read_vec(0x10000, 0x1000, 1 << 20, "t").unwrap(), a);
        assert_eq!(core.read_vec(0x2000, 0x800, 1 << 20, "t").unwrap(), b);
        assert!(core
            .read_vec(0x2800, 0x1800, 1 << 20, "t")
            .unwrap()
            .iter()
            .all(|&x| x == 0));
        let ext = core.extents(0..core.len()).unwrap();
        assert_eq!(ext[1].kind, ExtentKind::Data);
        assert_eq!(ext[2], Extent::of(ExtentKind::Zero, 0x2800, 0x1800));
        assert_eq!(ext[3].kind, ExtentKind::Unallocated);
    }
}

#[test]
fn overlapping_segments_are_malformed_and_named() {
    let payload = pattern(0x3000, 3);
    let phs = [
        Ph::load(0, 0, 0x2000, 0x2000),
        Ph::load(0x1000, 0x2000, 0x1000, 0x1000),
    ];
    let e = err(build(true, 4, EM_386, &phs, &payload));
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.message().contains("segments 0 and 1"), "{e}");
    assert_eq!(e.context().layer.as_deref(), Some("elf-core"));
}

#[test]
fn segments_naming_the_same_file_bytes_twice_are_merged() {
    // What QEMU's paging dumps do when two virtual mappings share physical memory.
    let payload = pattern(0x2000, 4);
    let mut p1 = Ph::load(0, 0, 0x2000, 0x2000);
    p1.vaddr = 0xffff_8000_0000_0000;
    let mut p2 = Ph::load(0x1000, 0x1000, 0x1000, 0x1000);
    p2.vaddr = 0x40_0000;
    let core = open(build(true, 4, EM_X86_64, &[p1, p2], &payload)).unwrap();
    assert_eq!(core.read_vec(0, 0x2000, 1 << 20, "t").unwrap(), payload);
    let kids = core.children();
    assert_eq!(kids[0].name, "virtual");
    let v = &kids[0].layer;
    assert_eq!(v.space(), AddressSpace::GuestVirtual);
    assert_eq!(v.len(), 0xffff_8000_0000_2000);
    assert_eq!(
        v.read_vec(0x40_0000, 0x1000, 1 << 20, "t").unwrap(),
        payload[0x1000..]
    );
    assert_eq!(
        v.read_vec(0xffff_8000_0000_0000, 0x2000, 1 << 20, "t")
            .unwrap(),
        payload
    );
    assert_eq!(core.describe()["virtual_mapping"], "distinct");
}

#[test]
fn inconsistent_virtual_addresses_give_a_finding_not_an_error() {
    let payload = pattern(0x2000, 5);
    let mut p1 = Ph::load(0, 0, 0x1000, 0x1000);
    p1.vaddr = 0x5000;
    let mut p2 = Ph::load(0x1000, 0x1000, 0x1000, 0x1000);
    p2.vaddr = 0x5800;
    let core = open(build(true, 4, EM_X86_64, &[p1, p2], &payload)).unwrap();
    assert!(core.children().is_empty());
    assert_eq!(core.findings()[0].rule, vmsnap_elf::rule::VIRTUAL_MAPPING);
}

#[test]
fn all_zero_vaddrs_mean_no_virtual_layer() {
    let payload = pattern(0x2000, 6);
    let mut p1 = Ph::load(0, 0, 0x1000, 0x1000);
    p1.vaddr = 0;
    let mut p2 = Ph::load(0x3000, 0x1000, 0x1000, 0x1000);
    p2.vaddr = 0;
    let core = open(build(true, 4, EM_386, &[p1, p2], &payload)).unwrap();
    assert!(core.children().is_empty());
    assert_eq!(core.describe()["virtual_mapping"], "none");
}

#[test]
fn segment_data_past_eof_is_truncated() {
    let payload = pattern(0x1000, 7);
    let e = err(build(
        true,
        4,
        EM_386,
        &[Ph::load(0, 0x800, 0x1000, 0x1000)],
        &payload,
    ));
    assert_eq!(e.kind(), ErrorKind::Truncated);
    assert!(e.message().contains("past the end of the file"), "{e}");
    let e = err(build(
        true,
        4,
        EM_386,
        &[Ph::load(0, u64::MAX - 0x200, 0x1000, 0x1000)],
        &payload,
    ));
    assert_eq!(e.kind(), ErrorKind::Truncated);
}

#[test]
fn huge_p_memsz_is_a_limit() {
    let payload = pattern(0x1000, 8);
    let e = err(build(
        true,
        4,
        EM_386,
        &[Ph::load(0, 0, 0x1000, 1 << 60)],
        &payload,
    ));
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert!(e.message().contains("PT_LOAD segment 0"), "{e}");
    // Wrapping past 2^64 is malformed.
    let e = err(build(
        true,
        4,
        EM_386,
        &[Ph::load(u64::MAX - 0xfff, 0, 0x1000, 0x2000)],
        &payload,
    ));
    assert_eq!(e.kind(), ErrorKind::Malformed);
}

#[test]
fn note_sizes_that_overflow_are_malformed() {
    let mut n = Vec::new();
    n.extend_from_slice(&0xffff_fffdu32.to_le_bytes()); // aligns past 2^32
    n.extend_from_slice(&0xffff_ffffu32.to_le_bytes());
    n.extend_from_slice(&0u32.to_le_bytes());
    n.extend_from_slice(b"QEMU\0\0\0\0");
    let e = err(build(true, 4, EM_386, &[Ph::note(0, n.len() as u64)], &n));
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.message().contains("descriptor"), "{e}");
    // A PT_NOTE reaching past EOF is truncated.
    let e = err(build(true, 4, EM_386, &[Ph::note(0, 1 << 20)], &n));
    assert_eq!(e.kind(), ErrorKind::Truncated);
    // A PT_NOTE bigger than the note limit is a limit.
    let e = err(build(true, 4, EM_386, &[Ph::note(0, 1 << 40)], &n));
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
}

#[test]
fn program_header_table_limits() {
    // Too-small e_phentsize.
    let mut f = build(true, 4, EM_386, &[Ph::load(0, 0, 0, 0x1000)], &[]);
    f[54..56].copy_from_slice(&8u16.to_le_bytes());
    assert_eq!(err(f).kind(), ErrorKind::Malformed);
    // A table past EOF.
    let mut f = build(true, 4, EM_386, &[Ph::load(0, 0, 0, 0x1000)], &[]);
    f[56..58].copy_from_slice(&1000u16.to_le_bytes());
    assert_eq!(err(f).kind(), ErrorKind::Truncated);
    // A header cut short.
    let f = build(true, 4, EM_386, &[], &[]);
    assert_eq!(err(f[..40].to_vec()).kind(), ErrorKind::Truncated);
}

fn with_pn_xnum(count: u32) -> Vec<u8> {
    let payload = pattern(0x1000, 9);
    let mut f = build(
        true,
        4,
        EM_386,
        &[Ph::load(0x5000, 0, 0x1000, 0x1000)],
        &payload,
    );
    // Section header 0 appended at the end, its sh_info holding the count.
    let shoff = f.len() as u64;
    let mut sh = vec![0u8; 64];
    sh[44..48].copy_from_slice(&count.to_le_bytes());
    f.extend_from_slice(&sh);
    f[40..48].copy_from_slice(&shoff.to_le_bytes());
    f[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
    f[58..60].copy_from_slice(&64u16.to_le_bytes());
    f[60..62].copy_from_slice(&1u16.to_le_bytes());
    f
}

#[test]
fn pn_xnum_counts_come_from_section_zero() {
    let core = open(with_pn_xnum(1)).unwrap();
    assert_eq!(core.len(), 0x6000);
    assert_eq!(core.describe()["program_headers"], 1);
    assert_eq!(err(with_pn_xnum(u32::MAX)).kind(), ErrorKind::LimitExceeded);
    assert_eq!(err(with_pn_xnum(100_000)).kind(), ErrorKind::Truncated);
}

fn qemu_cpustate(cr0: u64, cr3: u64, cr4: u64, cs_flags: u32, size: u32) -> Vec<u8> {
    let mut d = vec![0u8; size as usize];
    d[0..4].copy_from_slice(&1u32.to_le_bytes());
    d[4..8].copy_from_slice(&size.to_le_bytes());
    d[8..16].copy_from_slice(&0x1111u64.to_le_bytes()); // rax
    d[136..144].copy_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes()); // rip
    d[152..156].copy_from_slice(&0x10u32.to_le_bytes()); // cs selector
    d[160..164].copy_from_slice(&cs_flags.to_le_bytes());
    d[392..400].copy_from_slice(&cr0.to_le_bytes());
    d[416..424].copy_from_slice(&cr3.to_le_bytes());
    d[424..432].copy_from_slice(&cr4.to_le_bytes());
    if size >= 440 {
        d[432..440].copy_from_slice(&0xdead_beefu64.to_le_bytes());
    }
    d
}

#[test]
fn long_mode_qemu_notes_and_vmcoreinfo() {
    let mut notes = note("CORE", 1, &[0u8; 336]);
    notes.extend(note(
        "QEMU",
        0,
        &qemu_cpustate(0x8005_0033, 0x1234_5000, 0x3606e0, 0x20_9b00, 440),
    ));
    notes.extend(note("CORE", 1, &[0u8; 336]));
    // An older QEMU without kernel_gs_base.
    notes.extend(note(
        "QEMU",
        0,
        &qemu_cpustate(0x8005_0033, 0x7000, 0x20, 0, 432),
    ));
    notes.extend(note(
        "VMCOREINFO",
        0,
        b"OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a0c000\n\0",
    ));
    let nlen = notes.len() as u64;
    let mut payload = notes;
    payload.extend(pattern(0x1000, 10));
    let mut load = Ph::load(0, nlen, 0x1000, 0x1000);
    load.vaddr = 0xffff_8880_0000_0000;
    let core = open(build(
        true,
        4,
        EM_X86_64,
        &[Ph::note(0, nlen), load],
        &payload,
    ))
    .unwrap();
    let cpus = core.cpu_state();
    assert_eq!(cpus.len(), 2);
    assert_eq!(cpus[0].arch, "x86_64");
    assert_eq!(cpus[0].cr3, 0x1234_5000);
    assert_eq!(cpus[0].cr0, 0x8005_0033);
    assert_eq!(cpus[0].cr4, 0x3606e0);
    assert_eq!(cpus[0].efer, 0xd00); // inferred: EM_X86_64 with paging and PAE (LME, LMA, NXE)
    assert_eq!(cpus[0].regs["rax"], 0x1111);
    assert_eq!(cpus[0].regs["rip"], 0xffff_ffff_8100_0000);
    assert_eq!(cpus[0].regs["kernel_gs_base"], 0xdead_beef);
    assert_eq!(cpus[1].index, 1);
    assert_eq!(cpus[1].cr3, 0x7000);
    assert!(!cpus[1].regs.contains_key("kernel_gs_base"));
    let d = core.describe();
    assert_eq!(
        d["vmcoreinfo"],
        serde_json::json!([
            "OSRELEASE=6.1.0",
            "PAGESIZE=4096",
            "SYMBOL(swapper_pg_dir)=ffffffff82a0c000"
        ])
    );
    assert_eq!(d["prstatus"][0]["layout"], "x86_64");
    assert_eq!(d["notes"].as_array().unwrap().len(), 5);
    assert_eq!(d["virtual_mapping"], "distinct");
}

#[test]
fn short_qemu_note_is_a_finding() {
    let notes = note("QEMU", 0, &[1, 0, 0, 0, 16, 0, 0, 0]);
    let core = open(build(
        true,
        4,
        EM_X86_64,
        &[Ph::note(0, notes.len() as u64)],
        &notes,
    ))
    .unwrap();
    assert!(core.cpu_state().is_empty());
    assert_eq!(core.findings()[0].rule, vmsnap_elf::rule::QEMU_NOTE);
    assert_eq!(core.len(), 0);
}

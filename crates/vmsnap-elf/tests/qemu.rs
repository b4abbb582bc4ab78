//! Real QEMU 10 `dump-guest-memory` cores of a paused guest whose RAM holds known blobs
//! (see corpus/elf/make.sh).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use vmsnap_core::{AddressSpace, ErrorKind, ExtentKind, Layer, LayerExt, Probe};
use vmsnap_testkit::assert_same_bytes;
use vmsnap_testkit::elf::{build, Ph};

fn read(l: &dyn Layer, off: u64, len: usize) -> Vec<u8> {
    l.read_vec(off, len as u64, 1 << 30, "test").unwrap()
}

#[test]
fn qemu_core_ram_is_the_blobs_and_zeros() {
    let core = open(gunzip("elf/core.elf.gz")).unwrap();
    assert_eq!(core.space(), AddressSpace::GuestPhysical);
    // pc.ram ends at 32 MiB, the pc-dimm at 4 GiB + 2 MiB.
    assert_eq!(core.len(), 0x1_0020_0000);
    for (addr, name) in BLOBS {
        let want = blob(name);
        assert_same_bytes(&read(core.as_ref(), addr, want.len()), &want, name);
    }
    // All of RAM above 1 MiB: blobs at their addresses, zeros elsewhere (no firmware there).
    let mut want = vec![0u8; 0x1f0_0000];
    for (addr, name) in &BLOBS[..3] {
        let b = blob(name);
        let at = (addr - 0x100000) as usize;
        want[at..at + b.len()].copy_from_slice(&b);
    }
    assert_same_bytes(
        &read(core.as_ref(), 0x100000, want.len()),
        &want,
        "RAM 1M..32M",
    );
    let mut dimm = vec![0u8; 0x20_0000];
    dimm[..4096].copy_from_slice(&blob("blob-d.bin"));
    assert_same_bytes(
        &read(core.as_ref(), 0x1_0000_0000, dimm.len()),
        &dimm,
        "pc-dimm",
    );
    // Low RAM below the VGA hole is zero in a guest that never ran.
    assert!(read(core.as_ref(), 0, 0xa0000).iter().all(|&b| b == 0));
    // A read straddling the end fails, one ending at it does not.
    let mut b = [0u8; 2];
    assert_eq!(
        core.read_at(core.len() - 1, &mut b).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    core.read_at(core.len() - 2, &mut b).unwrap();
}

#[test]
fn small_core_is_blob_b_and_zeros() {
    // corpus/elf/small.elf: `dump-guest-memory FILE 0x1234000 0x2000` of the same guest.
    let bytes = std::fs::read(vmsnap_testkit::corpus("elf/small.elf")).unwrap();
    let loads = vmsnap_testkit::elf::program_loads(&bytes);
    assert_eq!(loads.len(), 1);
    assert_eq!((loads[0].paddr, loads[0].filesz), (0x1234000, 0x2000));
    let core = open(bytes).unwrap();
    assert_eq!(core.len(), 0x1236000);
    let mut want = vec![0u8; 0x2000];
    let b = blob("blob-b.bin");
    want[..b.len()].copy_from_slice(&b);
    assert_same_bytes(&read(core.as_ref(), 0x1234000, 0x2000), &want, "small.elf");
    let ext = core.extents(0..core.len()).unwrap();
    let data: Vec<_> = ext.iter().filter(|e| e.kind == ExtentKind::Data).collect();
    assert_eq!(data.len(), 1);
    assert_eq!((data[0].offset, data[0].len), (0x1234000, 0x2000));
}

#[test]
fn qemu_core_matches_an_independent_pt_load_extractor() {
    let file = gunzip("elf/core.elf.gz");
    let loads = vmsnap_testkit::elf::program_loads(&file);
    assert_eq!(loads.len(), 6);
    let core = open(file.clone()).unwrap();
    for l in &loads {
        assert_eq!(l.filesz, l.memsz);
        let got = read(core.as_ref(), l.paddr, l.memsz as usize);
        let want = &file[l.offset as usize..(l.offset + l.filesz) as usize];
        assert_same_bytes(&got, want, &format!("PT_LOAD at {:#x}", l.paddr));
    }
    // Extents: exactly the PT_LOAD ranges as 1:1 data, the rest unallocated.
    let ext = core.extents(0..core.len()).unwrap();
    let data: Vec<_> = ext
        .iter()
        .filter(|e| e.kind == ExtentKind::Data)
        .map(|e| (e.offset, e.len, e.lower_offset))
        .collect();
    // 0..0xc0000, 0xc0000.., 0xe0000.., 0x100000.. are contiguous in the file too, so
    // they coalesce into one run.
    assert_eq!(
        data,
        vec![
            (0, 0x200_0000, Some(loads[0].offset)),
            // The BIOS ends at 4 GiB where the pc-dimm starts, also contiguous.
            (0xfffc_0000, 0x24_0000, Some(loads[4].offset)),
        ]
    );
    assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), core.len());
    assert!(ext
        .iter()
        .filter(|e| e.kind != ExtentKind::Data)
        .all(|e| e.kind == ExtentKind::Unallocated));
    // Holes read as zeros.
    assert!(read(core.as_ref(), 0x8000_0000, 1 << 20)
        .iter()
        .all(|&b| b == 0));
    // The BIOS is where QEMU maps it: the last 128 KiB of bios-256k.bin is also the
    // ISA BIOS at 0xe0000.
    assert_same_bytes(
        &read(core.as_ref(), 0xfffe_0000, 0x2_0000),
        &read(core.as_ref(), 0xe_0000, 0x2_0000),
        "isa-bios alias",
    );
}

#[test]
fn qemu_core_describe_notes_and_cpu_state() {
    let file = gunzip("elf/core.elf.gz");
    assert_eq!(probe(&file), Probe::Yes);
    let core = open(file).unwrap();
    let d = core.describe();
    assert_eq!(d["format"], "elf-core");
    assert_eq!(d["virtual_size"], 0x1_0020_0000u64);
    // QEMU writes ELF64 because RAM ends above 4 GiB, and EM_386 because the CPU is not
    // in long mode.
    assert_eq!(d["class"], "elf64");
    assert_eq!(d["machine"], "i386");
    assert_eq!(d["pt_load_count"], 6);
    assert_eq!(d["segments"][5]["paddr"], 0x1_0000_0000u64);
    assert_eq!(d["segments"][5]["memsz"], 0x20_0000);
    let notes = d["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["name"], "CORE");
    assert_eq!(notes[0]["type"], 1);
    assert_eq!(notes[0]["desc_size"], 144); // i386 prstatus
    assert_eq!(notes[1]["name"], "QEMU");
    assert_eq!(notes[1]["desc_size"], 440);
    assert_eq!(d["prstatus"][0]["layout"], "i386");
    assert_eq!(d["prstatus"][0]["registers"]["eip"], "0xfff0");
    assert_eq!(d["prstatus"][0]["registers"]["cs"], "0xf000");
    assert_eq!(d["prstatus"][0]["registers"]["edx"], "0x60fb1");
    assert_eq!(d["qemu_cpus"][0]["version"], 1);
    assert_eq!(d["qemu_cpus"][0]["efer"], serde_json::Value::Null);
    assert_eq!(d["virtual_mapping"], "identity");

    // What `info registers` shows for the reset vCPU of this guest.
    let cpus = core.cpu_state();
    assert_eq!(cpus.len(), 1);
    let c = &cpus[0];
    assert_eq!(c.index, 0);
    assert_eq!(c.cr0, 0x6000_0010);
    assert_eq!(c.cr3, 0);
    assert_eq!(c.cr4, 0);
    assert_eq!(c.efer, 0);
    assert_eq!(c.regs["rip"], 0xfff0);
    assert_eq!(c.regs["rdx"], 0x60fb1);
    assert_eq!(c.regs["rflags"], 2);
    assert_eq!(c.regs["cs"], 0xf000);
    assert_eq!(c.regs["cs_base"], 0xffff_0000);
    assert_eq!(c.regs["cs_limit"], 0xffff);
    assert_eq!(c.regs["cs_flags"], 0x9b00);
    assert_eq!(c.regs["tr_flags"], 0x8b00);
    assert_eq!(c.regs["gdt_limit"], 0xffff);
    assert_eq!(c.regs["kernel_gs_base"], 0);
    assert_eq!(c.regs["efer_inferred"], 1);
    assert!(core.findings().is_empty(), "{:?}", core.findings());
}

#[test]
fn paging_core_offers_a_virtual_layer() {
    // A -S guest has paging off, so QEMU maps virtual = physical.
    let core = open(gunzip("elf/paging.elf.gz")).unwrap();
    let kids = core.children();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].name, "virtual");
    let v = kids[0].layer.clone();
    assert_eq!(v.space(), AddressSpace::GuestVirtual);
    assert_eq!(v.len(), core.len());
    for (addr, name) in BLOBS {
        let want = blob(name);
        assert_same_bytes(&read(v.as_ref(), addr, want.len()), &want, name);
    }
    assert_eq!(v.describe()["identity"], true);
}

#[test]
fn kdump_zlib_from_qemu_is_detected_and_left_to_the_kdump_plugin() {
    let file = gunzip("elf/z.kdump.gz");
    assert!(matches!(probe(&file), Probe::No(_)));
    let e = open(file.clone()).unwrap_err();
    let file = &file[..];
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let m = e.to_string();
    assert!(m.contains("zlib"), "{m}");
    assert!(m.contains("flattened"), "{m}");
    assert!(m.contains("KDUMP"), "{m}");
    assert!(m.contains("kdump plugin"), "{m}");
    let k = vmsnap_elf::kdump::detect(file).unwrap();
    assert_eq!(k.block_size, Some(4096));
    assert_eq!(k.status, Some(1));
}

#[test]
fn kdump_lzo_snappy_zstd_are_named() {
    for (flag, name) in [(2u32, "lzo"), (4, "snappy"), (0x20, "zstd"), (0x9, "zlib")] {
        let mut h = vec![0u8; 4096];
        h[..8].copy_from_slice(b"KDUMP   ");
        h[8..12].copy_from_slice(&6u32.to_le_bytes());
        h[424..428].copy_from_slice(&flag.to_le_bytes());
        h[428..432].copy_from_slice(&4096u32.to_le_bytes());
        assert!(matches!(probe(&h), Probe::No(_)));
        let e = open(h).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().contains(name), "{e}");
        assert!(!e.to_string().contains("flattened"), "{e}");
        if flag & 8 != 0 {
            assert!(e.to_string().contains("incomplete"), "{e}");
        }
    }
}

#[test]
fn elf32_core_of_the_same_ram_reads_the_same() {
    // QEMU only writes ELF32 for guests whose RAM ends below 4 GiB and whose firmware is
    // not mapped up to 4 GiB, which the pc machine always does; so rebuild the real core
    // as ELF32 (segments below 4 GiB, the real notes).
    let file = gunzip("elf/core.elf.gz");
    let loads: Vec<_> = vmsnap_testkit::elf::program_loads(&file)
        .into_iter()
        .filter(|l| l.paddr < 1 << 32)
        .collect();
    let notes: Vec<u8> = vmsnap_testkit::elf::note_segments(&file)
        .into_iter()
        .flat_map(|(o, n)| file[o as usize..(o + n) as usize].to_vec())
        .collect();
    let mut payload = notes.clone();
    let mut phs = vec![Ph::note(0, notes.len() as u64)];
    for l in &loads {
        phs.push(Ph::load(l.paddr, payload.len() as u64, l.filesz, l.memsz));
        payload.extend_from_slice(&file[l.offset as usize..(l.offset + l.filesz) as usize]);
    }
    let f32 = build(false, 4, 3, &phs, &payload);
    assert_eq!(probe(&f32), Probe::Yes);
    let c32 = open(f32).unwrap();
    let c64 = open(file).unwrap();
    assert_eq!(c32.len(), 0x1_0000_0000);
    assert_eq!(c32.describe()["class"], "elf32");
    for l in &loads {
        assert_same_bytes(
            &read(c32.as_ref(), l.paddr, l.memsz as usize),
            &read(c64.as_ref(), l.paddr, l.memsz as usize),
            "elf32 vs elf64",
        );
    }
    assert_eq!(c32.cpu_state(), c64.cpu_state());
}

#[test]
fn probe_rejects_executables_and_shared_objects() {
    let mut f = gunzip("elf/core.elf.gz")[..65536].to_vec();
    for (t, _) in [(2u16, "ET_EXEC"), (3, "ET_DYN"), (1, "ET_REL")] {
        f[16..18].copy_from_slice(&t.to_le_bytes());
        assert!(matches!(probe(&f), Probe::No(_)));
        assert_eq!(open(f.clone()).unwrap_err().kind(), ErrorKind::Unsupported);
    }
    assert!(matches!(probe(b"MZ\x90\0"), Probe::No(_)));
    assert!(matches!(probe(b"\x7fELF"), Probe::No(_)));
}

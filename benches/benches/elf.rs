//! ELF cores: open of a sparse 4 GiB core, sequential and random reads of a 256 MiB core
//! whose RAM is the realistic image, probe.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{
    bench_open, bench_probe, bench_random_4k, bench_sequential, cached_image, realistic_raw,
};
use vmsnap_core::{FileLayer, Layer};
use vmsnap_elf::ElfCore;

/// An ELF64 core header with one PT_NOTE (a QEMU CPU note) and `loads` of
/// (paddr, file offset, size), padded to 4096 bytes.
fn header(loads: &[(u64, u64, u64)]) -> Vec<u8> {
    let mut note = Vec::new();
    note.extend_from_slice(&5u32.to_le_bytes());
    note.extend_from_slice(&440u32.to_le_bytes());
    note.extend_from_slice(&0u32.to_le_bytes());
    note.extend_from_slice(b"QEMU\0\0\0\0");
    let mut st = vec![0u8; 440];
    st[0] = 1;
    st[4..8].copy_from_slice(&440u32.to_le_bytes());
    note.extend_from_slice(&st);
    header_with(loads, note)
}

/// VirtualBox's notes (`dumpvmcore`): a VBCORE descriptor (format 1.6, one vCPU) and one
/// VBCPU note (DBGFCORECPU with an 8 KiB extended area), names padded to 8 bytes.
fn vbox_notes() -> Vec<u8> {
    let mut n = Vec::new();
    n.extend_from_slice(&6u32.to_le_bytes());
    n.extend_from_slice(&24u32.to_le_bytes());
    n.extend_from_slice(&0xb00u32.to_le_bytes());
    n.extend_from_slice(b"VBCORE\0\0");
    for v in [0xc01a_c0deu32, 0x0001_0006, 24, 0x0700_000e, 1, 1] {
        n.extend_from_slice(&v.to_le_bytes());
    }
    n.extend_from_slice(&5u32.to_le_bytes());
    n.extend_from_slice(&(584u32 + 8192).to_le_bytes());
    n.extend_from_slice(&0xb01u32.to_le_bytes());
    n.extend_from_slice(b"VBCPU\0\0\0");
    n.extend_from_slice(&vec![0u8; 584 + 8192]);
    n
}

/// An ELF64 core header with one PT_NOTE holding `note` and `loads`, padded to 4096 bytes
/// (to a multiple of 4096 when the notes are larger).
fn header_with(loads: &[(u64, u64, u64)], note: Vec<u8>) -> Vec<u8> {
    let phnum = 1 + loads.len();
    let mut f = vec![0u8; 64];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = 1;
    f[6] = 1;
    f[16..18].copy_from_slice(&4u16.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    let note_off = 64 + 56 * phnum as u64;
    let mut ph = |t: u32, off: u64, addr: u64, filesz: u64, memsz: u64| {
        f.extend_from_slice(&t.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        for v in [off, addr, addr, filesz, memsz, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
    };
    ph(4, note_off, 0, note.len() as u64, 0);
    for &(paddr, off, size) in loads {
        ph(1, off, paddr, size, size);
    }
    f.extend_from_slice(&note);
    f.resize(f.len().div_ceil(4096) * 4096, 0);
    f
}

/// A core whose single PT_LOAD is the 256 MiB realistic raw image.
fn core_256m(p: &Path) {
    let raw = std::fs::read(realistic_raw(256)).unwrap();
    let mut f = std::fs::File::create(p).unwrap();
    f.write_all(&header(&[(0, 4096, raw.len() as u64)]))
        .unwrap();
    f.write_all(&raw).unwrap();
}

/// A VirtualBox core (`dumpvmcore`'s notes) whose single PT_LOAD is the realistic image.
fn vbox_256m(p: &Path) {
    let raw = std::fs::read(realistic_raw(256)).unwrap();
    let mut f = std::fs::File::create(p).unwrap();
    let h = header_with(&[(0, 12288, raw.len() as u64)], vbox_notes());
    assert_eq!(h.len(), 12288);
    f.write_all(&h).unwrap();
    f.write_all(&raw).unwrap();
}

/// A sparse 4 GiB core laid out like QEMU's: RAM below 3 GiB, the rest above 4 GiB.
fn core_4g_sparse(p: &Path) {
    let low = 3u64 << 30;
    let high = 1u64 << 30;
    let f = std::fs::File::create(p).unwrap();
    (&f).write_all(&header(&[(0, 4096, low), (4 << 30, 4096 + low, high)]))
        .unwrap();
    f.set_len(4096 + low + high).unwrap();
}

fn elf(c: &mut Criterion) {
    let big = cached_image("elf-4g-sparse.core", core_4g_sparse);
    bench_open(c, "elf/4g-sparse", || {
        let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(&big).unwrap());
        Arc::new(ElfCore::open_layer(lower).unwrap()) as Arc<dyn Layer>
    });
    let path = cached_image("elf-256m.core", core_256m);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    let layer: Arc<dyn Layer> = Arc::new(ElfCore::open_layer(lower.clone()).unwrap());
    bench_sequential(c, "elf", &layer, 256 << 20);
    bench_random_4k(c, "elf", &layer);
    bench_probe(c, "elf", &vmsnap_elf::PLUGIN, &lower);

    // The same image in a VirtualBox core: the ELF reader with VBCORE/VBCPU notes.
    let path = cached_image("vbox-256m.core", vbox_256m);
    let open = || {
        let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
        Arc::new(ElfCore::open_layer(lower).unwrap()) as Arc<dyn Layer>
    };
    let layer = open();
    assert_eq!(layer.cpu_state().len(), 1, "the VBCPU note decodes");
    bench_open(c, "elf/vbox", open);
    bench_sequential(c, "elf/vbox", &layer, 256 << 20);
    bench_random_4k(c, "elf/vbox", &layer);
}

criterion_group!(benches, elf);
criterion_main!(benches);

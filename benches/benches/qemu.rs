//! QEMU streams: a 4 GiB pc guest whose first GiB is the realistic image (PAGE records
//! for data pages, ZERO for the rest): open, sequential reads of the dense first GiB and
//! of the whole guest-physical space, random 4 KiB reads in the dense part, probe.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{
    bench_open, bench_probe, bench_random_4k, bench_sequential, cached_image, realistic_raw,
};
use vmsnap_core::{
    AddressSpace, ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver,
    SliceLayer,
};
use vmsnap_qemu::QemuMemory;

const RAM: u64 = 4 << 30;

/// Writes a QEVM v3 stream like QEMU's precopy pass: configuration, RAM START (MEM_SIZE),
/// one PART with every page of pc.ram, COMMAND 11, END, EOF.
fn stream_4g(p: &Path) {
    let mut raw = std::fs::File::open(realistic_raw(1024)).unwrap();
    let mut f = BufWriter::with_capacity(1 << 20, std::fs::File::create(p).unwrap());
    let name = b"pc-i440fx-10.0";
    f.write_all(b"QEVM\0\0\0\x03\x07").unwrap();
    f.write_all(&(name.len() as u32).to_be_bytes()).unwrap();
    f.write_all(name).unwrap();
    // START ram
    f.write_all(&[1, 0, 0, 0, 2, 3]).unwrap();
    f.write_all(b"ram").unwrap();
    f.write_all(&0u32.to_be_bytes()).unwrap();
    f.write_all(&4u32.to_be_bytes()).unwrap();
    f.write_all(&(RAM | 4).to_be_bytes()).unwrap();
    f.write_all(b"\x06pc.ram").unwrap();
    f.write_all(&RAM.to_be_bytes()).unwrap();
    f.write_all(&0x10u64.to_be_bytes()).unwrap();
    f.write_all(&[0x7e, 0, 0, 0, 2]).unwrap();
    // PART ram
    f.write_all(&[2, 0, 0, 0, 2]).unwrap();
    let mut page = vec![0u8; 4096];
    let data_pages = (1u64 << 30) / 4096;
    for i in 0..RAM / 4096 {
        let named = i == 0;
        let cont = if named { 0 } else { 0x20 };
        let is_data = if i < data_pages {
            raw.read_exact(&mut page).unwrap();
            page.iter().any(|&b| b != 0)
        } else {
            false
        };
        let flag = if is_data { 8 } else { 2 };
        f.write_all(&((i * 4096) | flag | cont).to_be_bytes())
            .unwrap();
        if named {
            f.write_all(b"\x06pc.ram").unwrap();
        }
        if is_data {
            f.write_all(&page).unwrap();
        } else {
            f.write_all(&[0]).unwrap();
        }
    }
    f.write_all(&0x10u64.to_be_bytes()).unwrap();
    f.write_all(&[0x7e, 0, 0, 0, 2]).unwrap();
    // switchover-start, END, EOF
    f.write_all(&[8, 0, 11, 0, 0]).unwrap();
    f.write_all(&[3, 0, 0, 0, 2]).unwrap();
    f.write_all(&0x10u64.to_be_bytes()).unwrap();
    f.write_all(&[0x7e, 0, 0, 0, 2]).unwrap();
    f.write_all(&[0]).unwrap();
    f.flush().unwrap();
}

fn open(path: &Path) -> Arc<dyn Layer> {
    let reg = Registry::empty().with(&vmsnap_qemu::PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::Deny);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open_mapped(path).unwrap());
    Arc::new(QemuMemory::open(lower, &ctx).unwrap())
}

fn qemu(c: &mut Criterion) {
    let path = cached_image("qemu-4g-pc.qevm", stream_4g);
    bench_open(c, "qemu/4g", || open(&path));
    let layer = open(&path);
    let d = layer.describe();
    eprintln!(
        "qemu/4g: guest-physical {} bytes, {} segments, segment map {} bytes ({:.4}% of guest RAM)",
        layer.len(),
        d["segments"],
        d["segment_map_bytes"],
        d["segment_map_bytes"].as_f64().unwrap_or(0.0) * 100.0 / RAM as f64
    );
    bench_sequential(c, "qemu/dense-1g", &layer, 1 << 30);
    bench_sequential(c, "qemu/all", &layer, layer.len());
    let dense: Arc<dyn Layer> = Arc::new(
        SliceLayer::new(
            "dense",
            AddressSpace::GuestPhysical,
            layer.clone(),
            0,
            1 << 30,
        )
        .unwrap(),
    );
    bench_random_4k(c, "qemu/dense-1g", &dense);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    bench_probe(c, "qemu", &vmsnap_qemu::PLUGIN, &lower);
}

criterion_group!(benches, qemu);
criterion_main!(benches);

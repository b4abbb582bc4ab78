//! kdump: open, sequential 1 MiB reads, random 4 KiB reads and probe on a 256 MiB
//! realistic image that QEMU dumped as kdump-raw-zlib (the image loaded into a paused
//! guest's RAM by `corpus/kdump/make.sh RAW OUT`); and, when the booted guest of the
//! real-guest test exists (target/kdump-guest, mostly zlib pages), every present page of
//! its kdump dump against the same pages of its ELF core, per core.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vmsnap_benches::{bench_file, open_with, read_spans, realistic_by_recipe};
use vmsnap_core::{ExtentKind, Layer};

fn kdump(c: &mut Criterion) {
    let path = realistic_by_recipe(256, "kdump", "kdump");
    bench_file(c, "kdump", &vmsnap_kdump::PLUGIN, &path);
}

fn guest(c: &mut Criterion) {
    let dir = vmsnap_testkit::workspace_root().join("target/kdump-guest");
    if !dir.join("raw.kdump").is_file() {
        eprintln!("kdump-guest: skipped (run the real_guest test first)");
        return;
    }
    let k: Arc<dyn Layer> = open_with(&vmsnap_kdump::PLUGIN, &dir.join("raw.kdump"));
    let e: Arc<dyn Layer> = open_with(&vmsnap_elf::PLUGIN, &dir.join("core.elf"));
    // The pages the dump holds as data (stored or zlib), read the same way from both.
    let extents: Vec<(u64, u64)> = k
        .extents(0..k.len())
        .unwrap()
        .into_iter()
        .filter(|x| x.kind == ExtentKind::Data)
        .map(|x| (x.offset, x.len))
        .collect();
    let bytes: u64 = extents.iter().map(|x| x.1).sum();
    let mut g = c.benchmark_group("kdump-guest");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let mut buf = vec![0u8; 1 << 20];
    g.bench_function("present-pages/kdump-raw-zlib", |b| {
        b.iter(|| read_spans(k.as_ref(), &extents, &mut buf))
    });
    g.bench_function("present-pages/elf", |b| {
        b.iter(|| read_spans(e.as_ref(), &extents, &mut buf))
    });
    g.finish();
}

criterion_group!(benches, kdump, guest);
criterion_main!(benches);

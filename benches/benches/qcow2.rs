//! qcow2: open, probe, sequential 1 MiB reads (plain, zlib, zstd, extended L2) and random
//! 4 KiB reads (plain mapped and through pread, zlib) on the 256 MiB realistic image
//! converted by qemu-img; the same benches for qcow v1 (plugin `qcow`).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{bench_open, bench_probe, bench_random_4k, bench_sequential, realistic_as};
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
use vmsnap_qcow2::{Qcow2, PLUGIN};

fn open(path: &Path) -> Arc<dyn Layer> {
    let reg = Registry::empty().with(&PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::Deny);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    Arc::new(Qcow2::open(Arc::new(FileLayer::open_mapped(path).unwrap()), &ctx).unwrap())
}

fn qcow2(c: &mut Criterion) {
    let plain = realistic_as(256, "qcow2", &[]);
    let zlib = realistic_as(256, "qcow2", &["-c"]);
    let zstd = realistic_as(256, "qcow2", &["-c", "-o", "compression_type=zstd"]);
    let extl2 = realistic_as(256, "qcow2", &["-o", "extended_l2=on"]);

    bench_open(c, "qcow2", || open(&plain));
    let p = open(&plain);
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&plain).unwrap());
    bench_probe(c, "qcow2", &PLUGIN, &file);
    bench_sequential(c, "qcow2", &p, 256 << 20);
    bench_random_4k(c, "qcow2", &p);

    // The same image through `pread` instead of a mapping.
    let reg = Registry::empty().with(&PLUGIN).unwrap();
    let r = Resolver::new(ExternalPolicy::Deny);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    let pread: Arc<dyn Layer> =
        Arc::new(Qcow2::open(Arc::new(FileLayer::open(&plain).unwrap()), &ctx).unwrap());
    bench_random_4k(c, "qcow2-pread", &pread);

    let z = open(&zlib);
    bench_sequential(c, "qcow2-zlib", &z, 256 << 20);
    bench_random_4k(c, "qcow2-zlib", &z);

    let zs = open(&zstd);
    bench_sequential(c, "qcow2-zstd", &zs, 256 << 20);

    let x = open(&extl2);
    bench_sequential(c, "qcow2-extl2", &x, 256 << 20);
}

/// qcow v1: the standard disk benches on the same image converted with `-O qcow`.
fn qcow1(c: &mut Criterion) {
    vmsnap_benches::bench_disk(c, "qcow", &vmsnap_qcow2::QCOW1_PLUGIN, "qcow", &[]);
}

criterion_group!(benches, qcow2, qcow1);
criterion_main!(benches);

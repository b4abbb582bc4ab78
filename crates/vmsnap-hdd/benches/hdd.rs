//! hdd: open, sequential 1 MiB reads, random 4 KiB reads and probe on the 256 MiB
//! realistic image as a Parallels bundle (qemu-img's expanding image under a
//! DiskDescriptor.xml, `corpus/hdd/make.sh RAW OUT`), its file opened through the
//! `vm-dir` policy as the CLI does.
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
use vmsnap_benches::{
    bench_open, bench_probe, bench_random_4k, bench_sequential, realistic_by_recipe,
};
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};

fn open(dir: &Path) -> Arc<dyn Layer> {
    let r = Resolver::new(ExternalPolicy::VmDir).with_vm_dir(dir);
    let (reg, o) = (Registry::empty(), Options::new());
    let ctx = OpenCtx::new(&r, &reg, &o);
    let xml = Arc::new(FileLayer::open_mapped(dir.join("DiskDescriptor.xml")).unwrap());
    Arc::new(vmsnap_hdd::Hdd::open(xml, &ctx).unwrap())
}

fn hdd(c: &mut Criterion) {
    let dir = realistic_by_recipe(256, "hdd", "hdd");
    bench_open(c, "hdd", || open(&dir));
    let layer = open(&dir);
    bench_sequential(c, "hdd", &layer, 256 << 20);
    bench_random_4k(c, "hdd", &layer);
    let xml: Arc<dyn Layer> = Arc::new(FileLayer::open(dir.join("DiskDescriptor.xml")).unwrap());
    bench_probe(c, "hdd", &vmsnap_hdd::PLUGIN, &xml);
}

criterion_group!(benches, hdd);
criterion_main!(benches);

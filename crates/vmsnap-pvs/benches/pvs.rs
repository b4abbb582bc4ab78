//! pvs: open of the sample VM with snapshots (corpus/pvs/snapshots.pvm: config.pvs,
//! Snapshots.xml, one `.hdd` bundle of three expanding images and four state files, every
//! file through the vm-dir policy), a 4 KiB read of its current disk, and the probe.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::{bench_open, bench_probe};
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};

fn open_vm(registry: &Registry) -> Arc<dyn Layer> {
    let dir = vmsnap_testkit::corpus("pvs/snapshots.pvm");
    let r = Resolver::new(ExternalPolicy::VmDir).with_vm_dir(&dir);
    let o = Options::new();
    let ctx = OpenCtx::new(&r, registry, &o);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(dir.join("config.pvs")).unwrap());
    (vmsnap_pvs::PLUGIN.open)(lower, &ctx).unwrap()
}

fn pvs(c: &mut Criterion) {
    let registry = Registry::empty();
    bench_open(c, "pvs", || open_vm(&registry));
    let vm = open_vm(&registry);
    let disk = vmsnap_testkit::child(&*vm, "disk:sata0:0");
    c.bench_function("pvs/read-4k-disk", |b| {
        let mut buf = [0u8; 4096];
        b.iter(|| disk.read_at(1 << 20, &mut buf).unwrap())
    });
    bench_probe(c, "pvs", &vmsnap_pvs::PLUGIN, &vm);
}

criterion_group!(benches, pvs);
criterion_main!(benches);

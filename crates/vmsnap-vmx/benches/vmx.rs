//! vmx: open of the sample VM (corpus/vmx/vm.vmx: the configuration, its snapshot
//! database, five VMDKs of a delta chain and three checkpoints, every file through the
//! same-directory policy), a 4 KiB read of its current disk, and the probe.
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
    let path = vmsnap_testkit::corpus("vmx/vm.vmx");
    let (r, o) = (Resolver::new(ExternalPolicy::SameDir), Options::new());
    let ctx = OpenCtx::new(&r, registry, &o);
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    (vmsnap_vmx::PLUGIN.open)(lower, &ctx).unwrap()
}

fn vmx(c: &mut Criterion) {
    let registry = Registry::empty()
        .with(&vmsnap_vmdk::PLUGIN)
        .and_then(|r| r.with(&vmsnap_vmware::PLUGIN))
        .and_then(|r| r.with(&vmsnap_vmx::PLUGIN))
        .unwrap();
    bench_open(c, "vmx", || open_vm(&registry));
    let vm = open_vm(&registry);
    let disk = vmsnap_testkit::child(&*vm, "disk:scsi0:0");
    c.bench_function("vmx/read-4k-disk", |b| {
        let mut buf = [0u8; 4096];
        b.iter(|| disk.read_at(4 << 20, &mut buf).unwrap())
    });
    bench_probe(c, "vmx", &vmsnap_vmx::PLUGIN, &vm);
}

criterion_group!(benches, vmx);
criterion_main!(benches);

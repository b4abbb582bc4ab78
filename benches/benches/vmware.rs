//! VMware checkpoints: open, sequential and random 4 KiB reads of a 256 MiB guest with a
//! hole (.vmss + .vmem, opened from the .vmss), and open of a 6 GiB-layout checkpoint.
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
    bench_open, bench_probe, bench_random_4k, bench_sequential, cached_image, data_dir,
};
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
use vmsnap_vmware::builder::{cpu_group, extra_groups, memory_bytes, region_tags, Ckpt, Reg, G};

fn open(path: &Path) -> Arc<dyn Layer> {
    // Mapped, like the main file: the guest RAM lives in the companion .vmem.
    let r = Resolver::mapped(ExternalPolicy::SameDir);
    let reg = Registry::empty();
    let o = Options::new();
    let ctx = OpenCtx::new(&r, &reg, &o);
    (vmsnap_vmware::PLUGIN.open)(Arc::new(FileLayer::open_mapped(path).unwrap()), &ctx).unwrap()
}

/// A `.vmss` + `.vmem` pair for `regs`, memory fully written (stride 1) or sparse.
fn pair(tag: &str, regs: &[Reg], stride: u64) -> std::path::PathBuf {
    let vmem = cached_image(&format!("vmware-{tag}.vmem"), |p| {
        memory_bytes(regs, 42, stride).0.write_to(p).unwrap();
    });
    let _ = vmem;
    cached_image(&format!("vmware-{tag}.vmss"), |p| {
        let mut groups = extra_groups(0);
        groups.insert(
            1,
            G {
                name: "memory".into(),
                tags: region_tags(regs, Some(regs.len() as u32)),
            },
        );
        groups.push(cpu_group(4, vmsnap_vmware::builder::CpuForm::Scalar, 0));
        Ckpt {
            magic: 0xbed2_bed2,
            groups,
        }
        .build()
        .image
        .write_to(p)
        .unwrap();
    });
    // cached_image writes `<name>.tmp` then renames, so the pair must share a stem.
    data_dir().join(format!("vmware-{tag}.vmss"))
}

fn vmware(c: &mut Criterion) {
    // 256 MiB guest: 192 MiB below a 64 MiB hole, 64 MiB above.
    let regs = [
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 0xC000,
        },
        Reg {
            ppn: 0x10000,
            page_num: 0xC000,
            pages: 0x4000,
        },
    ];
    let path = pair("256m", &regs, 1);
    bench_open(c, "vmware", || open(&path));
    let layer = open(&path);
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    bench_probe(c, "vmware", &vmsnap_vmware::PLUGIN, &file);
    bench_sequential(c, "vmware", &layer, 320 << 20);
    bench_random_4k(c, "vmware", &layer);
    // Open cost does not grow with the guest: a 6 GiB layout, sparse .vmem.
    let big = [
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 0xC0000,
        },
        Reg {
            ppn: 0x100000,
            page_num: 0xC0000,
            pages: 0xC0000,
        },
    ];
    let big = pair("6g", &big, 0x10000);
    bench_open(c, "vmware-6g", || open(&big));
}

criterion_group!(benches, vmware);
criterion_main!(benches);

//! x86 paging: random 4 KiB virtual reads on a mapped region and mapping enumeration, on
//! page tables built in memory (an identity-style map of 1 GiB with 4 KiB pages).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vmsnap_benches::bench_random_4k;
use vmsnap_core::{FileLayer, Layer, MemSource, SliceLayer};
use vmsnap_x86::{Mode, VirtualLayer};

/// Physical memory of `gib` GiB + tables, mapping virtual 0..gib GiB to physical 0.. with
/// 4 KiB pages; returns the memory and the root.
fn identity(gib: u64) -> (Vec<u8>, u64) {
    let data = gib << 30;
    let pages = data / 4096;
    let pts = pages / 512;
    let pds = pts.div_ceil(512);
    let tables = 2 + pds + pts; // PML4, PDPT, PDs, PTs
    let mut m = vec![0u8; (data + tables * 4096) as usize];
    let t0 = data;
    let (pml4, pdpt) = (t0, t0 + 4096);
    let pd0 = t0 + 8192;
    let pt0 = pd0 + pds * 4096;
    let set = |m: &mut Vec<u8>, at: u64, v: u64| {
        m[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
    };
    set(&mut m, pml4, pdpt | 3);
    for d in 0..pds {
        set(&mut m, pdpt + d * 8, (pd0 + d * 4096) | 3);
    }
    for t in 0..pts {
        set(&mut m, pd0 + t * 8, (pt0 + t * 4096) | 3);
        for e in 0..512 {
            let page = t * 512 + e;
            set(&mut m, pt0 + t * 4096 + e * 8, (page * 4096) | 3);
        }
    }
    (m, pml4)
}

fn x86(c: &mut Criterion) {
    let (mem, root) = identity(1);
    let phys: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(mem))));
    let v = Arc::new(VirtualLayer::new(phys.clone(), Mode::Level4, root, false));
    // Random reads over the mapped GiB.
    let mapped: Arc<dyn Layer> = Arc::new(
        SliceLayer::new(
            "mapped",
            vmsnap_core::AddressSpace::GuestVirtual,
            v.clone(),
            0,
            1 << 30,
        )
        .unwrap(),
    );
    bench_random_4k(c, "x86/4-level", &mapped);
    // A 16 MiB working set stays in the CPU caches, so this measures the translation itself;
    // the same reads straight from physical memory are the ceiling.
    let slice = |name: &str, l: Arc<dyn Layer>| -> Arc<dyn Layer> {
        let space = l.space();
        Arc::new(SliceLayer::new(name, space, l, 0, 16 << 20).unwrap())
    };
    bench_random_4k(c, "x86/4-level-16MiB", &slice("mapped-16m", v.clone()));
    bench_random_4k(c, "x86/physical-16MiB", &slice("phys-16m", phys.clone()));
    let mut g = c.benchmark_group("x86/4-level");
    g.sample_size(10);
    g.bench_function("enumerate-1GiB-4k-pages", |b| {
        b.iter(|| v.mappings(0..1 << 48).unwrap().len())
    });
    g.finish();
}

criterion_group!(benches, x86);
criterion_main!(benches);

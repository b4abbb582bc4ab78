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
    real_guest(c);
}

/// Random 4 KiB reads over the mapped ranges of the real Debian guest that
/// `tools/make-paging-guest.py` records (skipped when it has not been made): the same reads
/// `tools/vol3-x86-random.py` times through Volatility 3's Intel32e layer.
fn real_guest(c: &mut Criterion) {
    let dir = vmsnap_testkit::workspace_root().join("target/paging/pc-4level");
    let (Ok(regs), Ok(mem)) = (
        std::fs::read_to_string(dir.join("info-registers.txt")),
        std::fs::read_to_string(dir.join("info-mem.txt")),
    ) else {
        eprintln!("x86 bench: no real guest in {}, skipped", dir.display());
        return;
    };
    let cr3_at = regs.find("CR3=").unwrap() + 4;
    let cr3 = u64::from_str_radix(&regs[cr3_at..cr3_at + 16], 16).unwrap();
    let ranges: Vec<(u64, u64)> = mem
        .lines()
        .filter_map(|l| {
            let (lo, hi) = l.split_whitespace().next()?.split_once('-')?;
            Some((
                u64::from_str_radix(lo, 16).ok()?,
                u64::from_str_radix(hi, 16).ok()?,
            ))
        })
        .collect();
    let total: u64 = ranges.iter().map(|(lo, hi)| (hi - lo) / 4096).sum();
    let mut rng = vmsnap_testkit::image::Rng::new(1234);
    let offsets: Vec<u64> = (0..20_000)
        .map(|_| {
            let mut k = rng.below(total);
            for &(lo, hi) in &ranges {
                let n = (hi - lo) / 4096;
                if k < n {
                    // Layer offsets are the low 48 bits of canonical addresses.
                    return (lo + k * 4096) & ((1 << 48) - 1);
                }
                k -= n;
            }
            unreachable!()
        })
        .collect();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open_mapped(dir.join("core.elf")).unwrap());
    let phys: Arc<dyn Layer> = Arc::new(vmsnap_elf::ElfCore::open_layer(file).unwrap());
    let v = VirtualLayer::new(phys, Mode::Level4, cr3, true);
    let mut g = c.benchmark_group("x86/real-guest");
    g.throughput(criterion::Throughput::Elements(offsets.len() as u64));
    g.sample_size(10);
    g.bench_function("random-4k-mapped/20k", |b| {
        let mut buf = [0u8; 4096];
        b.iter(|| {
            for &o in &offsets {
                v.read_at(o, &mut buf).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, x86);
criterion_main!(benches);

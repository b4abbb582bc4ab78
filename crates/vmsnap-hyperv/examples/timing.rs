//! Quick wall-clock figures (the criterion bench is `benches/benches/hyperv.rs`): open
//! 10k/100k-key containers, read a 64 MiB compressed guest, decode XPRESS pages.
#![allow(missing_docs, dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use common::builder::{build, Opts, K, V};
use common::encode::{
    encode_block, guest_bytes, guest_bytes_with, memory_block, xpress_compress, PageMode,
};
use vmsnap_core::{FileLayer, Layer, MemSource};
use vmsnap_hyperv::{pages, xpress, HyperVContainer, HyperVRam};

fn tree(n: usize) -> Vec<K> {
    let per = 20;
    let kids = (0..n / (per + 1))
        .map(|i| {
            let leaves = (0..per)
                .map(|j| {
                    K::leaf(
                        if j % 3 == 0 { "metric" } else { "setting" },
                        if j % 2 == 0 {
                            V::Int(j as i64)
                        } else {
                            V::Str(format!("v{i}-{j}"))
                        },
                    )
                    .t((j % 16 + 1) as u16)
                })
                .collect();
            K::node("devicetype", leaves).t((i % 16 + 1) as u16)
        })
        .collect();
    vec![K::node("configuration", kids)]
}

fn best<F: FnMut()>(n: usize, mut f: F) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..n {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_secs_f64());
    }
    b
}

fn main() {
    for n in [10_000usize, 100_000] {
        let bytes = build(&tree(n), &Opts::default()).bytes;
        let src = Arc::new(MemSource::new(bytes));
        let s = best(10, || {
            let l = HyperVContainer::open(Arc::new(FileLayer::new(src.clone()))).unwrap();
            assert!(l.container().tree().keys().len() > n * 9 / 10);
        });
        println!("open {n} keys: {:.2} ms", s * 1e3);
    }
    let mib = 64u64;
    let mut ss = vec![
        K::leaf("VmVersion", V::Int(0x900)),
        K::leaf("RamMemoryBlock0", V::Arr(memory_block(mib * 256, 0, 0))),
    ];
    for b in 0..mib {
        ss.push(
            K::leaf(
                &format!("RamBlock{b}"),
                V::Arr(encode_block(
                    &guest_bytes(1 << 20, 1000 + b),
                    PageMode::Auto,
                )),
            )
            .t(2),
        );
    }
    let bytes = build(&[K::node("savedstate", ss)], &Opts::default()).bytes;
    let src = Arc::new(MemSource::new(bytes));
    let mut buf = vec![0u8; 1 << 20];
    let s = best(3, || {
        let l = HyperVRam::open(Arc::new(FileLayer::new(src.clone()))).unwrap();
        for i in 0..mib {
            l.read_at(i << 20, &mut buf).unwrap();
        }
    });
    println!(
        "compressed guest, sequential 1 MiB reads (cold): {:.0} MB/s",
        mib as f64 * 1.048576 / s
    );
    let mut big = vec![0u8; 16 << 20];
    let s = best(3, || {
        let l = HyperVRam::open(Arc::new(FileLayer::new(src.clone()))).unwrap();
        for i in 0..4u64 {
            l.read_at(i * (16 << 20), &mut big).unwrap();
        }
    });
    println!(
        "compressed guest, 16 MiB reads (parallel prefetch, cold): {:.0} MB/s",
        mib as f64 * 1.048576 / s
    );
    let data = guest_bytes_with(8 << 20, 77, false);
    let pc: Vec<Vec<u8>> = data.chunks(4096).map(xpress_compress).collect();
    let mut out = [0u8; 4096];
    let s = best(5, || {
        for p in &pc {
            xpress::decompress(p, &mut out).unwrap();
        }
    });
    println!(
        "XPRESS decode 4 KiB pages: {:.0} MB/s (ratio {:.2})",
        data.len() as f64 / s / 1e6,
        data.len() as f64 / pc.iter().map(Vec::len).sum::<usize>() as f64
    );
    let blocks: Vec<Vec<u8>> = data
        .chunks(1 << 20)
        .map(|b| encode_block(b, PageMode::Auto))
        .collect();
    let mut ob = vec![0u8; pages::BLOCK];
    let s = best(5, || {
        for b in &blocks {
            pages::decode_block(b, &mut ob, 0).unwrap();
        }
    });
    println!(
        "page-record blocks decode: {:.0} MB/s",
        data.len() as f64 / s / 1e6
    );
}

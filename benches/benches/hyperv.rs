//! Hyper-V: open containers of 10k and 100k keys, sequential and random reads of guest
//! RAM (raw and XPRESS-compressed blocks, 64 MiB guests; sequential 64 KiB and 1 MiB
//! reads from a cold layer for the read-ahead path, random 4 KiB reads warm and cold for
//! the page-only path), and XPRESS / page-record decoding throughput. Images are written
//! by the crate's test builder.
#![allow(
    missing_docs,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

#[path = "../../crates/vmsnap-hyperv/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::builder::{build, Opts, K, V};
use common::encode::{
    encode_block, guest_bytes, guest_bytes_with, memory_block, xpress_compress, PageMode,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vmsnap_benches::{bench_open, bench_probe, bench_random_4k, bench_sequential, cached_image};
use vmsnap_core::{FileLayer, Layer};
use vmsnap_hyperv::{pages, xpress, HyperVContainer, HyperVRam, PLUGIN};

/// A configuration-like tree of about `n` keys over 16 key tables, with repeated names.
fn keys_tree(n: usize) -> Vec<K> {
    let per = 20;
    let nodes = n / (per + 1);
    let kids = (0..nodes)
        .map(|i| {
            let leaves = (0..per)
                .map(|j| {
                    let v = match j % 6 {
                        0 => V::Int(j as i64),
                        1 => V::UInt(i as u64),
                        2 => V::Str(format!("value {i} {j}")),
                        3 => V::Bool(j % 2 == 0),
                        4 => V::Arr(vec![j as u8; 16]),
                        _ => V::Double(j as f64),
                    };
                    K::leaf(if j % 3 == 0 { "metric" } else { "setting" }, v).t((j % 16 + 1) as u16)
                })
                .collect();
            K::node("devicetype", leaves).t((i % 16 + 1) as u16)
        })
        .collect();
    vec![K::node("configuration", kids)]
}

fn key_image(n: usize) -> std::path::PathBuf {
    cached_image(&format!("hyperv-{n}-keys.vmcx"), |p| {
        std::fs::write(p, build(&keys_tree(n), &Opts::default()).bytes).unwrap()
    })
}

fn ram_image(mib: u64, compressed: bool) -> std::path::PathBuf {
    let tag = if compressed { "xpress" } else { "raw" };
    cached_image(&format!("hyperv-ram-{mib}m-{tag}.vmrs"), |p| {
        let mut ss = vec![
            K::leaf("VmVersion", V::Int(0x900)),
            K::leaf("RamMemoryBlock0", V::Arr(memory_block(mib * 256, 0, 0))),
        ];
        for b in 0..mib {
            let data = guest_bytes(1 << 20, 1000 + b);
            let v = if compressed {
                encode_block(&data, PageMode::Auto)
            } else {
                data
            };
            ss.push(K::leaf(&format!("RamBlock{b}"), V::Arr(v)).t(2));
        }
        std::fs::write(
            p,
            build(&[K::node("savedstate", ss)], &Opts::default()).bytes,
        )
        .unwrap()
    })
}

fn open_container(p: &Path) -> Arc<dyn Layer> {
    Arc::new(HyperVContainer::open(Arc::new(FileLayer::open(p).unwrap())).unwrap())
}

fn open_ram(p: &Path) -> Arc<dyn Layer> {
    Arc::new(HyperVRam::open(Arc::new(FileLayer::open(p).unwrap())).unwrap())
}

fn hyperv(c: &mut Criterion) {
    for n in [10_000usize, 100_000] {
        let p = key_image(n);
        bench_open(c, &format!("hyperv/{}k-keys", n / 1000), || {
            open_container(&p)
        });
    }
    let small = key_image(10_000);
    bench_probe(
        c,
        "hyperv",
        &PLUGIN,
        &(Arc::new(FileLayer::open(&small).unwrap()) as Arc<dyn Layer>),
    );

    for compressed in [false, true] {
        let p = ram_image(64, compressed);
        let name = if compressed {
            "hyperv-ram-xpress"
        } else {
            "hyperv-ram-raw"
        };
        bench_open(c, name, || open_ram(&p));
        let l = open_ram(&p);
        bench_sequential(c, name, &l, 64 << 20);
        bench_random_4k(c, name, &l);
        // Whole-guest reads in 16 MiB pieces: the parallel-prefetch path.
        let mut g = c.benchmark_group(format!("{name}/sequential-16m"));
        g.throughput(Throughput::Bytes(64 << 20));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(5));
        g.bench_function("cold", |b| {
            let mut buf = vec![0u8; 16 << 20];
            b.iter(|| {
                let l = open_ram(&p);
                for i in 0..4u64 {
                    l.read_at(i * (16 << 20), &mut buf).unwrap();
                }
            })
        });
        g.finish();
        // Sequential reads of ordinary sizes (what dd / convert issue) from a cold layer:
        // the read-ahead path. The layer is opened outside the timed part.
        let mut g = c.benchmark_group(format!("{name}/sequential-cold"));
        g.throughput(Throughput::Bytes(64 << 20));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(5));
        for (label, size) in [("64k", 64usize << 10), ("1m", 1 << 20)] {
            g.bench_function(label, |b| {
                let mut buf = vec![0u8; size];
                b.iter_batched(
                    || open_ram(&p),
                    |l| {
                        let mut off = 0u64;
                        while off < l.len() {
                            let n = (l.len() - off).min(size as u64) as usize;
                            l.read_at(off, &mut buf[..n]).unwrap();
                            off += n as u64;
                        }
                        l
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        g.finish();
        // Random 4 KiB reads from a cold layer: the first read into each block also walks
        // its record headers (bench_random_4k above reuses one layer, indexes warm).
        let mut g = c.benchmark_group(format!("{name}/random-4k-cold"));
        g.throughput(Throughput::Elements(2000));
        g.sample_size(10);
        let pages = 64u64 << 8;
        let mut s = 99u64;
        let offsets: Vec<u64> = (0..2000)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % pages) * 4096
            })
            .collect();
        g.bench_function("2k", |b| {
            let mut buf = [0u8; 4096];
            b.iter_batched(
                || open_ram(&p),
                |l| {
                    for &o in &offsets {
                        l.read_at(o, &mut buf).unwrap();
                    }
                    l
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }

    // Raw decoder throughput: XPRESS pages and whole page-record blocks.
    let data = guest_bytes_with(4 << 20, 77, false);
    let pages_c: Vec<Vec<u8>> = data.chunks(4096).map(xpress_compress).collect();
    let mut g = c.benchmark_group("hyperv/xpress");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("decode-4k-pages", |b| {
        let mut out = [0u8; 4096];
        b.iter(|| {
            for p in &pages_c {
                xpress::decompress(p, &mut out).unwrap();
            }
        })
    });
    let blocks: Vec<Vec<u8>> = data
        .chunks(1 << 20)
        .map(|b| encode_block(b, PageMode::Auto))
        .collect();
    g.bench_function("decode-1m-blocks", |b| {
        let mut out = vec![0u8; pages::BLOCK];
        b.iter(|| {
            for blk in &blocks {
                pages::decode_block(blk, &mut out, 0).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, hyperv);
criterion_main!(benches);

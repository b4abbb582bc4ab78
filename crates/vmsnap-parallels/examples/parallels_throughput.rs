//! Quick throughput check without criterion: `cargo run --release --example parallels_throughput
//! -- IMAGE` reads the whole image in 1 MiB reads and 20k seeded random 4 KiB reads,
//! and prints the rates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Instant;

use vmsnap_core::{FileLayer, Layer, OpenCtx, Options, Registry, Resolver};

fn main() {
    let path = std::env::args().nth(1).expect("usage: throughput IMAGE");
    let reg = Registry::empty().with(&vmsnap_parallels::PLUGIN).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let ctx = OpenCtx {
        resolver: &r,
        registry: &reg,
        depth: 0,
        options: &o,
    };
    let t = Instant::now();
    let lower: Arc<dyn Layer> = Arc::new(FileLayer::open(&path).unwrap());
    let layer = (vmsnap_parallels::PLUGIN.open)(lower, &ctx).unwrap();
    println!("open: {:?}", t.elapsed());
    let len = layer.len();
    let mut buf = vec![0u8; 1 << 20];
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut off = 0;
        while off < len {
            let n = (len - off).min(buf.len() as u64) as usize;
            layer.read_at(off, &mut buf[..n]).unwrap();
            off += n as u64;
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("sequential 1 MiB: {:.2} GB/s", len as f64 / best / 1e9);
    let mut x = 1234u64;
    let pages = (len / 4096).max(1);
    let offsets: Vec<u64> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % pages * 4096
        })
        .collect();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for &o in &offsets {
            layer.read_at(o, &mut buf[..4096]).unwrap();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("random 4 KiB: {:.0} reads/s", offsets.len() as f64 / best);
}

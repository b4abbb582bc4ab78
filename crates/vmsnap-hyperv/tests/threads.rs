//! The read-ahead's helper threads belong to the layer: dropping the layer joins them, so
//! no thread of the library outlives it (LeakSanitizer reported the input still held by
//! detached helpers). Its own test binary, so no other test's helpers are counted.

mod common;

use std::sync::Arc;

use common::builder::{build, Opts, K, V};
use common::encode::{encode_block, guest_bytes, memory_block, PageMode};
use vmsnap_core::{FileLayer, Layer, MemSource};
use vmsnap_hyperv::HyperVRam;

const MIB: usize = 1 << 20;
const BLOCKS: u64 = 16;

/// Threads of this process whose name is the read-ahead helpers' (the kernel keeps the
/// first 15 bytes of a thread name).
fn helper_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|name| name.trim_end().starts_with("vmsnap-hyperv-r"))
                .count()
        })
        .unwrap_or(0)
}

fn all_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// `count()` once it equals `want`, or its last value after 100 ms: a joined thread has
/// run its last instruction, but the kernel may list it in /proc for a moment longer (a
/// loaded CI machine showed one). A helper that was not joined, still decoding megabytes
/// of blocks in a debug build, is still there after that.
fn settled(want: usize, count: impl Fn() -> usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    loop {
        let n = count();
        if n == want || std::time::Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn dropping_the_layer_joins_every_read_ahead_helper() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("skipped: no /proc/self/task to count threads with");
        return;
    }
    let mut ss = vec![
        K::leaf("VmVersion", V::Int(0x900)),
        K::leaf("RamMemoryBlock0", V::Arr(memory_block(BLOCKS * 256, 0, 0))),
    ];
    let mut expected = Vec::new();
    for n in 0..BLOCKS {
        let data = guest_bytes(MIB, 900 + n);
        ss.push(
            K::leaf(
                &format!("RamBlock{n}"),
                V::Arr(encode_block(&data, PageMode::Auto)),
            )
            .t(2),
        );
        expected.extend_from_slice(&data);
    }
    let bytes = build(&[K::node("savedstate", ss)], &Opts::default()).bytes;
    let before = all_threads();
    assert_eq!(helper_threads(), 0);
    for round in 0..5 {
        let layer = HyperVRam::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(
            bytes.clone(),
        )))))
        .unwrap();
        // Two sequential reads: the second starts helpers on the blocks ahead, and the
        // layer is dropped while they are still decoding.
        let mut buf = vec![0u8; 64 << 10];
        layer.read_at(0, &mut buf).unwrap();
        layer.read_at(64 << 10, &mut buf).unwrap();
        assert!(buf[..] == expected[64 << 10..128 << 10], "round {round}");
        drop(layer);
        assert_eq!(
            settled(0, helper_threads),
            0,
            "round {round}: a helper outlived its layer"
        );
        assert_eq!(settled(before, all_threads), before, "round {round}");
    }
}

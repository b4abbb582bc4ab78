//! Hyper-V saved-state guest RAM: the fuzz input becomes the `RamMemoryBlock0` metadata
//! (first 48 bytes) and the `RamBlock0`/`RamBlock1` values (the rest, split at a
//! fuzzed point) of a well-formed container written by the test builder; the RAM layer
//! is opened and read whole. Reaches the record stream and XPRESS through real layers.
#![no_main]
#![allow(dead_code)]

#[path = "../../crates/vmsnap-hyperv/tests/common/mod.rs"]
mod common;

use common::builder::{build, Opts, K, V};
use libfuzzer_sys::fuzz_target;
use vmsnap_hyperv::{PLUGIN, RAM_PLUGIN};

fuzz_target!(|data: &[u8]| {
    if data.len() < 50 {
        return;
    }
    let (meta, rest) = data.split_at(48);
    let cut = usize::from(rest[0]) * rest.len() / 256;
    let (b0, b1) = rest[1..].split_at(cut.min(rest.len() - 1));
    // Keep the guest small: clamp the page count and start.
    let mut meta = meta.to_vec();
    let pages = u64::from_le_bytes(meta[8..16].try_into().unwrap()) % 2048;
    meta[8..16].copy_from_slice(&pages.to_le_bytes());
    let start = u64::from_le_bytes(meta[24..32].try_into().unwrap()) % 4096;
    meta[24..32].copy_from_slice(&start.to_le_bytes());
    let tree = vec![K::node(
        "savedstate",
        vec![
            K::leaf("VmVersion", V::Int(0x900)),
            K::leaf("RamMemoryBlock0", V::Arr(meta)),
            K::leaf("RamBlock0", V::Arr(b0.to_vec())),
            K::leaf("RamBlock1", V::Arr(b1.to_vec())),
            K::node(
                "savedVM",
                vec![K::leaf("partition_state", V::Arr(b1.to_vec()))],
            ),
        ],
    )];
    let bytes = build(&tree, &Opts::default()).bytes;
    if let Ok(layer) = common::open_with(bytes, &[&PLUGIN, &RAM_PLUGIN]) {
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
});

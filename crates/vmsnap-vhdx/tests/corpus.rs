//! The committed VHDX sample (corpus/vhdx/make.sh: qemu-img create + qemu-io writes), read
//! byte-exact against `qemu-img convert -O raw`, with its unwritten block unallocated.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{open_path, oracle};
use vmsnap_core::{ExtentKind, ExternalPolicy};
use vmsnap_testkit::{assert_same_bytes, corpus, qemu_img_info, read_all};

#[test]
fn committed_sample_matches_qemu_img() {
    let path = corpus("vhdx/sample.vhdx");
    let l = open_path(&path, ExternalPolicy::Deny).unwrap();
    let info = qemu_img_info(&path);
    assert_eq!(info["format"], "vhdx");
    assert_eq!(l.len(), info["virtual-size"].as_u64().unwrap());
    assert_eq!(l.len(), 3 << 20);
    let got = read_all(l.as_ref());
    assert_same_bytes(&got, &oracle(&path, &["-f", "vhdx"]), "sample.vhdx");
    // The recipe's writes, as qemu-io wrote them.
    assert!(got[..64 << 10].iter().all(|&b| b == 0xc4));
    assert!(got[2099200..2099200 + 4096].iter().all(|&b| b == 0x3c));
    // Block 1 (1..2 MiB) was never written: no data there.
    let ext = l.extents(1 << 20..2 << 20).unwrap();
    assert!(
        ext.iter().all(|e| e.kind != ExtentKind::Data),
        "block 1: {ext:?}"
    );
    let d = l.describe();
    assert_eq!(d["subformat"], "dynamic");
    assert_eq!(d["block_size"], 1 << 20);
    assert_eq!(d["block_states"]["fully_present"], 2);
}

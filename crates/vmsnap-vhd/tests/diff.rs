//! Differencing VHDs (qemu-img cannot make them): a chain built by the test builder, read
//! through the external-reference policy and compared with the builder's expectation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use vmsnap_core::{
    ErrorKind, ExtentKind, ExternalPolicy, Layer, LayerExt, MissingPolicy, RefDecision, Severity,
};
use vmsnap_testkit::{assert_same_bytes, read_all, scratch_dir};

const BS: u32 = 4096;

/// Reading the whole layer fails as unavailable, the message naming `what`.
fn assert_unavailable(l: &dyn Layer, what: &str) {
    let e = l.read_vec(0, l.len(), 1 << 30, "whole disk").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains(what), "{e}");
}

fn present(pattern: &[usize]) -> Vec<bool> {
    (0..8).map(|s| pattern.contains(&s)).collect()
}

struct Chain {
    dir: std::path::PathBuf,
    base: Spec,
    mid: Spec,
    top: Spec,
}

fn chain(tag: &str) -> Chain {
    let dir = scratch_dir(tag);
    let mut base = Spec::dynamic(64 * 1024, BS);
    base.uuid = [0xB0; 16];
    for i in [0u32, 1, 2, 5, 15] {
        base = base.block(i, pattern(i as u8, BS as usize), None);
    }
    let mut mid = Spec::dynamic(64 * 1024, BS).differencing(base.uuid, "base.vhd");
    mid.uuid = [0x3D; 16];
    mid = mid
        .block(1, pattern(0x40, BS as usize), Some(present(&[0, 3, 7])))
        .block(3, pattern(0x41, BS as usize), Some(present(&[1, 2])))
        .block(5, pattern(0x42, BS as usize), None);
    let mut top = Spec::dynamic(64 * 1024, BS).differencing(mid.uuid, "mid.vhd");
    top.uuid = [0x70; 16];
    top = top
        .block(1, pattern(0x80, BS as usize), Some(present(&[3, 4])))
        .block(2, pattern(0x81, BS as usize), Some(present(&[])));
    std::fs::write(dir.join("base.vhd"), base.build()).unwrap();
    std::fs::write(dir.join("mid.vhd"), mid.build()).unwrap();
    std::fs::write(dir.join("top.vhd"), top.build()).unwrap();
    Chain {
        dir,
        base,
        mid,
        top,
    }
}

#[test]
fn three_level_chain_reads_through_parents_per_sector_bitmap() {
    let c = chain("vhd-chain");
    let base = c.base.expected(None);
    let mid = c.mid.expected(Some(&base));
    let want = c.top.expected(Some(&mid));
    let l = open_path(&c.dir.join("top.vhd"), ExternalPolicy::SameDir).unwrap();
    assert_same_bytes(&read_all(l.as_ref()), &want, "top over mid over base");
    // Unaligned reads cross sectors with different sources.
    let mut b = vec![0u8; 1000];
    l.read_at(4096 + 3 * 512 - 100, &mut b).unwrap();
    assert_same_bytes(&b, &want[4096 + 1436..4096 + 2436], "unaligned");
    let d = l.describe();
    assert_eq!(d["subformat"], "differencing");
    assert_eq!(d["parent"]["opened"], true);
    assert_eq!(d["parent"]["name"], "mid.vhd");
    let refs = l.external_refs();
    assert!(
        matches!(refs[0].decision, RefDecision::Opened { .. }),
        "{refs:?}"
    );
    assert_eq!(refs[0].name, "mid.vhd");
    // The absolute locator is listed, not followed.
    assert!(refs
        .iter()
        .any(|r| r.name == "C:/vms/mid.vhd" && r.decision == RefDecision::Listed));
    // Extents: block 2 of top has no sectors present, so it is the parent's (mid's
    // unallocated block 2 → base's data).
    let ext = l.extents(0..l.len()).unwrap();
    let total: u64 = ext.iter().map(|e| e.len).sum();
    assert_eq!(total, l.len());
    assert!(ext.iter().any(|e| e.kind == ExtentKind::Unallocated));
    assert!(
        l.findings().iter().all(|f| f.severity != Severity::Unsafe),
        "{:?}",
        l.findings()
    );
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[test]
fn denied_parent_is_unavailable_and_an_unsafe_finding() {
    let c = chain("vhd-chain-deny");
    let want = c.top.expected(None);
    let top = c.dir.join("top.vhd");
    // The parent's sectors fail to read by default (they used to read as zeros) …
    let l = open_path(&top, ExternalPolicy::Deny).unwrap();
    assert_unavailable(l.as_ref(), "parent disk");
    // … and read as zeros only by opt-in.
    let z = open_path_missing(&top, ExternalPolicy::Deny, MissingPolicy::Zeros).unwrap();
    assert_same_bytes(&read_all(z.as_ref()), &want, "top alone");
    assert!(l
        .external_refs()
        .iter()
        .all(|r| matches!(r.decision, RefDecision::Denied { .. })));
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::PARENT && f.severity == Severity::Unsafe));
    assert_eq!(l.describe()["parent"]["opened"], false);
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[test]
fn parent_with_wrong_uuid_is_refused() {
    let c = chain("vhd-chain-uuid");
    let mut other = c.mid.clone();
    other.uuid = [0x99; 16];
    std::fs::write(c.dir.join("mid.vhd"), other.build()).unwrap();
    let top = c.dir.join("top.vhd");
    let l = open_path(&top, ExternalPolicy::SameDir).unwrap();
    assert_unavailable(l.as_ref(), "unique id");
    let z = open_path_missing(&top, ExternalPolicy::SameDir, MissingPolicy::Zeros).unwrap();
    assert_same_bytes(&read_all(z.as_ref()), &c.top.expected(None), "no parent");
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::PARENT && f.message.contains("unique id")));
    assert!(matches!(
        l.external_refs()[0].decision,
        RefDecision::Failed { .. }
    ));
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[test]
fn self_parent_loop_stops_at_the_chain_cap() {
    let dir = scratch_dir("vhd-loop");
    let mut s = Spec::dynamic(8192, BS).differencing([0x55; 16], "loop.vhd");
    s.uuid = [0x55; 16];
    s = s.block(0, pattern(3, BS as usize), Some(present(&[0])));
    std::fs::write(dir.join("loop.vhd"), s.build()).unwrap();
    let l = open_path(&dir.join("loop.vhd"), ExternalPolicy::SameDir).unwrap();
    let mut b = [0u8; 512];
    l.read_at(0, &mut b).unwrap();
    assert_eq!(&b[..], &pattern(3, 512)[..]);
    // At the cap the parent is not opened: what it would supply is unavailable.
    assert_unavailable(l.as_ref(), "depth");
    let _ = std::fs::remove_dir_all(&dir);
}

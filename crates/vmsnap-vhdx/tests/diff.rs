//! VHDX differencing disks (QEMU refuses HasParent): built by the test builder with
//! partially present blocks, read through the policy and compared with the builder.
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

const BS: usize = 1 << 20;

/// Reading the whole layer fails as unavailable, the message naming `what`.
fn assert_unavailable(l: &dyn Layer, what: &str) {
    let e = l.read_vec(0, l.len(), 1 << 30, "whole disk").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains(what), "{e}");
}

struct Pair {
    dir: std::path::PathBuf,
    parent: Spec,
    child: Spec,
}

fn present(sectors: usize, on: &[std::ops::Range<usize>]) -> Vec<bool> {
    (0..sectors)
        .map(|s| on.iter().any(|r| r.contains(&s)))
        .collect()
}

fn pair(tag: &str, lss: u32) -> Pair {
    let dir = scratch_dir(tag);
    let spb = BS / lss as usize;
    let mut parent = Spec::dynamic(4 << 20, BS as u32, lss)
        .full(0, pattern(1, BS))
        .full(1, pattern(2, BS))
        .full(3, pattern(3, BS));
    parent.data_write_guid = [0xAA; 16];
    let child = Spec::dynamic(4 << 20, BS as u32, lss)
        .child_of(parent.data_write_guid, "parent.vhdx")
        .partial(
            0,
            pattern(0x40, BS),
            present(spb, &[0..1, 5..9, spb - 1..spb]),
        )
        .full(2, pattern(0x41, BS))
        .partial(3, pattern(0x42, BS), present(spb, &[]));
    std::fs::write(dir.join("parent.vhdx"), parent.build().0).unwrap();
    std::fs::write(dir.join("child.vhdx"), child.build().0).unwrap();
    Pair { dir, parent, child }
}

#[test]
fn partially_present_blocks_read_from_the_parent_per_sector_bitmap() {
    for lss in [512u32, 4096] {
        let p = pair(&format!("vhdx-diff-{lss}"), lss);
        let want = p.child.expected(Some(&p.parent.expected(None)));
        let l = open_path(&p.dir.join("child.vhdx"), ExternalPolicy::SameDir).unwrap();
        assert_same_bytes(&read_all(l.as_ref()), &want, "child over parent");
        // An unaligned read across present and absent sectors.
        let mut b = vec![0u8; 3000];
        l.read_at(4 * lss as u64 + 17, &mut b).unwrap();
        let at = 4 * lss as usize + 17;
        assert_same_bytes(&b, &want[at..at + 3000], "unaligned");
        let d = l.describe();
        assert_eq!(d["subformat"], "differencing");
        assert_eq!(d["parent"]["opened"], true);
        assert_eq!(d["block_states"]["partially_present"], 2);
        let refs = l.external_refs();
        assert_eq!(refs[0].name, "parent.vhdx");
        assert!(matches!(refs[0].decision, RefDecision::Opened { .. }));
        assert!(refs
            .iter()
            .any(|r| r.name == "C:/vms/parent.vhdx" && r.decision == RefDecision::Listed));
        let ext = l.extents(0..l.len()).unwrap();
        assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), l.len());
        assert_eq!(ext[0].kind, ExtentKind::Data);
        assert_eq!(ext[0].len, u64::from(lss));
        assert!(
            l.findings().iter().all(|f| f.severity != Severity::Unsafe),
            "{:?}",
            l.findings()
        );
        let _ = std::fs::remove_dir_all(&p.dir);
    }
}

#[test]
fn denied_parent_is_unavailable_with_an_unsafe_finding() {
    let p = pair("vhdx-diff-deny", 512);
    let child = p.dir.join("child.vhdx");
    // The parent's sectors fail to read by default (they used to read as zeros) …
    let l = open_path(&child, ExternalPolicy::Deny).unwrap();
    assert_unavailable(l.as_ref(), "parent disk");
    // … and read as zeros only by opt-in.
    let z = open_path_missing(&child, ExternalPolicy::Deny, MissingPolicy::Zeros).unwrap();
    assert_same_bytes(
        &read_all(z.as_ref()),
        &p.child.expected(None),
        "child alone",
    );
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::PARENT && f.severity == Severity::Unsafe));
    assert!(l
        .external_refs()
        .iter()
        .all(|r| matches!(r.decision, RefDecision::Denied { .. })));
    let _ = std::fs::remove_dir_all(&p.dir);
}

#[test]
fn parent_with_another_data_write_guid_is_refused() {
    let p = pair("vhdx-diff-guid", 512);
    let mut other = p.parent.clone();
    other.data_write_guid = [0xBB; 16];
    std::fs::write(p.dir.join("parent.vhdx"), other.build().0).unwrap();
    let child = p.dir.join("child.vhdx");
    let l = open_path(&child, ExternalPolicy::SameDir).unwrap();
    assert_unavailable(l.as_ref(), "parent_linkage");
    let z = open_path_missing(&child, ExternalPolicy::SameDir, MissingPolicy::Zeros).unwrap();
    assert_same_bytes(&read_all(z.as_ref()), &p.child.expected(None), "no parent");
    assert!(l
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_core::rule::PARENT && f.message.contains("parent_linkage")));
    assert!(matches!(
        l.external_refs()[0].decision,
        RefDecision::Failed { .. }
    ));
    let _ = std::fs::remove_dir_all(&p.dir);
}

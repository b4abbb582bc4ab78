//! A Hyper-V checkpoint (`.avhdx`) without its parent: opening works and reports the
//! parent, but the sectors the parent supplies fail to read (they read as 8 GiB of wrong
//! zeros before), naming the parent as the file stores it; only the opt-in reads zeros.
//! Built with the test builder: qemu-img cannot write a differencing VHDX.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use vmsnap_core::{ErrorKind, ExtentKind, ExternalPolicy, LayerExt, MissingPolicy};
use vmsnap_testkit::{assert_same_bytes, read_all, scratch_dir};

const BS: usize = 1 << 20;

#[test]
fn avhdx_without_its_parent_is_unavailable() {
    let dir = scratch_dir("vhdx-avhdx");
    let mut parent = Spec::dynamic(4 << 20, BS as u32, 512)
        .full(0, pattern(1, BS))
        .full(1, pattern(2, BS));
    parent.data_write_guid = [0xC7; 16];
    let child = Spec::dynamic(4 << 20, BS as u32, 512)
        .child_of(parent.data_write_guid, "disk.vhdx")
        .full(2, pattern(0x41, BS));
    let avhdx = dir.join("disk_8C1E3B0A.avhdx");
    std::fs::write(&avhdx, child.build().0).unwrap();

    // Parent absent: the child's own block reads; the parent's fail, naming it.
    let l = open_path(&avhdx, ExternalPolicy::SameDir).unwrap();
    let mut own = vec![0u8; BS];
    l.read_at(2 * BS as u64, &mut own).unwrap();
    assert_eq!(own, pattern(0x41, BS));
    let e = l.read_vec(0, 4096, 4096, "first page").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("vhdx: "), "{msg}");
    assert!(
        msg.contains("the parent disk \"disk.vhdx\" is unavailable"),
        "{msg}"
    );
    assert!(msg.contains("No such file"), "{msg}");
    let ext = l.extents(0..l.len()).unwrap();
    assert_eq!(ext[0].kind, ExtentKind::Unavailable, "{ext:?}");
    assert!(ext.iter().any(|e| e.kind == ExtentKind::Data));
    // Opt-in: zeros where the parent would be.
    let z = open_path_missing(&avhdx, ExternalPolicy::SameDir, MissingPolicy::Zeros).unwrap();
    assert_same_bytes(&read_all(z.as_ref()), &child.expected(None), "zeros");

    // Parent present: the chain reads through it.
    std::fs::write(dir.join("disk.vhdx"), parent.build().0).unwrap();
    let l = open_path(&avhdx, ExternalPolicy::SameDir).unwrap();
    let want = child.expected(Some(&parent.expected(None)));
    assert_same_bytes(&read_all(l.as_ref()), &want, "child over parent");
    std::fs::remove_dir_all(&dir).ok();
}

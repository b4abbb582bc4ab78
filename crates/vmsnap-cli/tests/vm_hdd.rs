//! A Parallels `.hdd` bundle through the CLI: the directory opens by its descriptor under
//! `vm-dir`, `check` calls it unsafe with rule `references`, and `--layer` selects a
//! snapshot, whose bytes are what qemu-img reads from that snapshot's image.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use vmsnap_testkit::{assert_same_bytes, qemu_img_raw, scratch_dir, workspace_root};

const SNAPSHOT: &str = "4f0e2ad4-a9b0-4bd1-9c1e-0c6a3e5b7d21";

fn vmsnap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmsnap"));
    c.current_dir(workspace_root());
    c
}

#[test]
fn check_on_a_bundle_is_unsafe_with_rule_references() {
    for input in [
        "corpus/hdd/snapshot.hdd",
        "corpus/hdd/snapshot.hdd/DiskDescriptor.xml",
    ] {
        let out = vmsnap().args(["check", input]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{input}: {text}");
        assert!(text.contains("UNSAFE"), "{input}: {text}");
        assert!(text.contains("FAIL  references:"), "{input}: {text}");
    }
}

#[test]
fn layer_selects_a_snapshot_of_the_bundle() {
    let dir = scratch_dir("vm-hdd-layer");
    let out = dir.join("snap.raw");
    let st = vmsnap()
        .args([
            "convert",
            "--layer",
            &format!("snapshot:{SNAPSHOT}"),
            "corpus/hdd/snapshot.hdd",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let image = workspace_root().join(format!(
        "corpus/hdd/snapshot.hdd/snapshot.hdd.0.{{{SNAPSHOT}}}.hds"
    ));
    let want = qemu_img_raw(&image, &["-f", "parallels"]);
    assert_same_bytes(&std::fs::read(&out).unwrap(), &want, "snapshot layer");
    // The default layer is the current state, which differs from the snapshot.
    let cur = dir.join("current.raw");
    assert!(vmsnap()
        .args(["convert", "corpus/hdd/snapshot.hdd"])
        .arg(&cur)
        .status()
        .unwrap()
        .success());
    let cur = std::fs::read(&cur).unwrap();
    assert_eq!((cur[512 << 10], want[512 << 10]), (0x33, 0x11));
    let _ = std::fs::remove_dir_all(&dir);
}

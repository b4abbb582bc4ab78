//! `map` says which file of a backing chain holds each extent (depth, file, offset in it)
//! and whether it is stored compressed, as `qemu-img map --output=json` does: checked
//! against qemu-img itself on chains and compressed images.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vmsnap_testkit::{scratch_dir, workspace_root};

fn vmsnap_map(path: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["map", "--json"])
        .arg(path)
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["extents"].as_array().unwrap().clone()
}

fn qemu_map(path: &Path) -> Option<Vec<Value>> {
    let out = Command::new("qemu-img")
        .args(["map", "--output=json"])
        .arg(path)
        .current_dir(workspace_root())
        .output()
        .ok()?;
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()?
        .as_array()
        .cloned()
}

/// Every range qemu-img calls present has, in vmsnap's map, the same depth, compression and
/// offset in the file at that depth; ranges nothing stores have no depth. Returns how many
/// present ranges were compared.
fn same_origins(path: &Path) -> Option<usize> {
    let q = qemu_map(path)?;
    let v = vmsnap_map(path);
    let mut compared = 0;
    for e in &q {
        let (start, len) = (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap());
        let pieces: Vec<&Value> = v
            .iter()
            .filter(|p| {
                let s = p["start"].as_u64().unwrap();
                s < start + len && s + p["length"].as_u64().unwrap() > start
            })
            .collect();
        assert!(
            !pieces.is_empty(),
            "{}: nothing at {start:#x}",
            path.display()
        );
        for p in pieces {
            let at = p["start"].as_u64().unwrap().max(start);
            if e["present"] == true {
                assert_eq!(
                    p["depth"],
                    e["depth"],
                    "{}: depth at {at:#x}: {p} vs {e}",
                    path.display()
                );
                assert_eq!(
                    p["compressed"],
                    e["compressed"],
                    "{}: at {at:#x}: {p} vs {e}",
                    path.display()
                );
                // qemu-img also calls zero what the host file has as a hole; `data` is
                // the format's own answer.
                assert_eq!(
                    p["data"],
                    e["data"],
                    "{}: at {at:#x}: {p} vs {e}",
                    path.display()
                );
                if let (Some(off), true) = (e["offset"].as_u64(), e["data"] == true) {
                    let in_piece =
                        p["offset"].as_u64().unwrap() + (at - p["start"].as_u64().unwrap());
                    assert_eq!(
                        in_piece,
                        off + (at - start),
                        "{}: offset at {at:#x}",
                        path.display()
                    );
                }
                let file = p["file"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: no file: {p}", path.display()));
                assert!(Path::new(file).is_file(), "{file}");
            } else {
                assert_eq!(
                    p["depth"],
                    Value::Null,
                    "{}: at {at:#x}: {p}",
                    path.display()
                );
                assert_eq!(p["data"], false);
            }
            compared += 1;
        }
    }
    Some(compared)
}

#[test]
fn chains_name_the_file_and_depth_like_qemu_img() {
    let root = workspace_root();
    let Some(n) = same_origins(&root.join("corpus/qcow2/chain-top.qcow2")) else {
        eprintln!("skipped: qemu-img is not installed");
        return;
    };
    assert!(n >= 10, "{n}");
    let v = vmsnap_map(&root.join("corpus/qcow2/chain-top.qcow2"));
    let depths: Vec<u64> = v.iter().filter_map(|p| p["depth"].as_u64()).collect();
    for d in [0, 1, 2] {
        assert!(depths.contains(&d), "depth {d} missing: {depths:?}");
    }
    assert!(v.iter().any(|p| p["file"]
        .as_str()
        .is_some_and(|f| f.ends_with("chain-base.qcow2"))));
    // A VMDK descriptor's data lies in its extent file, as qemu-img says (not in the
    // descriptor); a Parallels bundle with a snapshot reads two images, so no one file or
    // offset is claimed for its data, while a bundle of one image names that image.
    same_origins(&root.join("corpus/vmx/data.vmdk")).unwrap();
    let files = |f: &str| -> Vec<(Option<String>, Option<u64>)> {
        vmsnap_map(&root.join(f))
            .iter()
            .filter(|p| p["data"] == true)
            .map(|p| (p["file"].as_str().map(String::from), p["offset"].as_u64()))
            .collect()
    };
    let data = files("corpus/vmx/data.vmdk");
    assert_eq!(data.len(), 2, "{data:?}");
    assert!(data
        .iter()
        .all(|(f, o)| f.as_deref().is_some_and(|f| f.ends_with("/data-s001.vmdk")) && o.is_some()));
    let snapshot = files("corpus/hdd/snapshot.hdd");
    assert!(!snapshot.is_empty());
    assert!(
        snapshot.iter().all(|(f, o)| f.is_none() && o.is_none()),
        "{snapshot:?}"
    );
    let simple = files("corpus/hdd/simple.hdd");
    assert!(
        simple
            .iter()
            .all(|(f, _)| f.as_deref().is_some_and(|f| f.ends_with(".hds"))),
        "{simple:?}"
    );
    // QED over a QED, and single files.
    for f in [
        "corpus/qed/overlay-qed.qed",
        "corpus/qcow2/v3.qcow2",
        "corpus/qcow2/zlib.qcow2",
    ] {
        same_origins(&root.join(f)).unwrap();
    }
}

#[test]
fn compressed_clusters_and_grains_are_marked() {
    let root = workspace_root();
    let dir = std::env::temp_dir().join(format!("vmsnap-mapc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("text.raw");
    let words: Vec<u8> = b"alpha beta gamma delta "
        .iter()
        .copied()
        .cycle()
        .take(1 << 20)
        .collect();
    std::fs::write(&raw, words).unwrap();
    let z = dir.join("z.qcow2");
    let ok = Command::new("qemu-img")
        .args(["convert", "-c", "-O", "qcow2"])
        .arg(&raw)
        .arg(&z)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    // A compressed base under an uncompressed overlay: depth 1, compressed.
    let top = dir.join("top.qcow2");
    assert!(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-b", "z.qcow2", "-F", "qcow2"])
        .arg(&top)
        .status()
        .unwrap()
        .success());
    for f in [&z, &top] {
        same_origins(f).unwrap();
        assert!(vmsnap_map(f).iter().any(|p| p["compressed"] == true));
    }
    same_origins(&root.join("corpus/vmdk/stream.vmdk")).unwrap();
    let text = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .arg("map")
        .arg(&top)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("data, compressed") && text.contains("z.qcow2"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Found while writing the origin map: the VMDK reader's extents of a child with a parent
/// reported the parent's data as unallocated, so `convert` left holes where qemu-img
/// writes the parent's bytes (reads through `cat` were right): a wrong image with exit 0.
#[test]
fn vmdk_child_extents_include_the_parent_data() {
    let Some(q) = qemu_map(&workspace_root().join("corpus/vmdk/child.vmdk")) else {
        return;
    };
    let v = vmsnap_map(&workspace_root().join("corpus/vmdk/child.vmdk"));
    assert_eq!(q[0]["data"], true);
    assert_eq!(v[0]["data"], true, "{}", v[0]);
    // And what convert writes from those extents is what qemu-img writes.
    let dir = scratch_dir("vmdk-child-convert");
    let out = dir.join("child.raw");
    let st = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["convert", "--quiet", "corpus/vmdk/child.vmdk"])
        .arg(&out)
        .current_dir(workspace_root())
        .status()
        .unwrap();
    assert!(st.success());
    let want = vmsnap_testkit::qemu_img_raw(&workspace_root().join("corpus/vmdk/child.vmdk"), &[]);
    assert!(
        std::fs::read(&out).unwrap() == want,
        "convert differs from qemu-img"
    );
    std::fs::remove_dir_all(&dir).ok();
}

//! Every corpus bundle as dissect.hypervisor's `hdd.HDD` reads it: the storages, the
//! snapshot tree and the bytes of every state equal vmsnap's. Ignored by default: `cargo
//! xtask dissect` runs it with `DISSECT_PYTHON`, a Python that has dissect.hypervisor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Registry, Resolver};
use vmsnap_hdd::{Hdd, SNAPSHOT_PREFIX};
use vmsnap_testkit::{assert_same_bytes, corpus, read_all, run, scratch_dir};

fn dissect(bundle: &Path, out: &Path) -> Value {
    let py = std::env::var_os("DISSECT_PYTHON")
        .expect("DISSECT_PYTHON: a Python with dissect.hypervisor (cargo xtask dissect)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/dissect_hdd.py");
    let stdout = run(Command::new(py).arg(script).arg(bundle).arg(out));
    serde_json::from_slice(&stdout).unwrap()
}

#[test]
#[ignore = "needs dissect.hypervisor: cargo xtask dissect"]
fn every_bundle_reads_like_dissect() {
    for name in ["simple", "split", "snapshot"] {
        let dir = corpus(&format!("hdd/{name}.hdd"));
        let out = scratch_dir(&format!("dissect-hdd-{name}"));
        let want = dissect(&dir, &out);
        let r = Resolver::new(ExternalPolicy::VmDir).with_vm_dir(&dir);
        let (reg, o) = (Registry::empty(), Options::new());
        let ctx = OpenCtx::new(&r, &reg, &o);
        let xml = Arc::new(FileLayer::open(dir.join("DiskDescriptor.xml")).unwrap());
        let hdd = Hdd::open(xml, &ctx).unwrap();
        let d = hdd.descriptor();

        let storages: Vec<Value> = d
            .storages
            .iter()
            .map(|s| {
                serde_json::json!({
                    "start": s.start,
                    "end": s.end,
                    "images": s.images.iter().map(|i| serde_json::json!({
                        "guid": i.guid.as_str(), "type": i.kind, "file": i.file,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        assert_eq!(Value::Array(storages), want["storages"], "{name}: storages");
        let mut shots: Vec<(String, String)> = d
            .shots
            .iter()
            .map(|s| {
                let p = s
                    .parent
                    .as_ref()
                    .map_or(vmsnap_hdd::raw::NULL_GUID, |p| p.as_str());
                (s.guid.as_str().to_string(), p.to_string())
            })
            .collect();
        let mut theirs: Vec<(String, String)> = want["shots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["guid"].as_str().unwrap().to_string(),
                    s["parent"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        shots.sort();
        theirs.sort();
        assert_eq!(shots, theirs, "{name}: snapshots");

        // The current state, and each snapshot by its layer name.
        let top = std::fs::read(out.join("top.raw")).unwrap();
        assert_same_bytes(&read_all(&hdd), &top, &format!("{name}: current state"));
        assert_same_bytes(
            &read_all(&hdd),
            &std::fs::read(out.join(format!("{}.raw", d.top.as_str()))).unwrap(),
            &format!("{name}: TopGUID"),
        );
        let children = hdd.children();
        let mut snapshots = 0;
        for s in d.shots.iter().filter(|s| s.guid != d.top) {
            let child = format!("{SNAPSHOT_PREFIX}{}", s.guid.as_str());
            let layer = &children.iter().find(|c| c.name == child).unwrap().layer;
            let theirs = std::fs::read(out.join(format!("{}.raw", s.guid.as_str()))).unwrap();
            assert_same_bytes(
                &read_all(layer.as_ref()),
                &theirs,
                &format!("{name}: {child}"),
            );
            snapshots += 1;
        }
        assert_eq!(snapshots, usize::from(name == "snapshot"), "{name}");
        let _ = std::fs::remove_dir_all(&out);
    }
}

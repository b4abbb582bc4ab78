//! Every OVF 1.x sample as dissect.hypervisor reads it: the disk files `OVF.disks()`
//! lists (in drive order) are the files of vmsnap's `disk:*` children, and the bytes
//! dissect's VMDK and qcow2 readers read from each equal the child's (the OVA read in
//! place, dissect reading the members GNU tar extracted). dissect's `descriptor/ovf.py`
//! knows only the OVF 1 namespace and `rasd` `Item`s, so the OVF 2.0 sample (`vbox.ovf`,
//! `sasd` `StorageItem`s) is compared with qemu-img only (`tests/oracle.rs`). Ignored by
//! default: `cargo xtask dissect` runs it with `DISSECT_PYTHON`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{ova, ovf, sample};
use serde_json::Value;
use vmsnap_core::Layer;
use vmsnap_ovf::digest::{hex, Algorithm, Hasher};
use vmsnap_testkit::{read_all, run};

fn dissect(descriptor: &Path) -> Value {
    let py = std::env::var_os("DISSECT_PYTHON")
        .expect("DISSECT_PYTHON: a Python with dissect.hypervisor (cargo xtask dissect)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/dissect_ovf.py");
    serde_json::from_slice(&run(Command::new(py).arg(script).arg(descriptor))).unwrap()
}

fn compare(what: &str, o: &vmsnap_ovf::Ovf, want: &Value) {
    let files: Vec<&str> = o
        .package()
        .disks
        .iter()
        .map(|d| d.file.as_ref().unwrap().href.as_str())
        .collect();
    let theirs: Vec<&str> = want["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(files, theirs, "{what}: disk files");
    for d in &o.package().disks {
        let href = &d.file.as_ref().unwrap().href;
        let layer = d.child.as_ref().unwrap();
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(&read_all(layer.as_ref()));
        let b = &want["bytes"][href.as_str()];
        assert_eq!(layer.len(), b["size"].as_u64().unwrap(), "{what} {href}");
        assert_eq!(
            hex(&h.finish()),
            b["sha256"].as_str().unwrap(),
            "{what} {href}"
        );
    }
}

#[test]
#[ignore = "needs dissect.hypervisor: cargo xtask dissect"]
fn every_ovf1_sample_reads_like_dissect() {
    compare(
        "vmware.ovf",
        &ovf("vmware.ovf"),
        &dissect(&sample("vmware.ovf")),
    );
    for name in ["two-disk.ova", "bad-manifest.ova"] {
        let dir = common::extracted(name, &format!("dissect-ovf-{name}"));
        let o = ova(name);
        assert_eq!(o.children().len(), 2);
        compare(name, &o, &dissect(&dir.join("two-disk.ovf")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Every corpus VM as dissect.hypervisor reads it: the disk file names `PVS.disks()`
//! yields from `config.pvs` are the `SystemName`s vmsnap reports, in order, and the bytes
//! of every disk and snapshot disk vmsnap opens are what dissect's `HDD` reads from the
//! same bundle (the current state, and the bundle state of the snapshot's GUID). Ignored
//! by default: `cargo xtask dissect` runs it with `DISSECT_PYTHON`, a Python that has
//! dissect.hypervisor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{open, sample};
use serde_json::Value;
use vmsnap_testkit::child;
use vmsnap_testkit::{assert_same_bytes, read_all, run, scratch_dir};

fn dissect(vm: &Path, out: &Path) -> Value {
    let py = std::env::var_os("DISSECT_PYTHON")
        .expect("DISSECT_PYTHON: a Python with dissect.hypervisor (cargo xtask dissect)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/dissect_pvs.py");
    let stdout = run(Command::new(py).arg(script).arg(vm).arg(out));
    serde_json::from_slice(&stdout).unwrap()
}

#[test]
#[ignore = "needs dissect.hypervisor: cargo xtask dissect"]
fn every_vm_reads_like_dissect() {
    let mut compared = 0;
    for name in ["plain", "snapshots", "encrypted", "absolute"] {
        let dir = sample(&format!("{name}.pvm"));
        let out = scratch_dir(&format!("dissect-pvs-{name}"));
        let want = dissect(&dir, &out);
        let vm = open(name);
        let ours: Vec<Value> = vm
            .disks()
            .iter()
            .filter_map(|d| d.device.system_name.clone())
            .map(Value::from)
            .collect();
        assert_eq!(Value::Array(ours), want["disks"], "{name}: disk names");
        for (i, d) in vm.disks().iter().enumerate() {
            if !d.link.as_ref().is_some_and(|l| l.opened()) {
                continue;
            }
            let theirs = std::fs::read(out.join(format!("{i}.raw"))).unwrap();
            let layer = d.layer_name();
            assert_same_bytes(
                &read_all(child(&vm, &layer).as_ref()),
                &theirs,
                &format!("{name}: {layer}"),
            );
            compared += 1;
            for s in vm.snapshots() {
                let layer = format!("{}/{layer}", s.prefix());
                let theirs =
                    std::fs::read(out.join(format!("{i}.{}.raw", s.state.guid.as_str()))).unwrap();
                assert_same_bytes(
                    &read_all(child(&vm, &layer).as_ref()),
                    &theirs,
                    &format!("{name}: {layer}"),
                );
                compared += 1;
            }
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    // plain: two disks; snapshots: one disk and its two snapshots; encrypted: none;
    // absolute: one.
    assert_eq!(compared, 6);
}

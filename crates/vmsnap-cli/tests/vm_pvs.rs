//! A Parallels `.pvm` VM end to end: the bundle directory opens by its `config.pvs` under
//! `vm-dir`, `check` calls it unsafe with rule `references`, `info --json` shows the VM
//! and validates against its schema, and `--layer` selects each inner disk and snapshot
//! disk, whose bytes are what qemu-img reads from the `.hds` images.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{s, stderr, vmsnap};
use vmsnap_testkit::{
    assert_same_bytes, corpus, have_qemu_img, qemu_img_raw, scratch_dir, workspace_root,
};

const PLAIN: &str = "corpus/pvs/plain.pvm";
const SNAPSHOTS: &str = "corpus/pvs/snapshots.pvm";
const TOP: &str = "{5fbaabe3-6958-40ff-92a7-860e329aab41}";
const S1: &str = "{8c6b7a51-3f0e-4d2a-9b1c-2e4f6a8b0c11}";

#[test]
fn check_calls_a_vm_unsafe_for_its_references() {
    for input in [
        PLAIN,
        "corpus/pvs/plain.pvm/config.pvs",
        SNAPSHOTS,
        "corpus/pvs/encrypted.pvm",
        "corpus/pvs/absolute.pvm",
    ] {
        let out = vmsnap(&["check", input]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{input}: {text}{}",
            stderr(&out)
        );
        assert!(text.contains("UNSAFE"), "{input}: {text}");
        assert!(text.contains("FAIL  references:"), "{input}: {text}");
    }
}

/// Runs `vmsnap COMMAND --json VM` and checks its output against `docs/schema/COMMAND.json`.
fn json_of(command: &str, vm: &str) -> serde_json::Value {
    let path = workspace_root().join(format!("docs/schema/{command}.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let out = vmsnap(&[command, "--json", vm]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{command} {vm}: {e}: {}", stderr(&out)));
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{command} {vm}: {errors:?}");
    v
}

#[test]
fn info_shows_the_vm_and_matches_the_schema() {
    for vm in [
        PLAIN,
        SNAPSHOTS,
        "corpus/pvs/encrypted.pvm",
        "corpus/pvs/absolute.pvm",
    ] {
        for command in ["info", "check", "meta", "map"] {
            json_of(command, vm);
        }
    }
    let v = json_of("info", SNAPSHOTS);
    let pvs = &v["layers"][1];
    assert_eq!(pvs["plugin"], "pvs");
    assert_eq!(pvs["space"], "metadata");
    let d = &pvs["describe"];
    assert_eq!(d["vm_name"], "Snapshot VM");
    assert_eq!(d["disks"][0]["interface"], "sata");
    assert_eq!(d["snapshots"][0]["name"], "Before update");
    assert_eq!(d["snapshots"][1]["parent"], &S1[1..37]);
    assert_eq!(d["snapshots"][1]["current"], true);
    let children: Vec<&str> = pvs["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        children,
        [
            "disk:sata0:0",
            "snapshot:Before update/disk:sata0:0",
            "snapshot:After update/disk:sata0:0"
        ]
    );
    // The text form names the disks, snapshots and what is not read.
    let out = vmsnap(&["info", PLAIN]);
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "disk:sata0:0",
        "disk:scsi0:1",
        "/dev/disk2",
        "not an image file",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
}

#[test]
fn layer_selects_disks_and_snapshot_disks() {
    if !have_qemu_img() {
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    let dir = scratch_dir("pvs-layers");
    for (vm, layer, file) in [
        (
            PLAIN,
            "disk:sata0:0",
            format!("plain.pvm/system.hdd/system.hdd.0.{TOP}.hds"),
        ),
        (
            PLAIN,
            "disk:scsi0:1",
            format!("plain.pvm/data.hdd/data.hdd.0.{TOP}.hds"),
        ),
        (
            "corpus/pvs/absolute.pvm",
            "disk:ide0:0",
            format!("absolute.pvm/harddisk.hdd/harddisk.hdd.0.{TOP}.hds"),
        ),
        (
            SNAPSHOTS,
            "snapshot:Before update/disk:sata0:0",
            format!("snapshots.pvm/harddisk.hdd/harddisk.hdd.0.{S1}.hds"),
        ),
    ] {
        let out_path = dir.join(layer.replace([':', '/', ' '], "_"));
        let out = vmsnap(&["convert", "--layer", layer, vm, s(&out_path)]);
        assert_eq!(out.status.code(), Some(0), "{layer}: {}", stderr(&out));
        let want = qemu_img_raw(&corpus(&format!("pvs/{file}")), &["-f", "parallels"]);
        assert_same_bytes(&std::fs::read(&out_path).unwrap(), &want, layer);
    }
    // Without the policy's leave, the disk is a stand-in whose reads fail, and says why.
    let out = vmsnap(&[
        "cat",
        "--external",
        "none",
        "--layer",
        "disk:sata0:0",
        PLAIN,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

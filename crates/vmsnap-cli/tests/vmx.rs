//! A VMware `.vmx` end to end: `check` calls it unsafe for its references, `info` shows
//! the VM, and `--layer` selects each inner disk and memory, whose bytes are what
//! qemu-img reads from the VMDK the configuration names (or the VMware reader from the
//! checkpoint).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{stderr, vmsnap};
use vmsnap_testkit::{corpus, have_qemu_img, qemu_img_raw, scratch_dir};

const VM: &str = "corpus/vmx/vm.vmx";

#[test]
fn check_calls_a_vm_configuration_unsafe_for_its_references() {
    for file in [VM, "corpus/vmx/encrypted.vmx"] {
        let out = vmsnap(&["check", "--json", file]);
        assert_eq!(out.status.code(), Some(1), "{file}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["verdict"], "unsafe");
        assert_eq!(v["format"], "vmx");
        let failed: Vec<&str> = v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["verdict"] == "fail")
            .filter_map(|r| r["rule"].as_str())
            .collect();
        assert!(failed.contains(&"references"), "{file}: {failed:?}");
    }
}

#[test]
fn info_shows_the_vm_and_its_inner_layers() {
    let out = vmsnap(&["info", "--json", VM]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vmx = &v["layers"][1];
    assert_eq!(vmx["plugin"], "vmx");
    assert_eq!(vmx["space"], "metadata");
    let d = &vmx["describe"];
    assert_eq!(d["display_name"], "vmsnap \"sample\" VM");
    assert_eq!(d["disks"][0]["chain"].as_array().unwrap().len(), 3);
    assert_eq!(d["other_devices"][0]["device_type"], "cdrom-image");
    assert_eq!(d["snapshots"][1]["current"], true);
    let children: Vec<&str> = vmx["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(children.len(), 7, "{children:?}");
    // The memory layers are stacked on: guest memory, then x86 paging.
    let stack: Vec<&str> = v["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(stack.contains(&"vmx/memory/x86"), "{stack:?}");
}

#[test]
fn layer_selects_inner_disks_and_memory() {
    if !have_qemu_img() {
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    let dir = scratch_dir("vmx-layers");
    for (layer, file) in [
        ("disk:scsi0:0", "disk-000002.vmdk"),
        ("disk:sata0:0", "data.vmdk"),
    ] {
        let out_path = dir.join(layer.replace(':', "_"));
        let out = vmsnap(&["convert", "--layer", layer, VM, out_path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{layer}: {}", stderr(&out));
        let want = qemu_img_raw(&corpus(&format!("vmx/{file}")), &["-f", "vmdk"]);
        vmsnap_testkit::assert_same_bytes(&std::fs::read(&out_path).unwrap(), &want, layer);
    }
    let out = vmsnap(&["cat", "--layer", "memory", VM]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 180_224);
    // Without the policy's leave, the disk is not a layer, and says why.
    let out = vmsnap(&["cat", "--external", "none", "--layer", "disk:scsi0:0", VM]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("disk:scsi0:0"), "{}", stderr(&out));
}

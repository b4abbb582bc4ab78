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
    // A snapshot's disk: a point of the chain.
    let out_path = dir.join("installed");
    let layer = "snapshot:Installed/disk:scsi0:0";
    let out = vmsnap(&["convert", "--layer", layer, VM, out_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{layer}: {}", stderr(&out));
    let want = qemu_img_raw(&corpus("vmx/disk.vmdk"), &["-f", "vmdk"]);
    vmsnap_testkit::assert_same_bytes(&std::fs::read(&out_path).unwrap(), &want, layer);
    let out = vmsnap(&["cat", "--layer", "snapshot:2/memory", VM]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 163_840);
    let out = vmsnap(&["cat", "--layer", "memory", VM]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 180_224);
    // Without the policy's leave, the disk is not a layer, and says why.
    let out = vmsnap(&["cat", "--external", "none", "--layer", "disk:scsi0:0", VM]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("disk:scsi0:0"), "{}", stderr(&out));
}

#[test]
fn a_vm_directory_opens_by_its_vmx_with_disks_in_subdirectories() {
    let dir = scratch_dir("vmx-dir");
    let vm = dir.join("My VM");
    std::fs::create_dir_all(vm.join("disks")).unwrap();
    for f in [
        "disk.vmdk",
        "disk-000001.vmdk",
        "disk-000002.vmdk",
        "vm.vmss",
        "vm.vmem",
    ] {
        std::fs::copy(corpus(&format!("vmx/{f}")), vm.join(f)).unwrap();
    }
    for f in ["data.vmdk", "data-s001.vmdk"] {
        std::fs::copy(corpus(&format!("vmx/{f}")), vm.join("disks").join(f)).unwrap();
    }
    let text = std::fs::read_to_string(corpus("vmx/vm.vmx"))
        .unwrap()
        .replace("\"data.vmdk\"", "\"disks/data.vmdk\"");
    std::fs::write(vm.join("vm.vmx"), text).unwrap();
    let opened = |extra: &[&str]| {
        let mut a = vec!["info", "--json"];
        a.extend_from_slice(extra);
        a.push(vm.to_str().unwrap());
        let out = vmsnap(&a);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let disks = v["layers"][1]["describe"]["disks"].clone();
        (
            v["external_policy"].clone(),
            disks[1]["status"].as_str().unwrap().to_string(),
        )
    };
    // The directory maps to its single .vmx, and the VM's policy is the default.
    let (policy, status) = opened(&[]);
    assert_eq!(policy, "vm_dir");
    assert!(status.starts_with("opened "), "{status}");
    // The single-file policy keeps to the .vmx's own directory.
    let (_, status) = opened(&["--external", "same-dir"]);
    assert!(status.starts_with("not opened"), "{status}");
}

#[test]
fn absolute_names_from_the_host_that_wrote_the_vm_are_found_inside_its_directory() {
    if !have_qemu_img() {
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    let dir = scratch_dir("vmx-absolute");
    let vm = dir.join("vm");
    std::fs::create_dir_all(vm.join("disks")).unwrap();
    for f in ["disk.vmdk", "disk-000001.vmdk", "disk-000002.vmdk"] {
        std::fs::copy(corpus(&format!("vmx/{f}")), vm.join(f)).unwrap();
    }
    for f in ["data.vmdk", "data-s001.vmdk"] {
        std::fs::copy(corpus(&format!("vmx/{f}")), vm.join("disks").join(f)).unwrap();
    }
    // What an ESXi host records, and a Windows workstation's path to a subdirectory.
    let text = std::fs::read_to_string(corpus("vmx/vm.vmx"))
        .unwrap()
        .replace(
            "\"disk-000002.vmdk\"",
            "\"/vmfs/volumes/datastore1/vm/disk-000002.vmdk\"",
        )
        .replace("\"data.vmdk\"", "\"D:\\VMs\\vm\\disks\\data.vmdk\"");
    let config = vm.join("vm.vmx");
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    for (layer, file) in [
        ("disk:scsi0:0", "disk-000002.vmdk"),
        ("disk:sata0:0", "data.vmdk"),
    ] {
        let out_path = dir.join(layer.replace(':', "_"));
        let out = vmsnap(&[
            "convert",
            "--layer",
            layer,
            config,
            out_path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{layer}: {}", stderr(&out));
        let want = qemu_img_raw(&corpus(&format!("vmx/{file}")), &["-f", "vmdk"]);
        vmsnap_testkit::assert_same_bytes(&std::fs::read(&out_path).unwrap(), &want, layer);
    }
    // Each relocation is reported with what was found.
    let out = vmsnap(&["info", "--json", config]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes: Vec<(String, String)> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["external_refs"].as_array().into_iter().flatten())
        .filter_map(|r| Some((r["name"].as_str()?.into(), r["note"].as_str()?.into())))
        .collect();
    assert!(
        notes
            .iter()
            .any(|(n, note)| n.starts_with("/vmfs/")
                && note.contains("found as \"disk-000002.vmdk\"")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|(n, note)| n.starts_with("D:") && note.contains("\"disks/data.vmdk\"")),
        "{notes:?}"
    );
    // Under the single-file policy an absolute name stays refused.
    let out = vmsnap(&[
        "cat",
        "--external",
        "same-dir",
        "--layer",
        "disk:scsi0:0",
        config,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

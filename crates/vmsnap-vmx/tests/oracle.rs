//! The VM sample against readers nobody here wrote: every inner disk byte for byte
//! against `qemu-img convert -O raw` of the VMDK the configuration names (the delta chain
//! included), the memory layers against the VMware checkpoint reader opened on the same
//! files, and (ignored unless dissect.hypervisor is installed: `cargo xtask dissect`) every
//! key, disk path and the encryption that dissect's `VMX.parse` reports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{open, registry, sample};
use vmsnap_core::{ExternalPolicy, FileLayer, Layer, OpenCtx, Options, Resolver};
use vmsnap_testkit::{assert_same_bytes, qemu_img_raw, read_all};
use vmsnap_vmx::{DeviceKind, Dictionary};

#[test]
fn every_inner_layer_is_named_as_the_contract_pins() {
    let vm = open("vm.vmx");
    let names: Vec<String> = vm.children().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "disk:scsi0:0",
            "disk:sata0:0",
            "memory",
            "snapshot:Installed/disk:scsi0:0",
            "snapshot:Installed/memory",
            // Its display name "pre-update 1/2" has a '/': the uid stands in.
            "snapshot:2/disk:scsi0:0",
            "snapshot:2/memory",
        ]
    );
}

#[test]
fn every_disk_reads_as_qemu_img_converts_the_file_it_names() {
    let vm = open("vm.vmx");
    let d = vm.describe();
    // Layer name → the file the configuration names for it.
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for disk in d["disks"].as_array().unwrap() {
        files.insert(
            disk["layer"].as_str().unwrap().into(),
            disk["file"].as_str().unwrap().into(),
        );
    }
    for s in d["snapshots"].as_array().unwrap() {
        for disk in s["disks"].as_array().unwrap() {
            files.insert(
                disk["layer"].as_str().unwrap().into(),
                disk["file"].as_str().unwrap().into(),
            );
        }
    }
    let pairs: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("disk:sata0:0", "data.vmdk"),
            ("disk:scsi0:0", "disk-000002.vmdk"),
            ("snapshot:2/disk:scsi0:0", "disk-000001.vmdk"),
            ("snapshot:Installed/disk:scsi0:0", "disk.vmdk"),
        ]
    );
    let mut checked = 0;
    for c in vm
        .children()
        .into_iter()
        .filter(|c| c.name.contains("disk:"))
    {
        let file = &files[&c.name];
        let want = qemu_img_raw(&sample(file), &["-f", "vmdk"]);
        assert_same_bytes(&read_all(c.layer.as_ref()), &want, &c.name);
        checked += 1;
    }
    assert_eq!(checked, 4);
    // The three points of the chain differ where the deltas wrote.
    let at = |name: &str, off: usize| {
        let c = vm.children().into_iter().find(|c| c.name == name).unwrap();
        let mut b = [0u8; 1];
        c.layer.read_at(off as u64, &mut b).unwrap();
        b[0]
    };
    assert_eq!(at("snapshot:Installed/disk:scsi0:0", 4 << 20), 0);
    assert_eq!(at("snapshot:2/disk:scsi0:0", 4 << 20), 0x22);
    assert_eq!(at("disk:scsi0:0", 4 << 20), 0x32);
}

#[test]
fn memory_layers_are_the_vmware_readers_on_the_same_files() {
    let vm = open("vm.vmx");
    let reg = registry();
    let (r, o) = (Resolver::new(ExternalPolicy::SameDir), Options::new());
    let ctx = OpenCtx::new(&r, &reg, &o);
    for (child, file, size) in [
        ("memory", "vm.vmss", 180_224),
        ("snapshot:Installed/memory", "vm-Snapshot1.vmsn", 180_224),
        ("snapshot:2/memory", "vm-Snapshot2.vmsn", 163_840),
    ] {
        let c = vm.children().into_iter().find(|c| c.name == child).unwrap();
        let direct =
            (vmsnap_vmware::PLUGIN.open)(Arc::new(FileLayer::open(sample(file)).unwrap()), &ctx)
                .unwrap();
        assert_eq!(c.layer.len(), size, "{child}");
        assert_eq!(c.layer.name(), "vmware");
        assert_same_bytes(
            &read_all(c.layer.as_ref()),
            &read_all(direct.as_ref()),
            child,
        );
        assert!(c.stackable, "{child}: x86 paging stacks on it");
    }
    // The same bytes as the original corpus/vmware samples the recipe copied.
    let original = (vmsnap_vmware::PLUGIN.open)(
        Arc::new(FileLayer::open(vmsnap_testkit::corpus("vmware/plain.vmss")).unwrap()),
        &ctx,
    )
    .unwrap();
    let c = vm
        .children()
        .into_iter()
        .find(|c| c.name == "memory")
        .unwrap();
    assert_same_bytes(
        &read_all(c.layer.as_ref()),
        &read_all(original.as_ref()),
        "memory",
    );
}

/// The Python that has dissect.hypervisor: `$DISSECT_PYTHON` (`cargo xtask dissect` sets
/// it to the venv it makes under `target/`), else `python3`.
fn dissect(path: &std::path::Path) -> serde_json::Value {
    let python = std::env::var("DISSECT_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/dissect_vmx.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "dissect failed ({python}; `cargo xtask dissect` installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs dissect.hypervisor: `cargo xtask dissect` (or set DISSECT_PYTHON)"]
fn dissect_agrees_on_every_key_every_disk_and_the_encryption() {
    for name in ["vm.vmx", "vm.vmsd", "encrypted.vmx"] {
        let path = sample(name);
        let theirs = dissect(&path);
        let ours = Dictionary::parse(&std::fs::read(&path).unwrap());
        let attr: BTreeMap<String, String> =
            serde_json::from_value(theirs["attr"].clone()).unwrap();
        assert_eq!(ours.raw_map(), attr, "{name}: keys and values");
        assert!(attr.len() >= 4, "{name}: {attr:?}");
        if name.ends_with(".vmsd") {
            continue;
        }
        let vm = open(name);
        // dissect lists every disk device with a file, present or not.
        let mut disks: Vec<String> = vm
            .devices()
            .iter()
            .filter(|d| d.kind == DeviceKind::Disk)
            .filter_map(|d| d.file_name.clone())
            .collect();
        disks.sort();
        let want: Vec<String> = serde_json::from_value(theirs["disks"].clone()).unwrap();
        assert_eq!(disks, want, "{name}: disks");
        assert_eq!(
            vm.encryption().is_some(),
            theirs["encrypted"] == true,
            "{name}"
        );
        if let Some(e) = vm.encryption() {
            let locators: Vec<String> = serde_json::from_value(theirs["locators"].clone()).unwrap();
            assert_eq!(e.locators, locators, "{name}: key locators");
            assert_eq!(e.key_safe_kind.as_deref(), Some("vmware:key"));
        }
        eprintln!(
            "{name}: {} keys and {} disks compared with dissect",
            attr.len(),
            disks.len()
        );
    }
}

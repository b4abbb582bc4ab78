//! Damaged or lying settings: a registry that disagrees with an image is a finding and the
//! image is not read; malformed XML and counts past the limits fail with their kinds;
//! nothing panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::{copy_sample, open, sample};
use vmsnap_core::{
    ErrorKind, ExternalPolicy, FileLayer, Layer, MemSource, OpenCtx, Options, RefDecision,
    Resolver, Severity, SniffWindow,
};
use vmsnap_testkit::child;
use vmsnap_vbox::{rule, PLUGIN};

const BASE: &str = "00000000-0000-4000-8000-00000000000a";
const DIFF1: &str = "00000000-0000-4000-8000-00000000000b";
const DIFF2: &str = "00000000-0000-4000-8000-00000000000c";

fn probe(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

fn open_bytes(bytes: Vec<u8>) -> vmsnap_core::Result<Arc<dyn Layer>> {
    let (r, reg, o) = (
        Resolver::new(ExternalPolicy::Deny),
        common::registry(),
        Options::new(),
    );
    let lower = Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))));
    (PLUGIN.open)(lower, &OpenCtx::new(&r, &reg, &o))
}

fn registry_findings(vm: &Arc<dyn Layer>) -> Vec<String> {
    vm.findings()
        .into_iter()
        .filter(|f| f.rule == rule::REGISTRY && f.severity == Severity::Unsafe)
        .map(|f| f.message)
        .collect()
}

#[test]
fn the_sample_opens_and_every_read_path_holds() {
    let bytes = std::fs::read(sample()).unwrap();
    assert!(probe(&bytes));
    let (vm, _) = open(&sample(), ExternalPolicy::VmDir);
    let vm = vm.unwrap();
    vmsnap_testkit::exercise(&vm, 64 << 20);
    for c in vm.children() {
        vmsnap_testkit::exercise(&c.layer, 64 << 20);
    }
}

#[test]
fn probe_refuses_other_xml_and_images() {
    assert!(!probe(
        b"<VirtualBox xmlns=\"http://www.virtualbox.org/\"><Global/></VirtualBox>"
    ));
    assert!(!probe(
        b"<?xml version=\"1.0\"?><domain type='kvm'><name>x</name></domain>"
    ));
    let vdi = std::fs::read(common::sample_dir().join("base.vdi")).unwrap();
    assert!(!probe(&vdi));
    let mut bom = b"\xef\xbb\xbf\n".to_vec();
    bom.extend(std::fs::read(sample()).unwrap());
    assert!(probe(&bom));
}

#[test]
fn a_parent_uuid_the_registry_does_not_say_is_a_finding_and_not_read() {
    // The registry makes the current image a child of the base; its header links it to
    // the snapshot image in between.
    let dir = copy_sample("vbox-wrong-parent", |t| {
        let line = format!(
            "            <HardDisk uuid=\"{{{DIFF2}}}\" location=\"Snapshots/{{{DIFF2}}}.vdi\" format=\"VDI\"/>\n"
        );
        assert!(t.contains(&line));
        let t = t.replace(&line, "");
        t.replace(
            "          </HardDisk>\n",
            &format!("          </HardDisk>\n{}", &line[2..]),
        )
    });
    let (vm, _) = open(&dir.join("vm.vbox"), ExternalPolicy::VmDir);
    let vm = vm.unwrap();
    let f = registry_findings(&vm);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].contains(&format!("parent UUID is {DIFF1}"))
            && f[0].contains(&format!("registry's parent is {BASE}")),
        "{f:?}"
    );
    // Not read: the disk is a stand-in whose reads fail (its size is still known).
    let disk = child(&*vm, "disk:sata0:0");
    assert_eq!(disk.len(), 3 << 20);
    let e = disk.read_at(0, &mut [0u8; 512]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(vm.describe()["disks"][0]["opened"], false);
    // The snapshots' disks, which the registry gets right, still read.
    child(&*vm, "snapshot:Before update/disk:sata0:0")
        .read_at(0, &mut [0u8; 512])
        .unwrap();
}

#[test]
fn an_image_uuid_the_registry_does_not_say_is_a_finding_and_not_read() {
    let other = "00000000-0000-4000-8000-0000000000ee";
    let dir = copy_sample("vbox-wrong-uuid", |t| t.replace(BASE, other));
    let (vm, _) = open(&dir.join("vm.vbox"), ExternalPolicy::VmDir);
    let vm = vm.unwrap();
    let f = registry_findings(&vm);
    // The base is refused; its child's parent UUID is then not the registry's either.
    assert!(
        f.iter().any(|m| m.contains(&format!(
            "image's UUID is {BASE}, the registry says {other}"
        ))),
        "{f:?}"
    );
    for name in ["snapshot:Installed/disk:sata0:0", "disk:sata0:0"] {
        let e = child(&*vm, name).read_at(0, &mut [0u8; 512]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{name}");
    }
}

#[test]
fn a_base_that_is_differencing_is_refused() {
    // The registry lists the snapshot image (a differencing VDI) as a base of its own.
    let dir = copy_sample("vbox-diff-as-base", |t| {
        let open = format!("          <HardDisk uuid=\"{{{DIFF1}}}\" location=\"Snapshots/{{{DIFF1}}}.vdi\" format=\"VDI\">\n");
        assert!(t.contains(&open));
        t.replace(&open, "")
            .replacen("          </HardDisk>\n        </HardDisk>\n", "        </HardDisk>\n", 1)
            .replace("        </HardDisk>\n        <HardDisk uuid=\"{00000000-0000-4000-8000-00000000000d}\"", &format!("        </HardDisk>\n{}        <HardDisk uuid=\"{{00000000-0000-4000-8000-00000000000d}}\"", open[2..].replace('>', "/>").replacen("//>", "/>", 1)))
    });
    let (vm, _) = open(&dir.join("vm.vbox"), ExternalPolicy::VmDir);
    let vm = vm.unwrap();
    let f = registry_findings(&vm);
    assert!(
        f.iter().any(|m| m.contains(&format!(
            "it is a differencing image of {BASE}, but the registry lists it as a base image"
        ))),
        "{f:?}"
    );
    let e = child(&*vm, "snapshot:Before update/disk:sata0:0")
        .read_at(0, &mut [0u8; 512])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[test]
fn encrypted_media_are_recognised_not_read() {
    let dir = copy_sample("vbox-encrypted", |t| {
        t.replace(
            "location=\"base.vdi\" format=\"VDI\" type=\"Normal\">",
            "location=\"base.vdi\" format=\"VDI\" type=\"Normal\">\n          <Property name=\"CRYPT/KeyId\" value=\"vm\"/>",
        )
    });
    let (vm, r) = open(&dir.join("vm.vbox"), ExternalPolicy::VmDir);
    let vm = vm.unwrap();
    let enc: Vec<_> = vm
        .findings()
        .into_iter()
        .filter(|f| f.rule == rule::ENCRYPTED)
        .collect();
    // The base and both children (encryption is inherited).
    assert_eq!(enc.len(), 3, "{enc:?}");
    assert_eq!(vm.describe()["disks"][0]["encrypted"], true);
    // Only the VMDK was opened.
    let opened: Vec<_> = r
        .log()
        .into_iter()
        .filter(|e| matches!(e.decision, RefDecision::Opened { .. }))
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    let e = child(&*vm, "disk:sata0:0")
        .read_at(0, &mut [0u8; 1])
        .unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::Unavailable | ErrorKind::OutOfBounds
    ));
}

#[test]
fn an_image_missing_from_the_registry_is_reported() {
    let dir = copy_sample("vbox-unregistered", |t| {
        t.replace(
            &format!("<Image uuid=\"{{{DIFF2}}}\"/>"),
            "<Image uuid=\"{00000000-0000-4000-8000-0000000000ff}\"/>",
        )
    });
    let (vm, _) = open(&dir.join("vm.vbox"), ExternalPolicy::VmDir);
    let vm = vm.unwrap();
    assert!(vm.findings().iter().any(|f| f.rule == rule::MISSING_MEDIUM));
    assert!(vm.children().iter().all(|c| c.name != "disk:sata0:0"));
    assert_eq!(vm.describe()["disks"][0]["opened"], false);
}

#[test]
fn damaged_settings_fail_with_their_kinds() {
    let good = std::fs::read_to_string(sample()).unwrap();
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        (
            "cut",
            good.as_bytes()[..good.len() / 2].to_vec(),
            ErrorKind::Malformed,
        ),
        (
            "not UTF-8",
            {
                let mut b = good.as_bytes().to_vec();
                b[300] = 0xFF;
                b
            },
            ErrorKind::Malformed,
        ),
        (
            "no Machine",
            b"<VirtualBox xmlns=\"http://www.virtualbox.org/\"><Machin/></VirtualBox>".to_vec(),
            ErrorKind::Malformed,
        ),
        (
            "a DTD",
            format!(
                "<!DOCTYPE x [<!ENTITY a \"b\">]>{}",
                &good[good.find("<VirtualBox").unwrap()..]
            )
            .into_bytes(),
            ErrorKind::Malformed,
        ),
        (
            "too many snapshots",
            {
                let one = "<Snapshot uuid=\"{00000000-0000-4000-8000-000000000099}\" name=\"s\"><Hardware/><Snapshots>";
                let close = "</Snapshots></Snapshot>";
                let n = 5000;
                format!(
                    "<VirtualBox xmlns=\"http://www.virtualbox.org/\"><Machine uuid=\"{{00000000-0000-4000-8000-000000000001}}\"><Hardware/>{}{}</Machine></VirtualBox>",
                    one.repeat(n),
                    close.repeat(n)
                )
                .into_bytes()
            },
            ErrorKind::LimitExceeded,
        ),
        (
            "too large",
            vec![b' '; (16 << 20) + 1],
            ErrorKind::LimitExceeded,
        ),
    ];
    for (what, bytes, kind) in cases {
        let e = open_bytes(bytes).unwrap_err();
        assert_eq!(e.kind(), kind, "{what}: {e}");
    }
}

#[test]
fn a_chain_deeper_than_the_cap_is_refused_not_followed() {
    // 20 nested differencing media, all naming one file: the depth cap stops it.
    let mut media = String::new();
    for i in 0..20 {
        media.push_str(&format!(
            "<HardDisk uuid=\"{{00000000-0000-4000-8000-{i:012x}}}\" location=\"x.vdi\" format=\"VDI\">"
        ));
    }
    media.push_str(&"</HardDisk>".repeat(20));
    let xml = format!(
        "<VirtualBox xmlns=\"http://www.virtualbox.org/\"><Machine uuid=\"{{00000000-0000-4000-8000-000000000001}}\" name=\"deep\"><MediaRegistry><HardDisks>{media}</HardDisks></MediaRegistry><Hardware><StorageControllers><StorageController name=\"S\" type=\"AHCI\"><AttachedDevice type=\"HardDisk\" port=\"0\" device=\"0\"><Image uuid=\"{{00000000-0000-4000-8000-000000000013}}\"/></AttachedDevice></StorageController></StorageControllers></Hardware></Machine></VirtualBox>"
    );
    let vm = open_bytes(xml.into_bytes()).unwrap();
    assert_eq!(vm.children().len(), 1);
    let d = vm.describe();
    assert_eq!(d["disks"][0]["opened"], false);
    let chain = d["disks"][0]["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 20);
    // The leaf (19 links deep) was refused for its depth, not looked up.
    let reason = chain[0]["reason"].as_str().unwrap();
    assert!(reason.contains("19 links deep"), "{reason}");
}

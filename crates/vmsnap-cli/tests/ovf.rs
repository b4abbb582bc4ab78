//! OVF and OVA packages from the command line: `info` lists every disk drive as a layer,
//! `convert --layer disk:<bus><n>:<unit>` writes the bytes qemu-img reads from the disk
//! file (extracted by GNU tar for an OVA, which is read in place), `check` gives an OVA
//! the `archive` verdict (and `manifest` when a digest is wrong) and a `.ovf` the
//! `references` one; an unpacked package's directory opens by its `.ovf`; every `--json`
//! validates against docs/schema.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;

use common::{s, stderr, vmsnap};
use serde_json::Value;
use vmsnap_testkit::{assert_same_bytes, corpus, qemu_img_raw, run, scratch_dir, workspace_root};

fn json(args: &[&str], schema: &str, code: i32) -> Value {
    let o = vmsnap(args);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let path = workspace_root().join(format!("docs/schema/{schema}.json"));
    let sv: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&sv).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{args:?} against {schema}: {errors:?}");
    v
}

fn failing(v: &Value) -> Vec<String> {
    v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "fail")
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn info_lists_an_ovas_disks_and_convert_selects_each() {
    let v = json(&["info", "--json", "corpus/ovf/two-disk.ova"], "info", 0);
    let children: Vec<&str> = v["layers"][1]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(children, ["disk:scsi0:0", "disk:ide1:0"], "{v}");
    assert_eq!(v["layers"][1]["plugin"], "ova", "{v}");
    let dir = scratch_dir("cli-ova-convert");
    run(Command::new("tar")
        .arg("-xf")
        .arg(corpus("ovf/two-disk.ova"))
        .arg("-C")
        .arg(&dir));
    for (layer, file) in [
        ("disk:scsi0:0", "two-disk-disk1.vmdk"),
        ("disk:ide1:0", "two-disk-disk2.qcow2"),
    ] {
        let out = dir.join(format!("{file}.raw"));
        let o = vmsnap(&[
            "convert",
            "--quiet",
            "corpus/ovf/two-disk.ova",
            s(&out),
            "--layer",
            layer,
        ]);
        assert_eq!(o.status.code(), Some(0), "{layer}: {}", stderr(&o));
        assert_same_bytes(
            &std::fs::read(&out).unwrap(),
            &qemu_img_raw(&dir.join(file), &[]),
            layer,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_ovf_and_its_directory_open_their_disks() {
    let dir = scratch_dir("cli-ovf-convert");
    let want = qemu_img_raw(&corpus("ovf/vbox-disk1.vmdk"), &[]);
    // The descriptor itself; then a directory holding only it and its disk.
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    for f in ["vbox.ovf", "vbox-disk1.vmdk"] {
        std::fs::copy(corpus(&format!("ovf/{f}")), pkg.join(f)).unwrap();
    }
    for input in [s(&corpus("ovf/vbox.ovf")).to_string(), s(&pkg).to_string()] {
        let out = dir.join("out.raw");
        let o = vmsnap(&[
            "convert",
            "--quiet",
            &input,
            s(&out),
            "--layer",
            "disk:sata0:0",
        ]);
        assert_eq!(o.status.code(), Some(0), "{input}: {}", stderr(&o));
        assert_same_bytes(&std::fs::read(&out).unwrap(), &want, &input);
    }
    // `info` exits 1 on an unsafe finding: the descriptor's references.
    let v = json(&["info", "--json", s(&pkg)], "info", 1);
    assert_eq!(v["layers"][1]["children"][0]["name"], "disk:sata0:0", "{v}");
    assert_eq!(
        v["layers"][1]["describe"]["disks"][0]["opened"], true,
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_verdicts() {
    let v = json(&["check", "--json", "corpus/ovf/two-disk.ova"], "check", 1);
    assert_eq!(v["format"], "ova", "{v}");
    assert_eq!(v["detected"], serde_json::json!(["ova"]), "{v}");
    assert_eq!(failing(&v), ["archive"], "{v}");
    let v = json(
        &["check", "--json", "corpus/ovf/bad-manifest.ova"],
        "check",
        1,
    );
    assert_eq!(failing(&v), ["manifest", "archive"], "{v}");
    let v = json(&["check", "--json", "corpus/ovf/vmware.ovf"], "check", 1);
    assert_eq!(v["format"], "ovf", "{v}");
    assert!(failing(&v).contains(&"references".to_string()), "{v}");
    // The text form names the rule and exits 1.
    let o = vmsnap(&["check", "corpus/ovf/vbox.ovf"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("references"));
}

#[test]
fn a_broken_ova_or_a_plain_tar_is_never_safe() {
    let dir = scratch_dir("cli-ova-broken");
    std::fs::write(dir.join("x.ovf"), b"<notovf/>").unwrap();
    std::fs::write(dir.join("disk.img"), vec![0u8; 4096]).unwrap();
    for (name, first, format) in [
        ("broken.ova", "x.ovf", "ova"),
        ("plain.tar", "disk.img", "tar"),
    ] {
        let out = dir.join(name);
        run(Command::new("tar")
            .arg("--format=ustar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&out)
            .arg(first));
        let v = json(&["check", "--json", s(&out)], "check", 1);
        assert_eq!(v["format"], format, "{name}: {v}");
        assert_eq!(v["verdict"], "unsafe", "{name}: {v}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ova_members_extract() {
    let o = vmsnap(&[
        "meta",
        "corpus/ovf/two-disk.ova",
        "--extract",
        "two-disk.mf",
        "--output",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let listing = run(Command::new("tar")
        .arg("-xOf")
        .arg(corpus("ovf/two-disk.ova"))
        .arg("two-disk.mf"));
    assert_eq!(o.stdout, listing);
}

#[test]
fn a_missing_disk_fails_to_read_unless_zeros_are_asked_for() {
    let dir = scratch_dir("cli-ovf-missing");
    std::fs::copy(corpus("ovf/vmware.ovf"), dir.join("vmware.ovf")).unwrap();
    let input = dir.join("vmware.ovf");
    let out = dir.join("out.raw");
    let convert = |extra: &[&str]| {
        let mut args = vec!["convert", "--quiet", s(&input), s(&out)];
        args.extend(["--layer", "disk:scsi0:0"]);
        args.extend(extra);
        vmsnap(&args)
    };
    let o = convert(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("unavailable"), "{}", stderr(&o));
    let o = convert(&["--missing", "zeros"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The descriptor's capacity (8 * 2^20 bytes), all zeros.
    assert_eq!(std::fs::read(&out).unwrap(), vec![0u8; 8 << 20]);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Every value checked: `-o` keys and values against what the plugins declare, addresses
//! parsed as addresses with the canonical-form check, no option silently ignored.

mod common;

use common::{stderr, vmsnap};
use serde_json::Value;

/// Exit 2 with one stderr line that contains every one of `needles`.
fn usage_error(args: &[&str], needles: &[&str]) {
    let out = vmsnap(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
    }
}

#[test]
fn unknown_option_keys_are_refused_naming_the_valid_ones() {
    usage_error(
        &["info", "-o", "nosuch=1", "corpus/qcow2/v3.qcow2"],
        &[
            "unknown option \"nosuch\"",
            "qcow2.l2-cache-size",
            "qemu.ram-below-4g",
            "vhd.force_size_calc",
            "x86.cr3",
        ],
    );
    // Not only on `info`: every command that opens a file.
    usage_error(
        &["map", "-o", "qcow2.l2cache=1", "corpus/qcow2/v3.qcow2"],
        &["unknown option"],
    );
}

#[test]
fn bad_option_values_are_refused_naming_what_is_valid() {
    usage_error(
        &[
            "info",
            "-o",
            "qcow2.l2-cache-size=abc",
            "corpus/qcow2/v3.qcow2",
        ],
        &["qcow2.l2-cache-size", "expected a size"],
    );
    usage_error(
        &[
            "info",
            "-o",
            "vhd.force_size_calc=bogus",
            "corpus/qcow2/v3.qcow2",
        ],
        &["chs", "current_size"],
    );
    usage_error(
        &["info", "-o", "x86.cr3=4K", "corpus/vmware/plain.vmss"],
        &["expected an address"],
    );
    usage_error(
        &["info", "-o", "novalue", "corpus/qcow2/v3.qcow2"],
        &["KEY=VALUE"],
    );
}

#[test]
fn valid_options_are_used() {
    // A smaller L2 cache with a size suffix still reads the same bytes.
    let a = vmsnap(&["cat", "corpus/qcow2/v3.qcow2"]);
    let b = vmsnap(&[
        "cat",
        "-o",
        "qcow2.l2-cache-size=64K",
        "corpus/qcow2/v3.qcow2",
    ]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    assert_eq!(a.stdout, b.stdout);
    // A page-table root given by hand is the one walked.
    let out = vmsnap(&[
        "info",
        "--json",
        "-o",
        "x86.cr3=0x7000",
        "corpus/vmware/plain.vmss",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let x86 = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["plugin"] == "x86")
        .unwrap();
    assert_eq!(x86["describe"]["root"], "0x7000");
}

#[test]
fn formats_lists_every_option_with_type_and_help() {
    let out = vmsnap(&["formats", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let opts: Vec<(String, String)> = v["formats"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["options"].as_array().unwrap().clone())
        .map(|o| {
            assert!(!o["help"].as_str().unwrap().is_empty(), "{o}");
            (
                o["name"].as_str().unwrap().to_string(),
                o["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (name, ty) in [
        ("qcow2.l2-cache-size", "size"),
        ("qemu.ram-below-4g", "size"),
        ("vhd.force_size_calc", "choice"),
        ("x86.cr3", "address"),
    ] {
        assert!(opts.contains(&(name.into(), ty.into())), "{name}: {opts:?}");
    }
    let text = String::from_utf8(vmsnap(&["formats"]).stdout).unwrap();
    assert!(
        text.contains("vhd.force_size_calc") && text.contains("chs|current_size"),
        "{text}"
    );
}

#[test]
fn translate_takes_addresses_and_refuses_non_canonical_ones() {
    usage_error(
        &["translate", "corpus/vmware/plain.vmss", "0x800000000000"],
        &["0x800000000000", "not a canonical address", "4-level"],
    );
    usage_error(
        &["translate", "corpus/vmware/plain.vmss", "0xzz"],
        &["is not an address"],
    );
    usage_error(
        &["translate", "corpus/vmware/plain.vmss", "4K"],
        &["is not an address"],
    );
    // The highest canonical lower-half address and a kernel address do walk.
    for a in [
        "0x7fffffffffff",
        "0xffffffff81000000",
        "18446744071578845184",
    ] {
        let out = vmsnap(&["translate", "corpus/vmware/plain.vmss", a]);
        assert_eq!(out.status.code(), Some(0), "{a}: {}", stderr(&out));
    }
}

#[test]
fn nothing_is_silently_ignored() {
    // An output path without anything to extract.
    let out = vmsnap(&[
        "meta",
        "--output",
        "/tmp/vmsnap-never-written.bin",
        "corpus/qcow2/v3.qcow2",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--extract"), "{}", stderr(&out));
    assert!(!std::path::Path::new("/tmp/vmsnap-never-written.bin").exists());
    // `-O` is the output format everywhere; meta has none, so it is no option of meta's.
    let out = vmsnap(&["meta", "-O", "x.bin", "corpus/qcow2/v3.qcow2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!std::path::Path::new("x.bin").exists());
}

#[test]
fn one_thread_is_allowed_and_the_help_says_so() {
    let help = String::from_utf8(vmsnap(&["convert", "--help"]).stdout).unwrap();
    assert!(help.contains("--threads 1"), "{help}");
    let dir = std::env::temp_dir().join(format!("vmsnap-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("v3.raw");
    let out = vmsnap(&[
        "convert",
        "--threads",
        "1",
        "--quiet",
        "corpus/qcow2/v3.qcow2",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let cat = vmsnap(&["cat", "corpus/qcow2/v3.qcow2"]);
    assert_eq!(std::fs::read(&out_file).unwrap(), cat.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn output_json_is_an_alias_of_json() {
    for cmd in ["info", "map", "check", "meta"] {
        let a = vmsnap(&[cmd, "--json", "corpus/qcow2/v3.qcow2"]);
        let b = vmsnap(&[cmd, "--output=json", "corpus/qcow2/v3.qcow2"]);
        let c = vmsnap(&[cmd, "--output", "json", "corpus/qcow2/v3.qcow2"]);
        assert_eq!(a.stdout, b.stdout, "{cmd}");
        assert_eq!(a.stdout, c.stdout, "{cmd}");
        let v: Value = serde_json::from_slice(&a.stdout).unwrap();
        assert_eq!(v["schema_version"], 1, "{cmd}");
    }
}

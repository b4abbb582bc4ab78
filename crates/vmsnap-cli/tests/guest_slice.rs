//! The shipped slice of a real booted guest (`corpus/elf/guest-slice.elf`, cut by
//! `tools/make-guest-slice.py` from the 4-level guest of `tools/make-paging-guest.py`):
//! `translate` walks each recorded address to the physical address QEMU's paging core gives
//! (`corpus/elf/guest-slice.txt`), and the kernel banner reads through the x86 layer.
//! The ignored test (CI runs it with `--ignored` after making the guest) checks that every
//! walk on the slice equals the walk on the full core, and that the recorded answers are
//! still what QEMU's paging core says.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;

use common::vmsnap;
use serde_json::Value;
use vmsnap_testkit::{corpus, workspace_root};

const SLICE: &str = "corpus/elf/guest-slice.elf";

/// (name, virtual address, physical address per QEMU or `None` for unmapped).
fn recorded() -> Vec<(String, u64, Option<u64>)> {
    let hex = |t: &str| u64::from_str_radix(t.trim_start_matches("0x"), 16).unwrap();
    let v: Vec<_> = std::fs::read_to_string(corpus("elf/guest-slice.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let pa = (f[2] != "unmapped").then(|| hex(f[2]));
            (f[0].to_string(), hex(f[1]), pa)
        })
        .collect();
    assert!(v.len() >= 5, "{v:?}");
    v
}

/// `cat FILE --layer x86 --offset OFFSET --length LENGTH`: what the virtual layer reads.
fn cat_virtual(file: &str, offset: &str, length: &str) -> std::process::Output {
    vmsnap(&[
        "cat", file, "--layer", "x86", "--offset", offset, "--length", length,
    ])
}

/// `translate --json FILE ADDR`'s document.
fn translate(file: &str, va: u64) -> Value {
    let out = vmsnap(&["translate", "--json", file, &format!("{va:#x}")]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn slice_walks_to_the_physical_addresses_qemu_gives() {
    let size = std::fs::metadata(workspace_root().join(SLICE))
        .unwrap()
        .len();
    assert!(size < 1 << 20, "the slice is {size} bytes");
    let mut mapped = 0;
    for (name, va, pa) in recorded() {
        let doc = translate(SLICE, va);
        assert_eq!(doc["mode"], "level_4", "{name}");
        let w = &doc["walk"];
        match pa {
            Some(pa) => {
                assert_eq!(w["result"], "mapped", "{name} {va:#x}: {w}");
                assert_eq!(w["physical"], format!("{pa:#x}"), "{name} {va:#x}");
                assert!(w["steps"].as_array().unwrap().len() >= 3, "{name}: {w}");
                mapped += 1;
            }
            None => assert_eq!(w["result"], "not_mapped", "{name} {va:#x}: {w}"),
        }
    }
    assert!(mapped >= 4);
    // The human form names the same physical address.
    let (_, va, pa) = recorded().into_iter().find(|r| r.0 == "rsp").unwrap();
    let out = vmsnap(&["translate", SLICE, &format!("{va:#x}")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("  PTE "), "{text}");
    assert!(
        text.contains(&format!("-> physical {:#x} (4 KiB page", pa.unwrap())),
        "{text}"
    );
}

#[test]
fn kernel_banner_reads_through_the_virtual_layer() {
    for name in ["banner", "direct-map"] {
        let (_, va, _) = recorded().into_iter().find(|r| r.0 == name).unwrap();
        let out = cat_virtual(SLICE, &format!("{va:#x}"), "64");
        assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
        assert!(
            out.stdout.starts_with(b"Linux version 6."),
            "{name}: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // A non-canonical address is refused, not read.
    let out = cat_virtual(SLICE, "0x8000000000000000", "1");
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("not a canonical address"));
}

fn full_guest() -> PathBuf {
    let d = workspace_root().join("target/paging/pc-4level");
    assert!(
        d.join("gva2gpa.txt").exists(),
        "run tools/make-paging-guest.py first"
    );
    d
}

#[test]
#[ignore = "needs tools/make-paging-guest.py (boots a real kernel); CI runs it"]
fn slice_walks_equal_the_full_cores() {
    let dir = full_guest();
    let core = dir.join("core.elf");
    let core = core.to_str().unwrap();
    let paging = vmsnap_testkit::elf::loads(&dir.join("core-paging.elf"));
    for (name, va, pa) in recorded() {
        let (slice, full) = (translate(SLICE, va), translate(core, va));
        assert_eq!(slice["walk"], full["walk"], "{name} {va:#x}");
        assert_eq!(slice["root"], full["root"], "{name}");
        // The recorded answer is QEMU's (its paging core maps va to pa) …
        let qemu = paging
            .iter()
            .find(|l| l.vaddr <= va && va - l.vaddr < l.filesz)
            .map(|l| l.paddr + (va - l.vaddr));
        assert_eq!(qemu, pa, "{name} {va:#x}");
        // … and the page there holds the same bytes in the slice and the full core. CI boots
        // the guest afresh, so only pages fixed at boot compare: kernel text and rodata. The
        // stack page (`rsp`) holds what the vCPU was doing when QEMU stopped it; its walk and
        // QEMU's answer are checked above.
        if pa.is_some() && name != "rsp" {
            let page = format!("{:#x}", va & !0xfff);
            let read = |f: &str| {
                let o = cat_virtual(f, &page, "4096");
                assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
                o.stdout
            };
            assert!(read(SLICE) == read(core), "{name}: page {page} differs");
        }
    }
}

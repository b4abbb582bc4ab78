//! Cross-check against Volatility 3's `VmwareLayer` (ignored by default: needs
//! `pip install volatility3`; set `VOL3_PYTHON` to the interpreter that has it).
//!
//! `cargo test -p vmsnap-vmware --test volatility -- --ignored`
//!
//! On every sample Volatility can read (a `.vmem` with its metadata and no padding in the
//! `memory` group) every guest-physical byte must be equal. Samples where Volatility is
//! wrong are checked to be so, with the reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::open_path;
use vmsnap_core::ExternalPolicy;
use vmsnap_testkit::{assert_same_bytes, corpus, read_all, scratch_dir};
use vmsnap_vmware::builder::*;

fn python() -> String {
    std::env::var("VOL3_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs the dump script; `Some(bytes)` when Volatility stacked a VmwareLayer.
fn vol3(vmem: &Path, out: &Path) -> Option<Vec<u8>> {
    let script = corpus("vmware/vol3_dump.py");
    let o = Command::new(python())
        .arg(script)
        .arg(vmem)
        .arg(out)
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "vol3_dump failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    if v["stacked"] == "VmwareLayer" {
        Some(std::fs::read(out).unwrap())
    } else {
        eprintln!(
            "{}: Volatility did not stack: {}",
            vmem.display(),
            v["error"]
        );
        None
    }
}

fn have_vol3() -> bool {
    Command::new(python())
        .args(["-c", "import volatility3"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
#[ignore = "needs volatility3 (pip install volatility3)"]
fn every_byte_equals_volatility3_where_it_can_read() {
    assert!(have_vol3(), "volatility3 is not importable by {}", python());
    let dir = scratch_dir("vmware-vol3");
    // Corpus pairs: no padding in the memory group, so Volatility reads them.
    for (vmem, meta) in [("plain.vmem", "plain.vmss"), ("padded.vmem", "padded.vmsn")] {
        std::fs::copy(corpus(&format!("vmware/{vmem}")), dir.join(vmem)).unwrap();
        std::fs::copy(corpus(&format!("vmware/{meta}")), dir.join(meta)).unwrap();
        let theirs = vol3(&dir.join(vmem), &dir.join("out.raw")).expect("Volatility stacks");
        for open in [vmem, meta] {
            let ours = read_all(
                open_path(&dir.join(open), ExternalPolicy::SameDir)
                    .unwrap()
                    .as_ref(),
            );
            assert_same_bytes(&ours, &theirs, &format!("{open} vs Volatility 3"));
        }
    }
    // A 4-region layout with a hole at the start, built here.
    let regs = vec![
        Reg {
            ppn: 4,
            page_num: 0,
            pages: 3,
        },
        Reg {
            ppn: 9,
            page_num: 3,
            pages: 1,
        },
        Reg {
            ppn: 12,
            page_num: 4,
            pages: 5,
        },
        Reg {
            ppn: 30,
            page_num: 9,
            pages: 2,
        },
    ];
    let (mem, _) = memory_bytes(&regs, CORPUS_SEED, 1);
    let groups = vec![
        G {
            name: "memory".into(),
            tags: region_tags(&regs, Some(4)),
        },
        cpu_group(1, CpuForm::Scalar, 0),
    ];
    Ckpt {
        magic: 0xbed3_bed3,
        groups,
    }
    .build()
    .image
    .write_to(&dir.join("four.vmss"))
    .unwrap();
    mem.write_to(&dir.join("four.vmem")).unwrap();
    let theirs = vol3(&dir.join("four.vmem"), &dir.join("out.raw")).expect("Volatility stacks");
    let ours = read_all(
        open_path(&dir.join("four.vmem"), ExternalPolicy::SameDir)
            .unwrap()
            .as_ref(),
    );
    // Volatility's layer starts at the first segment but reads below it as zeros too.
    assert_same_bytes(&ours, &theirs, "four regions vs Volatility 3");
    assert_same_bytes(
        &ours,
        &expected_guest(&regs, CORPUS_SEED),
        "four regions vs builder",
    );
}

#[test]
#[ignore = "needs volatility3 (pip install volatility3)"]
fn where_volatility3_is_wrong() {
    assert!(have_vol3(), "volatility3 is not importable by {}", python());
    let dir = scratch_dir("vmware-vol3-wrong");
    let regs = vec![
        Reg {
            ppn: 0,
            page_num: 0,
            pages: 4,
        },
        Reg {
            ppn: 8,
            page_num: 4,
            pages: 4,
        },
    ];
    let (mem, _) = memory_bytes(&regs, CORPUS_SEED, 1);
    let want = expected_guest(&regs, CORPUS_SEED);
    // 1. A padded block before the region tags in the memory group (an empty Memory block,
    //    padsize 4): Volatility ignores padsize, desyncs, and silently does not stack, so the
    //    .vmem would be read flat — wrong for every page after the hole.
    let mut tags = vec![block_tag("Memory", &[0, 0], Sparse::zeros(0), 4)];
    tags.extend(region_tags(&regs, Some(2)));
    let groups = vec![G {
        name: "memory".into(),
        tags,
    }];
    Ckpt {
        magic: 0xbed2_bed2,
        groups,
    }
    .build()
    .image
    .write_to(&dir.join("pad.vmss"))
    .unwrap();
    mem.write_to(&dir.join("pad.vmem")).unwrap();
    assert!(vol3(&dir.join("pad.vmem"), &dir.join("out.raw")).is_none());
    let ours = read_all(
        open_path(&dir.join("pad.vmem"), ExternalPolicy::SameDir)
            .unwrap()
            .as_ref(),
    );
    assert_same_bytes(&ours, &want, "padded memory group, ours");
    // 2. The 0xbad2bad2 and 0xbed0bed0 magics: Volatility rejects them.
    for magic in [0xbad2_bad2u32, 0xbed0_bed0] {
        let groups = vec![G {
            name: "memory".into(),
            tags: region_tags(&regs, Some(2)),
        }];
        Ckpt { magic, groups }
            .build()
            .image
            .write_to(&dir.join("m.vmss"))
            .unwrap();
        mem.write_to(&dir.join("m.vmem")).unwrap();
        let v = vol3(&dir.join("m.vmem"), &dir.join("out.raw"));
        assert!(v.is_none(), "{magic:#x}");
        let ours = read_all(
            open_path(&dir.join("m.vmem"), ExternalPolicy::SameDir)
                .unwrap()
                .as_ref(),
        );
        assert_same_bytes(&ours, &want, &format!("{magic:#x}, ours"));
    }
    // 3. Memory embedded in the checkpoint, and a checkpoint given directly: Volatility
    //    only stacks on a file named .vmem (the embedded case is the corpus embedded.vmss).
    let l = open_path(&corpus("vmware/embedded.vmss"), ExternalPolicy::Deny).unwrap();
    assert_eq!(l.describe()["memory"]["layout"]["source"], "embedded");
}

//! Damaged dump-cores fail with the error kind that names the damage, and never panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::{bytes, file, open};
use vmsnap_core::{ErrorKind, Layer, SniffWindow};
use vmsnap_xen::PLUGIN;

fn probe_says_yes(bytes: &[u8]) -> bool {
    (PLUGIN.probe)(&SniffWindow::of_whole(bytes)).is_yes()
}

#[test]
fn every_sample_opens_and_every_read_path_holds() {
    for &(sample, ..) in common::SAMPLES {
        let b = bytes(sample);
        assert!(probe_says_yes(&b), "{sample}");
        let layer: Arc<dyn Layer> = Arc::new(open(b).unwrap());
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
}

/// Offsets in small-hvm.xen (the builder's layout, as xc_core writes it): section header
/// `i` at 64 + 64 i (0 null, 1 .shstrtab, 2 .note.Xen, 3 .xen_prstatus,
/// 4 .xen_shared_info, 5 .xen_pages, 6 .xen_pfn); the header note's descriptor at 544.
fn sh(i: usize, field: usize) -> usize {
    64 + 64 * i + field
}
const SH_OFFSET: usize = 24;
const SH_SIZE: usize = 32;
const SH_ENTSIZE: usize = 56;
const DESC: usize = 544;

#[test]
fn damaged_dumps_fail_with_their_kinds() {
    let good = bytes("xen/small-hvm.xen");
    let patched = |at: usize, v: u64| {
        let mut b = good.clone();
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        b
    };
    let u64_at = |at: usize| u64::from_le_bytes(good[at..at + 8].try_into().unwrap());
    let table = u64_at(sh(6, SH_OFFSET)) as usize;
    let renamed = {
        let mut b = good.clone();
        let strtab = u64_at(sh(1, SH_OFFSET)) as usize;
        let at = strtab
            + b[strtab..]
                .windows(16)
                .position(|w| w == b".xen_shared_info")
                .unwrap();
        b[at..at + 9].copy_from_slice(b".xen_p2m\0");
        b
    };
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        (
            "cut inside the header",
            good[..100].to_vec(),
            ErrorKind::Truncated,
        ),
        (
            "cut before the names",
            good[..good.len() - 20].to_vec(),
            ErrorKind::Truncated,
        ),
        ("bad xch_magic", patched(DESC, 0x1234), ErrorKind::Malformed),
        (
            "huge xch_nr_vcpus",
            patched(DESC + 8, u64::MAX),
            ErrorKind::LimitExceeded,
        ),
        (
            "odd page size",
            patched(DESC + 24, 3000),
            ErrorKind::Malformed,
        ),
        (
            "pages not a page multiple",
            patched(sh(5, SH_SIZE), 4097),
            ErrorKind::Malformed,
        ),
        (
            "table past the end",
            patched(sh(6, SH_OFFSET), u64::MAX),
            ErrorKind::Truncated,
        ),
        (
            "more entries than pages",
            patched(sh(6, SH_SIZE), 24),
            ErrorKind::Malformed,
        ),
        (
            "pfn past 2^52",
            patched(table, 1 << 41),
            ErrorKind::LimitExceeded,
        ),
        (
            "a pfn twice",
            patched(table + 8, 0x1234),
            ErrorKind::Malformed,
        ),
        ("both .xen_pfn and .xen_p2m", renamed, ErrorKind::Malformed),
        (
            "short vCPU contexts",
            patched(sh(3, SH_ENTSIZE), 100),
            ErrorKind::Malformed,
        ),
        (
            "vCPUs past .xen_prstatus",
            patched(DESC + 8, 2),
            ErrorKind::Truncated,
        ),
        (
            "huge section count",
            {
                let mut b = good.clone();
                b[60..62].copy_from_slice(&0u16.to_le_bytes());
                b[sh(0, SH_SIZE)..sh(0, SH_SIZE) + 8].copy_from_slice(&u64::MAX.to_le_bytes());
                b
            },
            ErrorKind::LimitExceeded,
        ),
    ];
    for (what, bytes, kind) in cases {
        match open(bytes) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        }
    }
    assert!(!probe_says_yes(&[0u8; 4096]));
}

#[test]
fn the_elf_reader_declines_xen_dumps_and_names_the_xen_plugin() {
    for &(sample, ..) in common::SAMPLES {
        let b = bytes(sample);
        let w = SniffWindow::of_whole(&b);
        assert!(!(vmsnap_elf::PLUGIN.probe)(&w).is_yes(), "{sample}");
        let e = vmsnap_elf::ElfCore::open_layer(file(b)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{sample}");
        assert!(e.to_string().contains("xen plugin"), "{sample}: {e}");
    }
    // And the Xen probe refuses plain ELF cores.
    let elf = bytes("elf/core.elf.gz");
    assert!(!probe_says_yes(&elf));
}

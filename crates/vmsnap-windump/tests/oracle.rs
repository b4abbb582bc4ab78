//! The committed crash dumps read back equal to the QEMU ELF cores they were built from
//! (corpus/windump/make.sh): every PT_LOAD, read by an ELF reader independent of vmsnap
//! (vmsnap_testkit::elf), equals the dump's bytes at its physical address; the dump holds
//! exactly those pages (rounded out to 4 KiB) and nothing else. Volatility 3's crash layers
//! read the same samples in crates/vmsnap-python/tests/test_volatility_windump.py.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Read;
use std::sync::Arc;

use vmsnap_core::{ExtentKind, FileLayer, Layer, MemSource};
use vmsnap_testkit::corpus;
use vmsnap_windump::Windump;

fn gunzip(path: &str) -> Vec<u8> {
    let f = std::fs::File::open(corpus(path)).expect("run corpus/windump/make.sh");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn bytes(path: &str) -> Vec<u8> {
    if path.ends_with(".gz") {
        gunzip(path)
    } else {
        std::fs::read(corpus(path)).expect("run corpus/windump/make.sh")
    }
}

fn open(b: Vec<u8>) -> Windump {
    Windump::open_layer(Arc::new(FileLayer::new(Arc::new(MemSource::new(b))))).unwrap()
}

/// (dump, source core, width, dump type, PaeEnabled).
const SAMPLES: &[(&str, &str, &str, u32, Option<u8>)] = &[
    (
        "windump/small-64-full.dmp",
        "elf/small.elf",
        "PAGEDU64",
        1,
        None,
    ),
    (
        "windump/small-64-bitmap.dmp",
        "elf/small.elf",
        "PAGEDU64",
        5,
        None,
    ),
    (
        "windump/small-64-kernel.dmp",
        "elf/small.elf",
        "PAGEDU64",
        6,
        None,
    ),
    (
        "windump/small-32-full.dmp",
        "elf/small.elf",
        "PAGEDUMP",
        1,
        Some(0),
    ),
    (
        "windump/small-32pae-bitmap.dmp",
        "elf/small.elf",
        "PAGEDUMP",
        5,
        Some(1),
    ),
    (
        "windump/guest-64-bitmap.dmp.gz",
        "elf/core.elf.gz",
        "PAGEDU64",
        5,
        None,
    ),
    (
        "windump/guest-32-full.dmp.gz",
        "elf/core.elf.gz",
        "PAGEDUMP",
        1,
        Some(0),
    ),
];

#[test]
fn every_sample_reads_back_equal_to_its_source_core() {
    for &(dump, source, sig, dump_type, pae) in SAMPLES {
        let elf = bytes(source);
        let loads = vmsnap_testkit::elf::loads_in(&elf);
        assert!(!loads.is_empty(), "{source}");
        let w = open(bytes(dump));
        let d = w.describe();
        assert_eq!(d["header"]["signature"], sig, "{dump}");
        assert_eq!(d["header"]["dump_type"], dump_type, "{dump}");
        assert_eq!(
            d["header"]["pae_enabled"],
            serde_json::to_value(pae).unwrap(),
            "{dump}"
        );
        let mut pages = std::collections::BTreeSet::new();
        let mut end = 0;
        for (l, data) in &loads {
            let mut got = vec![0u8; data.len()];
            w.read_at(l.paddr, &mut got).unwrap();
            assert!(got == *data, "{dump}: PT_LOAD at {:#x} differs", l.paddr);
            pages.extend(l.paddr / 4096..(l.paddr + l.filesz).div_ceil(4096));
            end = end.max((l.paddr + l.filesz).div_ceil(4096) * 4096);
        }
        assert_eq!(w.len(), end, "{dump}");
        assert_eq!(w.pages_present(), pages.len() as u64, "{dump}");
        // The data extents are exactly the source's pages; the rest is unallocated.
        let mut mapped = std::collections::BTreeSet::new();
        for e in w.extents(0..w.len()).unwrap() {
            match e.kind {
                ExtentKind::Data => {
                    mapped.extend(e.offset / 4096..(e.offset + e.len) / 4096);
                }
                ExtentKind::Unallocated => {}
                k => panic!("{dump}: unexpected extent kind {k:?}"),
            }
        }
        assert_eq!(mapped, pages, "{dump}");
        assert!(w.findings().is_empty(), "{dump}: {:?}", w.findings());
        let layer: Arc<dyn Layer> = Arc::new(w);
        vmsnap_testkit::exercise(&layer, 64 << 20);
    }
}

#[test]
fn header_fields_sit_at_the_documented_offsets() {
    // DUMP_HEADER64: DirectoryTableBase at 0x10, KdDebuggerDataBlock at 0x80, BugCheckCode
    // at 0x38, DumpType at 0xf98, SystemTime at 0xfa8 (Volatility's crash64.json);
    // DUMP_HEADER32: KdDebuggerDataBlock at 0x60, PaeEnabled at 0x5c, DumpType at 0xf88.
    let mut b64 = bytes("windump/small-64-full.dmp");
    b64[0x10..0x18].copy_from_slice(&0x1ab000u64.to_le_bytes());
    b64[0x80..0x88].copy_from_slice(&0xffff_f802_1234_5678_u64.to_le_bytes());
    b64[0x38..0x3c].copy_from_slice(&0x133u32.to_le_bytes());
    b64[0xfa8..0xfb0].copy_from_slice(&133_000_000_000_000_000u64.to_le_bytes());
    let w = open(b64);
    let h = w.describe()["header"].clone();
    assert_eq!(h["directory_table_base"], "0x1ab000");
    assert_eq!(h["kd_debugger_data_block"], "0xfffff80212345678");
    assert_eq!(h["bug_check_code"], "0x133");
    // 133e15 * 100 ns = 13_300_000_000 s after 1601-01-01 (`date -u -d @$((13300000000 -
    // 11644473600))`).
    assert_eq!(h["system_time_utc"], "2022-06-18T04:26:40Z");
    let cpu = w.cpu_state();
    assert_eq!(cpu.len(), 1);
    assert_eq!(cpu[0].cr3, 0x1ab000);
    assert!(cpu[0].long_mode());
    let mut b32 = bytes("windump/small-32pae-bitmap.dmp");
    b32[0x10..0x14].copy_from_slice(&0x1e98000u32.to_le_bytes());
    b32[0x60..0x64].copy_from_slice(&0x8276_5432u32.to_le_bytes());
    let w = open(b32);
    assert_eq!(
        w.describe()["header"]["kd_debugger_data_block"],
        "0x82765432"
    );
    let cpu = w.cpu_state();
    assert_eq!(
        (cpu[0].cr3, cpu[0].cr4 & 0x20, cpu[0].efer),
        (0x1e98000, 0x20, 0)
    );
    // No root recorded (the samples' paused guests): no CPU state, so no x86 layer.
    assert!(open(bytes("windump/small-32-full.dmp"))
        .cpu_state()
        .is_empty());
}

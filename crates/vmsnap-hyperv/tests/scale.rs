//! Hyper-V saved-state RAM at scale (issue 22): a `.vmrs` declaring 1 TiB of guest RAM in
//! 65 536 `RamMemoryBlock`s (16 MiB each, every one followed by a 16 MiB hole) with two
//! present 1 MiB data blocks opens, reads, maps and describes itself in time and memory that follow the
//! keys and present pages, not the declared size. The open runs in a child process (this
//! test binary again) under `/usr/bin/time`, so its peak RSS is its own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::builder::{build, Opts, K, V};
use common::encode::{encode_block, guest_bytes, guest_bytes_with, memory_block, PageMode};
use common::open_with;
use vmsnap_core::ExtentKind;
use vmsnap_hyperv::limits::MAX_DESCRIBED_RAM_BLOCKS;
use vmsnap_hyperv::{PLUGIN, RAM_PLUGIN};
use vmsnap_testkit::rusage;

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;
/// Metadata blocks declared.
const BLOCKS: u64 = 1 << 16;
/// Guest pages per metadata block (16 MiB), so `BLOCKS` of them make 1 TiB.
const BLOCK_PAGES: u64 = 4096;
const _: () = assert!(BLOCKS * BLOCK_PAGES * PAGE == 1 << 40);
/// Guest pages per 1 MiB data block (`RamBlock<n>`).
const DATA_PAGES: u64 = 256;
/// The last data block of the last metadata block.
const LAST_DATA: u64 = BLOCKS * BLOCK_PAGES / DATA_PAGES - 1;
/// Guest-physical end: metadata block `i` sits at page `2 * i * BLOCK_PAGES`.
const GUEST_END: u64 = (2 * (BLOCKS - 1) * BLOCK_PAGES + BLOCK_PAGES) * PAGE;
/// Where data block `LAST_DATA` lands: the last MiB below `GUEST_END`.
const LAST_GPA: u64 = GUEST_END - MIB;
/// The bound on the child's peak resident set.
const MAX_RSS_KIB: u64 = 64 << 10;
/// Environment variable naming the file the child opens.
const FILE_VAR: &str = "VMSNAP_HYPERV_SCALE_FILE";

/// (raw data block 0, compressed data block `LAST_DATA`) contents.
fn data() -> (Vec<u8>, Vec<u8>) {
    (
        guest_bytes(MIB as usize, 41),
        guest_bytes_with(MIB as usize, 42, false),
    )
}

fn huge_vmrs() -> Vec<u8> {
    let (raw, comp) = data();
    let mut ss = vec![
        K::leaf("VmVersion", V::Int(0xA00)),
        K::leaf("type", V::Str("Normal".into())),
    ];
    for i in 0..BLOCKS {
        ss.push(K::leaf(
            &format!("RamMemoryBlock{i}"),
            V::Arr(memory_block(
                BLOCK_PAGES,
                i * BLOCK_PAGES,
                2 * i * BLOCK_PAGES,
            )),
        ));
    }
    // A raw block (a 1 MiB file object, mapped 1:1) and a compressed one.
    ss.push(K::leaf("RamBlock0", V::Arr(raw)).t(2));
    let enc = encode_block(&comp, PageMode::Auto);
    assert!(enc.len() < (MIB / 4) as usize, "compressed block is small");
    ss.push(K::leaf(&format!("RamBlock{LAST_DATA}"), V::Arr(enc)).t(2));
    build(&[K::node("savedstate", ss)], &Opts::default()).bytes
}

/// The child's part: opens the file named by [`FILE_VAR`] and checks it. Prints the
/// time it took. Does nothing when run as an ordinary test.
#[test]
fn child_open_huge_ram() {
    let Some(path) = std::env::var_os(FILE_VAR) else {
        return;
    };
    let start = Instant::now();
    let bytes = std::fs::read(path).unwrap();
    let layer = open_with(bytes, &[&PLUGIN, &RAM_PLUGIN]).unwrap();
    assert_eq!(layer.name(), "hyperv-vmrs-ram");
    assert_eq!(layer.len(), GUEST_END);
    let (raw, comp) = data();
    let mut page = vec![0u8; PAGE as usize];
    // Present pages, exact bytes: one from each data block.
    layer.read_at(5 * PAGE, &mut page).unwrap();
    assert_eq!(page, raw[5 * PAGE as usize..6 * PAGE as usize]);
    layer.read_at(LAST_GPA + 200 * PAGE, &mut page).unwrap();
    assert_eq!(page, comp[200 * PAGE as usize..201 * PAGE as usize]);
    // Absent pages read as zeros: declared without data, and in a hole between blocks.
    for gpa in [1 << 40, (1 << 40) + BLOCK_PAGES * PAGE] {
        page.fill(0xAA);
        layer.read_at(gpa, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0), "page at {gpa:#x}");
    }
    // The map: the two present data blocks, the rest unallocated.
    let ext = layer.extents(0..layer.len()).unwrap();
    assert!(ext.len() <= 8, "{} extents", ext.len());
    assert_eq!(ext.first().unwrap().offset, 0);
    let last = ext.last().unwrap();
    assert_eq!(last.offset + last.len, GUEST_END);
    for w in ext.windows(2) {
        assert_eq!(w[0].offset + w[0].len, w[1].offset, "{ext:?}");
    }
    let present: Vec<(u64, u64)> = ext
        .iter()
        .filter(|e| e.kind != ExtentKind::Unallocated)
        .map(|e| (e.offset, e.len))
        .collect();
    assert_eq!(present, [(0, MIB), (LAST_GPA, MIB)], "{ext:?}");
    // describe() stays bounded too (it lists at most MAX_DESCRIBED_RAM_BLOCKS).
    assert_eq!(layer.describe()["ram_blocks_total"], BLOCKS);
    println!("child open+read+map+describe: {:?}", start.elapsed());
}

#[test]
fn one_tib_over_many_blocks_costs_what_is_present() {
    let bytes = huge_vmrs();
    let dir = std::env::temp_dir().join(format!("vmsnap-hyperv-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("huge.vmrs");
    std::fs::write(&path, &bytes).unwrap();
    // Declared: 1 TiB in `BLOCKS` metadata blocks (read back through describe()).
    let layer = open_with(bytes.clone(), &[&PLUGIN, &RAM_PLUGIN]).unwrap();
    let d = layer.describe();
    // describe() lists the first MAX_DESCRIBED_RAM_BLOCKS and counts them all.
    let listed = d["ram_blocks"].as_array().unwrap();
    assert_eq!(listed.len(), MAX_DESCRIBED_RAM_BLOCKS);
    assert_eq!(d["ram_blocks_total"], BLOCKS);
    assert!(listed.iter().all(|b| b["pages"] == BLOCK_PAGES));
    let declared = BLOCKS * BLOCK_PAGES;
    assert_eq!(d["data_blocks"]["raw"], 1);
    assert_eq!(d["data_blocks"]["compressed"], 1);
    let missing = layer
        .findings()
        .into_iter()
        .find(|f| f.rule == vmsnap_hyperv::rule::RAM_BLOCK_MISSING)
        .unwrap();
    assert!(
        missing
            .message
            .starts_with(&format!("{} guest pages", declared - 2 * DATA_PAGES)),
        "{missing:?}"
    );
    drop(layer);
    if !rusage::can_measure() {
        eprintln!(
            "skipped the peak-RSS check: {} is not installed",
            rusage::TIME
        );
        std::fs::remove_dir_all(&dir).ok();
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_open_huge_ram",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(FILE_VAR, &path);
    let m = rusage::measure(&cmd);
    std::fs::remove_dir_all(&dir).ok();
    let out = String::from_utf8_lossy(&m.stdout);
    eprintln!(
        "file {} bytes, {BLOCKS} blocks, guest {GUEST_END:#x} bytes: child {:?}, peak RSS {} KiB; {}",
        bytes.len(),
        m.wall,
        m.max_rss_kib,
        out.lines().find(|l| l.contains("child open")).unwrap_or(""),
    );
    assert_eq!(
        m.code,
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&m.stderr)
    );
    assert!(out.contains("1 passed"), "{out}");
    assert!(
        m.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        m.max_rss_kib
    );
    assert!(m.wall < Duration::from_secs(10), "took {:?}", m.wall);
}

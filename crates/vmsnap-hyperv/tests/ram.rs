//! Guest RAM from saved state: RamMemoryBlock metadata and RamBlock data (raw 1 MiB
//! blocks, the compressed page-record stream with pattern pages, runs, XPRESS and
//! variable records), CPU state from partition_state, modern and older key names, and
//! the two plugins stacked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::builder::{build, Opts, K, V};
use common::encode::{
    encode_block, encode_pages, guest_bytes, guest_bytes_with, memory_block, partition_state,
    PageMode, Vp,
};
use common::open_with;
use vmsnap_core::{ErrorKind, ExtentKind, FileLayer, Layer, MemSource, Sniff};
use vmsnap_hyperv::{pages, HyperVContainer, HyperVRam, PLUGIN, RAM_PLUGIN};

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

struct Guest {
    keys: Vec<K>,
    expected: Vec<u8>,
    vps: Vec<Vp>,
}

fn vps() -> Vec<Vp> {
    (0..2u32)
        .map(|i| {
            let mut gp = [0u64; 18];
            for (n, g) in gp.iter_mut().enumerate() {
                *g = u64::from(i) << 32 | n as u64;
            }
            Vp {
                index: i,
                gp,
                cr: [
                    0x8005_0033,
                    0x1234,
                    0x1ab000 + u64::from(i) * 0x1000,
                    0x0035_06f8,
                    0,
                    0xd01,
                ],
                idtr: (0xfff, 0xffff_f800_0000_0000),
                gdtr: (0x57, 0xffff_f800_0001_0000),
            }
        })
        .collect()
}

/// Two GPA ranges: 384 pages at 0 (data blocks 0 and 1), 300 pages at 4 MiB (blocks 2
/// and 3). Block 0 raw, 1 compressed (auto), 2 variable records, 3 partial (44 pages).
fn guest(legacy: bool) -> Guest {
    let data: Vec<Vec<u8>> = (0..4).map(|b| guest_bytes(MIB, 100 + b)).collect();
    let blocks = [
        data[0].clone(),
        encode_block(&data[1], PageMode::Auto),
        encode_block(&data[2], PageMode::Variable),
        // Records for 44 pages, then the end tag: the rest decodes as zeros.
        encode_pages(&data[3][..44 * PAGE], PageMode::Auto),
    ];
    assert!(blocks[1].len() < MIB && blocks[2].len() < MIB);
    let size = (1024 + 300) * PAGE;
    let mut expected = vec![0u8; size];
    expected[..MIB].copy_from_slice(&data[0]);
    expected[MIB..384 * PAGE].copy_from_slice(&data[1][..128 * PAGE]);
    expected[1024 * PAGE..1280 * PAGE].copy_from_slice(&data[2]);
    expected[1280 * PAGE..1324 * PAGE].copy_from_slice(&data[3][..44 * PAGE]);
    let vps = vps();
    let meta = [memory_block(384, 0, 0), memory_block(300, 512, 1024)];
    let keys = if legacy {
        vec![
            K::node(
                "configuration",
                vec![K::node(
                    "properties",
                    vec![K::leaf("version", V::Int(0x500))],
                )],
            ),
            K::node(
                "savedVM",
                vec![K::leaf("partition_state", V::Arr(partition_state(&vps)))],
            ),
            K::node(
                "RamMemoryBlock",
                meta.iter()
                    .enumerate()
                    .map(|(i, m)| K::node(&i.to_string(), vec![K::leaf("data", V::Arr(m.clone()))]))
                    .collect(),
            ),
            K::node(
                "RamBlock",
                blocks
                    .iter()
                    .enumerate()
                    .map(|(i, b)| K::leaf(&i.to_string(), V::Arr(b.clone())).t(2))
                    .collect(),
            ),
        ]
    } else {
        let mut ss = vec![
            K::leaf("VmVersion", V::Int(0xA00)),
            K::leaf("type", V::Str("Normal".into())),
            K::node(
                "savedVM",
                vec![K::leaf("partition_state", V::Arr(partition_state(&vps)))],
            ),
        ];
        for (i, m) in meta.iter().enumerate() {
            ss.push(K::leaf(&format!("RamMemoryBlock{i}"), V::Arr(m.clone())));
        }
        for (i, b) in blocks.iter().enumerate() {
            ss.push(K::leaf(&format!("RamBlock{i}"), V::Arr(b.clone())).t(2));
        }
        vec![
            K::node(
                "configuration",
                vec![K::node(
                    "properties",
                    vec![K::leaf("version", V::Int(0xA00))],
                )],
            ),
            K::node("savedstate", ss),
        ]
    };
    Guest {
        keys,
        expected,
        vps,
    }
}

fn check(layer: &dyn Layer, g: &Guest) {
    assert_eq!(layer.len(), g.expected.len() as u64);
    let got = vmsnap_testkit::read_all(layer);
    vmsnap_testkit::assert_same_bytes(&got, &g.expected, "guest memory");
    // Unaligned reads across segment and block boundaries.
    let mut buf = vec![0u8; 3 * PAGE + 17];
    for off in [MIB - 5, 384 * PAGE - 100, 1279 * PAGE + 3, 0, 100] {
        let n = buf.len().min(g.expected.len() - off);
        layer.read_at(off as u64, &mut buf[..n]).unwrap();
        assert_eq!(&buf[..n], &g.expected[off..off + n], "at {off:#x}");
    }
    let ext = layer.extents(0..layer.len()).unwrap();
    assert_eq!(ext[0].offset, 0);
    assert!(ext[0].lower_offset.is_some(), "raw block maps 1:1");
    let hole = ext
        .iter()
        .find(|e| e.kind == ExtentKind::Unallocated)
        .unwrap();
    assert_eq!(
        (hole.offset, hole.len),
        (384 * PAGE as u64, (1024 - 384) * PAGE as u64)
    );
    let cpus = layer.cpu_state();
    assert_eq!(cpus.len(), 2);
    for (c, v) in cpus.iter().zip(&g.vps) {
        assert_eq!(c.index, v.index);
        assert_eq!(c.cr3, v.cr[2]);
        assert_eq!(c.cr0, v.cr[0]);
        assert_eq!(c.cr4, v.cr[3]);
        assert_eq!(c.efer, v.cr[5]);
        assert_eq!(c.regs["rip"], v.gp[16]);
        assert_eq!(c.regs["rsp"], v.gp[4]);
        assert_eq!(c.regs["gdtr_base"], v.gdtr.1);
        assert_eq!(c.regs["idtr_limit"], u64::from(v.idtr.0));
    }
    assert_eq!(
        layer
            .read_at(layer.len() - 1, &mut [0u8; 2])
            .unwrap_err()
            .kind(),
        ErrorKind::OutOfBounds
    );
}

#[test]
fn raw_and_compressed_blocks_make_guest_physical_memory() {
    let g = guest(false);
    let b = build(&g.keys, &Opts::default());
    let layer = open_with(b.bytes.clone(), &[&PLUGIN, &RAM_PLUGIN]).unwrap();
    assert_eq!(layer.name(), "hyperv-vmrs-ram");
    assert_eq!(layer.lower()[0].name(), "hyperv-vmcx");
    check(layer.as_ref(), &g);
    let d = layer.describe();
    assert_eq!(d["format"], "hyperv-vmrs-ram");
    assert_eq!(d["virtual_size"], g.expected.len() as u64);
    assert_eq!(d["vm_version"], 0xA00);
    assert_eq!(d["savedstate_type"], "Normal");
    assert_eq!(d["key_layout"], "modern");
    assert_eq!(d["data_blocks"]["raw"], 1);
    assert_eq!(d["data_blocks"]["compressed"], 3);
    assert_eq!(d["ram_blocks"][1]["gpa_index_start"], 1024);
    // Read again from a cold layer in one big read (parallel prefetch path).
    let direct = HyperVRam::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(
        b.bytes.clone(),
    )))))
    .unwrap();
    let mut all = vec![0u8; g.expected.len()];
    direct.read_at(0, &mut all).unwrap();
    assert!(all == g.expected);
}

#[test]
fn container_offers_ram_child_and_ram_probe() {
    let g = guest(false);
    let b = build(&g.keys, &Opts::default());
    let c = HyperVContainer::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(
        b.bytes.clone(),
    )))))
    .unwrap();
    let kids = c.children();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].name, "ram");
    assert!(!kids[0].stackable);
    check(kids[0].layer.as_ref(), &g);
    assert_eq!(c.describe()["guest_ram"]["ram_blocks"], 2);
    assert_eq!(c.describe()["contents"], "saved_state");
    let c: Arc<dyn Layer> = Arc::new(c);
    let s = Sniff::read(c.as_ref()).unwrap();
    assert!((RAM_PLUGIN.probe)(&s.window(c.as_ref())).is_yes());
    assert!(!(PLUGIN.probe)(&s.window(c.as_ref())).is_yes());
}

#[test]
fn older_key_names() {
    let g = guest(true);
    let b = build(&g.keys, &Opts::default());
    let layer = open_with(b.bytes, &[&PLUGIN, &RAM_PLUGIN]).unwrap();
    check(layer.as_ref(), &g);
    assert_eq!(layer.describe()["key_layout"], "legacy");
    assert_eq!(layer.describe()["vm_version"], 0x500);
}

#[test]
fn no_ram_keys_is_declined_by_the_plugin_and_not_found_by_the_reader() {
    let keys = vec![K::node("configuration", vec![K::leaf("x", V::Int(1))])];
    let b = build(&keys, &Opts::default());
    // The RAM plugin on a configuration: not its format after all (the stacker's refusal).
    let e = open_with(b.bytes.clone(), &[&PLUGIN, &RAM_PLUGIN]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Declined);
    let e = open_with(b.bytes.clone(), &[&RAM_PLUGIN]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Declined);
    let e =
        HyperVRam::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(b.bytes))))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn hostile_ram() {
    // A corrupt XPRESS page: reading that block fails, the rest reads.
    let g = guest(false);
    let mut keys = g.keys.clone();
    let ss = &mut keys[1].kids;
    let blk = ss.iter_mut().find(|k| k.name == "RamBlock1").unwrap();
    // One XPRESS page record whose first match reaches before the output.
    let mut bad = 10u32.to_le_bytes().to_vec();
    bad.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x61, 0x62, 0x63, 0x64]);
    bad.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    blk.v = V::Arr(bad);
    let b = build(&keys, &Opts::default());
    let layer = open_with(b.bytes, &[&PLUGIN, &RAM_PLUGIN]).unwrap();
    let mut buf = vec![0u8; PAGE];
    assert!(layer.read_at(MIB as u64, &mut buf).is_err());
    layer.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, g.expected[..PAGE]);

    // Pattern-run count overflow, a page record larger than a page, a block without end.
    for stream in [
        [
            0xFFFF_FFFDu32.to_le_bytes().to_vec(),
            7u64.to_le_bytes().to_vec(),
            u32::MAX.to_le_bytes().to_vec(),
        ]
        .concat(),
        [5000u32.to_le_bytes().to_vec(), vec![0u8; 5000]].concat(),
        [
            0xFFFF_FFFEu32.to_le_bytes().to_vec(),
            7u64.to_le_bytes().to_vec(),
        ]
        .concat(),
        [
            0xFFFF_FFFCu32.to_le_bytes().to_vec(),
            u32::MAX.to_le_bytes().to_vec(),
            4u32.to_le_bytes().to_vec(),
            vec![0; 4],
        ]
        .concat(),
    ] {
        let mut keys = g.keys.clone();
        let blk = keys[1]
            .kids
            .iter_mut()
            .find(|k| k.name == "RamBlock1")
            .unwrap();
        blk.v = V::Arr(stream);
        let b = build(&keys, &Opts::default());
        let layer = open_with(b.bytes, &[&PLUGIN, &RAM_PLUGIN]).unwrap();
        assert!(layer.read_at(MIB as u64, &mut buf).is_err());
    }

    // A metadata range past the 2^52 guest limit: the container opens, RAM does not.
    let mut keys = g.keys.clone();
    let m = keys[1]
        .kids
        .iter_mut()
        .find(|k| k.name == "RamMemoryBlock1")
        .unwrap();
    m.v = V::Arr(memory_block(u64::MAX / 2, 512, 1024));
    let b = build(&keys, &Opts::default());
    let c = HyperVContainer::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(
        b.bytes.clone(),
    )))))
    .unwrap();
    assert!(c.children().is_empty());
    assert!(c
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_hyperv::rule::GUEST_RAM));
    let e =
        HyperVRam::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(b.bytes))))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);

    // Overlapping ranges are malformed; a missing data block reads as zeros with a finding.
    let mut keys = g.keys.clone();
    let m = keys[1]
        .kids
        .iter_mut()
        .find(|k| k.name == "RamMemoryBlock1")
        .unwrap();
    m.v = V::Arr(memory_block(300, 512, 100));
    let b = build(&keys, &Opts::default());
    assert_eq!(
        HyperVRam::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(b.bytes)))))
            .unwrap_err()
            .kind(),
        ErrorKind::Malformed
    );
    let mut keys = g.keys.clone();
    keys[1].kids.retain(|k| k.name != "RamBlock2");
    let b = build(&keys, &Opts::default());
    let layer = open_with(b.bytes, &[&PLUGIN, &RAM_PLUGIN]).unwrap();
    assert!(layer
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_hyperv::rule::RAM_BLOCK_MISSING));
    layer.read_at(1024 * PAGE as u64, &mut buf).unwrap();
    assert!(buf.iter().all(|&x| x == 0));
    // Short metadata.
    let mut keys = g.keys.clone();
    let m = keys[1]
        .kids
        .iter_mut()
        .find(|k| k.name == "RamMemoryBlock0")
        .unwrap();
    m.v = V::Arr(vec![3, 0, 0, 0]);
    let b = build(&keys, &Opts::default());
    assert_eq!(
        HyperVRam::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(b.bytes)))))
            .unwrap_err()
            .kind(),
        ErrorKind::Malformed
    );
}

/// A guest of 20 data blocks for the read-path tests: 12 blocks at GPA 0, a 4-block
/// hole, then 8 blocks (the last one partial, 156 pages). Blocks are, by number mod 6:
/// XPRESS page records, variable records, XPRESS, raw 1 MiB, XPRESS, and pattern runs
/// small enough to be stored inline in the key table.
struct Big {
    bytes: Vec<u8>,
    expected: Vec<u8>,
    /// Compressed data blocks by number.
    compressed: Vec<u64>,
}

fn big_guest() -> &'static Big {
    static BIG: std::sync::OnceLock<Big> = std::sync::OnceLock::new();
    BIG.get_or_init(|| {
        let mut ss = vec![
            K::leaf("VmVersion", V::Int(0x900)),
            K::leaf("RamMemoryBlock0", V::Arr(memory_block(12 * 256, 0, 0))),
            K::leaf(
                "RamMemoryBlock1",
                V::Arr(memory_block(8 * 256 - 100, 12 * 256, 16 * 256)),
            ),
        ];
        let mut expected = vec![0u8; (24 * 256 - 100) * PAGE];
        let mut compressed = Vec::new();
        for n in 0..20u64 {
            let mut data = guest_bytes(MIB, 500 + n);
            if n % 6 == 5 {
                for (i, p) in data.chunks_mut(64 * PAGE).enumerate() {
                    for c in p.chunks_mut(8) {
                        c.copy_from_slice(&(n << 8 | i as u64).to_le_bytes());
                    }
                }
            }
            if n == 19 {
                data[156 * PAGE..].fill(0);
            }
            let v = match n % 6 {
                1 => encode_block(&data, PageMode::Variable),
                3 => data.clone(),
                _ => encode_block(&data, PageMode::Auto),
            };
            if n % 6 == 5 {
                assert!(v.len() < 2048, "inline block");
            }
            if n % 6 != 3 {
                compressed.push(n);
            }
            let gpa = if n < 12 { n } else { n + 4 } as usize * MIB;
            let len = if n == 19 { 156 * PAGE } else { MIB };
            expected[gpa..gpa + len].copy_from_slice(&data[..len]);
            ss.push(K::leaf(&format!("RamBlock{n}"), V::Arr(v)).t(2));
        }
        let bytes = build(&[K::node("savedstate", ss)], &Opts::default()).bytes;
        Big {
            bytes,
            expected,
            compressed,
        }
    })
}

fn cold(bytes: &[u8]) -> HyperVRam {
    HyperVRam::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(
        bytes.to_vec(),
    )))))
    .unwrap()
}

#[test]
fn sequential_reads_of_every_size_match() {
    let g = big_guest();
    for size in [PAGE, 64 << 10, MIB, 3 * PAGE + 17, MIB + 4097, 5 * MIB] {
        let layer = cold(&g.bytes);
        assert_eq!(layer.len(), g.expected.len() as u64);
        let mut buf = vec![0u8; size];
        let mut off = 0usize;
        while off < g.expected.len() {
            let n = size.min(g.expected.len() - off);
            layer.read_at(off as u64, &mut buf[..n]).unwrap();
            assert!(
                buf[..n] == g.expected[off..off + n],
                "{size}-byte read at {off:#x}"
            );
            off += n;
        }
    }
}

#[test]
fn sequential_reads_decode_blocks_ahead_and_random_reads_do_not() {
    let g = big_guest();
    let layer = cold(&g.bytes);
    let ram = layer.ram();
    let mut buf = vec![0u8; 64 << 10];
    // The first read has no history: only its pages are decoded.
    layer.read_at(0, &mut buf).unwrap();
    ram.wait_idle();
    assert!(!ram.is_decoded(0));
    // The next one continues it: helpers decode the blocks after it (block 0, partly
    // read already, goes on page by page), when there is a core for them.
    layer.read_at(64 << 10, &mut buf).unwrap();
    assert_eq!(buf[..], g.expected[64 << 10..128 << 10]);
    ram.wait_idle();
    let ahead = vmsnap_core::parallelism() > 1;
    // Eight compressed blocks (3 and 9 are raw).
    for n in [1, 2, 4, 5, 6, 7, 8, 10] {
        assert_eq!(ram.is_decoded(n), ahead, "block {n} read ahead");
    }
    assert!(
        !ram.is_decoded(0),
        "the block being read is not decoded whole"
    );
    assert!(!ram.is_decoded(3), "raw blocks are not decoded");
    assert!(!ram.is_decoded(11), "read-ahead is bounded");
    // Reading on within the first half of the window does not move it.
    layer.read_at(128 << 10, &mut buf).unwrap();
    ram.wait_idle();
    assert!(!ram.is_decoded(11));
    // A read elsewhere is not sequential.
    layer.read_at(6 * MIB as u64, &mut buf).unwrap();
    ram.wait_idle();
    assert!(!ram.is_decoded(11), "not sequential: no read-ahead");
    // Continuing it, the window's first half is decoded already but not its second:
    // the queue is topped up.
    layer
        .read_at(6 * MIB as u64 + (64 << 10), &mut buf)
        .unwrap();
    ram.wait_idle();
    for n in [11, 12, 13, 14, 16] {
        assert_eq!(
            ram.is_decoded(n),
            ahead,
            "block {n} read ahead after the refill"
        );
    }
    assert!(!ram.is_decoded(17));
    // Random page reads elsewhere decode pages only.
    for gpa in [21 * MIB + 5 * PAGE, 22 * MIB + 200 * PAGE] {
        layer.read_at(gpa as u64, &mut buf[..PAGE]).unwrap();
        assert_eq!(buf[..PAGE], g.expected[gpa..gpa + PAGE]);
    }
    ram.wait_idle();
    assert!(!ram.is_decoded(17) && !ram.is_decoded(18));
}

#[test]
fn random_reads_match_full_decode() {
    let g = big_guest();
    let layer = cold(&g.bytes);
    let mut rng = common::encode::Rng::new(42);
    let mut buf = vec![0u8; 3 * PAGE];
    for i in 0..600 {
        let (off, n) = match i % 3 {
            0 => (rng.below(g.expected.len() / PAGE) * PAGE, PAGE),
            1 => (rng.below(g.expected.len()), 1 + rng.below(2 * PAGE)),
            // Within one block, often the same few pages again (the cached index).
            _ => (7 * MIB + rng.below(8) * 513, 1 + rng.below(3 * PAGE)),
        };
        let n = n.min(g.expected.len() - off);
        layer.read_at(off as u64, &mut buf[..n]).unwrap();
        assert!(
            buf[..n] == g.expected[off..off + n],
            "{n} bytes at {off:#x}"
        );
    }
    // Page reads of every compressed block, then whole-block reads of the same layer.
    for &b in &g.compressed {
        let gpa = if b < 12 { b } else { b + 4 } as usize * MIB;
        for p in [0, 1, 100, 155, 156, 255] {
            let at = gpa + p * PAGE;
            if at + PAGE > g.expected.len() {
                continue;
            }
            layer.read_at(at as u64, &mut buf[..PAGE]).unwrap();
            assert!(
                buf[..PAGE] == g.expected[at..at + PAGE],
                "block {b} page {p}"
            );
        }
    }
    let all = vmsnap_testkit::read_all(&layer);
    assert!(all == g.expected);
}

#[test]
fn a_corrupt_page_fails_its_own_reads_and_whole_block_reads() {
    // Block 1: XPRESS pages, page 5's payload has a match reaching before the output.
    let good = guest_bytes_with(MIB, 9, false);
    let mut stream = Vec::new();
    for (i, p) in good.chunks(PAGE).enumerate() {
        let c = if i == 5 {
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x61, 0x62, 0x63, 0x64]
        } else {
            common::encode::xpress_compress(p)
        };
        stream.extend_from_slice(&(c.len() as u32).to_le_bytes());
        stream.extend_from_slice(&c);
    }
    stream.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    let ss = vec![
        K::leaf("VmVersion", V::Int(0x900)),
        K::leaf("RamMemoryBlock0", V::Arr(memory_block(512, 0, 0))),
        K::leaf("RamBlock0", V::Arr(guest_bytes(MIB, 1))).t(2),
        K::leaf("RamBlock1", V::Arr(stream)).t(2),
    ];
    let bytes = build(&[K::node("savedstate", ss)], &Opts::default()).bytes;
    let layer = cold(&bytes);
    let mut buf = vec![0u8; MIB];
    // Documented choice: a page read decodes only its own records.
    for p in [0, 4, 6, 255] {
        let at = MIB + p * PAGE;
        layer.read_at(at as u64, &mut buf[..PAGE]).unwrap();
        assert!(buf[..PAGE] == good[p * PAGE..(p + 1) * PAGE], "page {p}");
    }
    let e = layer.read_at(MIB as u64 + 5 * PAGE as u64, &mut buf[..PAGE]);
    assert_eq!(e.unwrap_err().kind(), ErrorKind::Malformed);
    assert!(layer
        .read_at(MIB as u64 + 5 * PAGE as u64 + 100, &mut buf[..10])
        .is_err());
    assert!(layer.read_at(MIB as u64, &mut buf).is_err(), "whole block");
    // Sequential reads: the one that needs page 5 fails, the block's other reads succeed.
    let layer = cold(&bytes);
    let mut results = Vec::new();
    for i in 0..32u64 {
        results.push(layer.read_at(i * (64 << 10), &mut buf[..64 << 10]).is_ok());
    }
    assert!(results[..16].iter().all(|&ok| ok));
    assert!(!results[16], "the read holding page 5");
    assert!(results[17..].iter().all(|&ok| ok));
}

/// Decodes `[a, b)` of a block through its page index, as a page read does.
fn range_of(
    stream: &[u8],
    index: &pages::PageIndex,
    a: usize,
    b: usize,
) -> vmsnap_core::Result<Vec<u8>> {
    let mut dst = vec![0xAAu8; b - a];
    let mut scratch = Vec::new();
    let data_end = b.min(index.produced());
    if data_end <= a {
        dst.fill(0);
        return Ok(dst);
    }
    let (s, e, out) = index.input_range(a, data_end).unwrap();
    pages::decode_range(
        &stream[s..e],
        1000 + s as u64,
        out,
        index,
        a,
        &mut dst,
        &mut scratch,
    )?;
    Ok(dst)
}

#[test]
fn page_decode_matches_full_decode_on_random_and_corrupt_streams() {
    let mut rng = common::encode::Rng::new(7);
    let mut full = vec![0u8; MIB];
    // How often each outcome of a corruption was seen: header error, still good, payload.
    let mut seen = [0usize; 3];
    for seed in 0..40u64 {
        let (stream, expected) = common::encode::random_stream(seed);
        let n = pages::decode_block(&stream, &mut full, 1000).unwrap();
        assert!(
            full == expected,
            "seed {seed}: the generator and decode_block agree"
        );
        let index = pages::PageIndex::build(&stream, 1000).unwrap();
        assert_eq!(index.produced(), n);
        // Every page, and random unaligned ranges (some past the records' end).
        for p in 0..256 {
            let got = range_of(&stream, &index, p * PAGE, (p + 1) * PAGE).unwrap();
            assert!(
                got == full[p * PAGE..(p + 1) * PAGE],
                "seed {seed} page {p}"
            );
        }
        for _ in 0..40 {
            let a = rng.below(MIB);
            let b = a + 1 + rng.below((MIB - a).min(3 * PAGE));
            let got = range_of(&stream, &index, a, b).unwrap();
            assert!(got == full[a..b], "seed {seed} range {a:#x}..{b:#x}");
        }
        assert!(range_of(&stream, &index, 0, MIB).unwrap() == full);

        // Corrupt copies: flipped bytes, a truncation, a spliced tag.
        for k in 0..12 {
            let mut bad = stream.clone();
            match k % 3 {
                0 => {
                    for _ in 0..1 + rng.below(3) {
                        let i = rng.below(bad.len());
                        bad[i] ^= 1 << rng.below(8);
                    }
                }
                1 => bad.truncate(rng.below(bad.len())),
                _ => {
                    let i = rng.below(bad.len().saturating_sub(4));
                    let t = [0xFFFF_FFFCu32, 0xFFFF_FFFD, 4097, 0][rng.below(4)];
                    bad[i..i + 4].copy_from_slice(&t.to_le_bytes());
                }
            }
            let whole = pages::decode_block(&bad, &mut full, 1000);
            match pages::PageIndex::build(&bad, 1000) {
                // A malformed header anywhere fails the index walk and the full decode.
                Err(_) => {
                    seen[0] += 1;
                    assert!(whole.is_err(), "seed {seed} corruption {k}");
                }
                Ok(index) => {
                    let all = range_of(&bad, &index, 0, MIB);
                    match &whole {
                        // A good block decodes the same page by page.
                        Ok(_) => {
                            seen[1] += 1;
                            assert!(all.unwrap() == full);
                            for p in 0..256 {
                                let got = range_of(&bad, &index, p * PAGE, (p + 1) * PAGE);
                                assert!(got.unwrap() == full[p * PAGE..(p + 1) * PAGE]);
                            }
                        }
                        // A payload error: reading the whole block through the index
                        // fails on the same record (unless it was an empty one).
                        Err(e) => {
                            seen[2] += 1;
                            if let Err(e2) = all {
                                assert_eq!(e.to_string(), e2.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "outcomes seen: {seen:?}");
}

#[test]
fn sparse_metadata_ranges_cost_what_their_data_blocks_cost() {
    // 2^38 pages (1 PiB) of metadata with two data blocks, the last one at block number
    // 2^30 - 1: mapping visits the two blocks, not the 2^30 block slots between them (it
    // used to loop once per slot, minutes for a 16 KiB file).
    let far = (1u64 << 30) - 1;
    let ss = vec![
        K::leaf("VmVersion", V::Int(0x900)),
        K::leaf("RamMemoryBlock0", V::Arr(memory_block(1 << 38, 0, 0))),
        K::leaf("RamBlock0", V::Arr(guest_bytes(MIB, 3))).t(2),
        K::leaf(&format!("RamBlock{far}"), V::Arr(guest_bytes(MIB, 4))).t(2),
    ];
    let bytes = build(&[K::node("savedstate", ss)], &Opts::default()).bytes;
    let layer = cold(&bytes);
    assert_eq!(layer.len(), 1 << 50);
    assert_eq!(layer.ram().map().segments().len(), 2);
    let f = layer.findings();
    let missing = f
        .iter()
        .find(|f| f.rule == vmsnap_hyperv::rule::RAM_BLOCK_MISSING)
        .unwrap();
    assert!(
        missing
            .message
            .starts_with(&format!("{} guest pages", (1u64 << 38) - 512)),
        "{}",
        missing.message
    );
    let mut buf = vec![0u8; PAGE];
    layer.read_at(far * MIB as u64, &mut buf).unwrap();
    assert_eq!(buf[..], guest_bytes(MIB, 4)[..PAGE]);

    // Two metadata blocks sharing data pages (different guest addresses): refused, or
    // a few keys could map one data block at millions of addresses.
    let ss = vec![
        K::leaf("VmVersion", V::Int(0x900)),
        K::leaf("RamMemoryBlock0", V::Arr(memory_block(256, 0, 0))),
        K::leaf("RamMemoryBlock1", V::Arr(memory_block(256, 255, 1 << 20))),
        K::leaf("RamBlock0", V::Arr(guest_bytes(MIB, 3))).t(2),
        K::leaf("RamBlock1", V::Arr(guest_bytes(MIB, 3))).t(2),
    ];
    let bytes = build(&[K::node("savedstate", ss)], &Opts::default()).bytes;
    let e = HyperVRam::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes))))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.to_string().contains("claim the same data pages"), "{e}");
}

#[test]
fn concurrent_readers_get_exact_bytes() {
    // Readers at once on one layer, as a parallel convert and a random reader beside it:
    // 4 MiB pieces handed out in order, 64 KiB sequential streams, and random pages, all
    // sharing the read-ahead queue, the claims and the cache.
    let g = big_guest();
    let layer = Arc::new(cold(&g.bytes));
    let len = g.expected.len();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (layer, next) = (&layer, &next);
            s.spawn(move || {
                let mut buf = vec![0u8; 4 * MIB];
                if t < 2 {
                    loop {
                        let at = next.fetch_add(4 * MIB, std::sync::atomic::Ordering::Relaxed);
                        if at >= len {
                            break;
                        }
                        let n = (4 * MIB).min(len - at);
                        layer.read_at(at as u64, &mut buf[..n]).unwrap();
                        assert!(buf[..n] == g.expected[at..at + n], "piece at {at:#x}");
                    }
                } else if t == 2 {
                    for at in (3 * MIB..len).step_by(64 << 10) {
                        let n = (64 << 10).min(len - at);
                        layer.read_at(at as u64, &mut buf[..n]).unwrap();
                        assert!(buf[..n] == g.expected[at..at + n], "stream at {at:#x}");
                    }
                } else {
                    let mut rng = common::encode::Rng::new(5);
                    for _ in 0..2000 {
                        let at = rng.below(len / PAGE) * PAGE;
                        layer.read_at(at as u64, &mut buf[..PAGE]).unwrap();
                        assert!(buf[..PAGE] == g.expected[at..at + PAGE], "page at {at:#x}");
                    }
                }
            });
        }
    });
    layer.ram().wait_idle();
    assert!(vmsnap_testkit::read_all(layer.as_ref()) == g.expected);
}

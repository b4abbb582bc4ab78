//! The committed corpus samples, built deterministically (corpus/hyperv/make.sh runs the
//! `make_hyperv_corpus` example, and a test checks the committed bytes are these).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::builder::{build, Built, LogOpts, Opts, K, V};
use super::encode::{
    encode_block, every_record_stream, guest_bytes_with, match_lengths, memory_block,
    partition_state, text, xpress_compress, PageMode, Vp,
};

fn guid(i: u32) -> String {
    format!("{{{i:08x}-5d1c-4c52-9f1e-7a3b2c1d0e0f}}")
}

/// A VM configuration tree (Hyper-V configuration schema names).
pub fn config_tree() -> Vec<K> {
    let devicetypes = (0..3u32)
        .map(|i| {
            K::node(
                "devicetype",
                vec![
                    K::leaf("guid", V::Str(guid(i))),
                    K::node(
                        "deviceinstance",
                        (0..3u32)
                            .map(|j| K::leaf("metric", V::UInt(u64::from(i * 100 + j))))
                            .collect(),
                    ),
                ],
            )
            .t(if i == 1 { 2 } else { 1 })
        })
        .collect();
    vec![K::node(
        "configuration",
        vec![
            K::node(
                "properties",
                vec![
                    K::leaf("name", V::Str("corpus-vm".into())),
                    K::leaf("global_id", V::Str(guid(42))),
                    K::leaf("version", V::Int(0x900)),
                    K::leaf("subtype", V::Int(1)),
                    K::leaf(
                        "creation_time",
                        V::Arr(vec![0xa7, 0x6e, 0x45, 0x66, 0x9e, 0x97, 0xd7, 0x01]),
                    ),
                    K::leaf("type_id", V::Str("Virtual Machines".into())),
                    K::leaf("is_saved", V::Bool(false)),
                    K::leaf("weight", V::Double(1.5)),
                ],
            )
            .ins(24),
            K::node(
                "settings",
                vec![
                    K::node(
                        "memory",
                        vec![K::node(
                            "bank",
                            vec![
                                K::leaf("size", V::Int(1024)),
                                K::leaf("dynamic_memory_enabled", V::Bool(false)),
                            ],
                        )],
                    ),
                    K::node("processors", vec![K::leaf("count", V::Int(2))]),
                ],
            )
            .ins(25)
            .t(2),
            K::node(
                "_83f8638b-8dca-4152-9eda-2ca8b33039b4_",
                vec![K::node(
                    "controller0",
                    vec![
                        K::node(
                            "drive0",
                            vec![
                                K::leaf(
                                    "pathname",
                                    V::Str("C:\\Hyper-V\\corpus-vm\\disk0.vhdx".into()),
                                ),
                                K::leaf("type", V::Str("VHD".into())),
                            ],
                        ),
                        K::node(
                            "drive1",
                            vec![
                                K::leaf("pathname", V::Str("D:\\iso\\install.iso".into())),
                                K::leaf("type", V::Str("ISO".into())),
                            ],
                        ),
                    ],
                )],
            )
            .ins(21)
            .t(3),
            K::node(
                "_c3b5a3c4-4d1e-4d22-8a0b-7c8f0b1a2d3e_",
                vec![
                    K::leaf("friendly_name", V::Str("Network Adapter".into())),
                    K::leaf("MacAddress", V::Str("00155D00AA01".into())),
                    K::leaf("SwitchName", V::Str("Default Switch".into())),
                ],
            )
            .ins(22),
            K::node(
                "global_settings",
                vec![
                    K::leaf("data_root", V::Str("C:\\Hyper-V\\corpus-vm".into())),
                    K::leaf(
                        "savedstate",
                        V::Str("C:\\Hyper-V\\corpus-vm\\Virtual Machines\\corpus.vmrs".into()),
                    ),
                    K::leaf(
                        "notes",
                        V::Str("a note that is long enough for a file object. ".repeat(50)),
                    ),
                ],
            )
            .ins(2),
            K::node("metrics", devicetypes).ins(29),
            K::leaf("manifest", V::Int(1)).ins(30).t(2),
        ],
    )]
}

/// A clean configuration with an empty replay log (dissect can read it too).
pub fn config_vmcx() -> Built {
    build(
        &config_tree(),
        &Opts {
            free_entries: true,
            stale_copies: true,
            log: Some(LogOpts::default()),
            ..Opts::default()
        },
    )
}

/// The same configuration, dirty: table 1 and a file object only in the replay log.
pub fn dirty_vmcx() -> Built {
    let clean = build(&config_tree(), &Opts::default());
    let t1 = clean.table_offsets.iter().find(|t| t.0 == 1).unwrap();
    build(
        &config_tree(),
        &Opts {
            log: Some(LogOpts {
                pending: vec![(t1.1, u64::from(t1.2))],
                stale: 2,
                ..LogOpts::default()
            }),
            ..Opts::default()
        },
    )
}

/// The data blocks of [`savedstate_vmrs`]: 1 MiB at GPA 0 (block 0) and 512 KiB at
/// 16 MiB (the first half of block 1; its second half is zeros).
pub fn guest_blocks() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..2)
        .map(|b| guest_bytes_with(1 << 20, 7 + b, false))
        .collect();
    v[1][512 << 10..].fill(0);
    v
}

/// Registers recorded in [`savedstate_vmrs`].
pub fn vps() -> Vec<Vp> {
    vec![Vp {
        index: 0,
        gp: core::array::from_fn(|i| 0x1000 + i as u64),
        cr: [
            0x8005_0031,
            0,
            0x0000_0000_001a_b000,
            0x0000_0000_0035_06f8,
            0,
            0xd01,
        ],
        idtr: (0xfff, 0xffff_f804_6e4e_b000),
        gdtr: (0x57, 0xffff_f804_6e4e_f000),
    }]
}

/// A saved state with compressed guest RAM in two ranges and CPU state.
pub fn savedstate_vmrs() -> Built {
    let g = guest_blocks();
    let mut ss = vec![
        K::leaf("VmVersion", V::Int(0x900)),
        K::leaf("type", V::Str("Normal".into())),
        K::node(
            "savedVM",
            vec![K::leaf("partition_state", V::Arr(partition_state(&vps())))],
        ),
        K::leaf("RamMemoryBlock0", V::Arr(memory_block(256, 0, 0))),
        K::leaf("RamMemoryBlock1", V::Arr(memory_block(128, 256, 4096))),
    ];
    for (i, b) in g.iter().enumerate() {
        let mode = if i == 1 {
            PageMode::Variable
        } else {
            PageMode::Auto
        };
        ss.push(K::leaf(&format!("RamBlock{i}"), V::Arr(encode_block(b, mode))).t(2));
    }
    let tree = vec![
        K::node(
            "configuration",
            vec![K::node(
                "properties",
                vec![
                    K::leaf("version", V::Int(0x900)),
                    K::leaf("name", V::Str("corpus-vm".into())),
                ],
            )],
        ),
        K::node("savedstate", ss),
    ];
    build(
        &tree,
        &Opts {
            log: Some(LogOpts::default()),
            ..Opts::default()
        },
    )
}

/// A sample's file name and builder.
pub type Sample = (&'static str, fn() -> Built);

/// (file name, builder) for every committed sample.
pub fn all() -> Vec<Sample> {
    vec![
        ("config.vmcx", config_vmcx as fn() -> Built),
        ("dirty.vmcx", dirty_vmcx),
        ("savedstate.vmrs", savedstate_vmrs),
    ]
}

/// A fuzz seed: the target it feeds, its file name, its bytes, and what it decodes to
/// (`xpress`: the decompressed bytes; `hyperv_ram`: RamBlock0 and RamBlock1 decoded).
pub struct Seed {
    pub target: &'static str,
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub decoded: Vec<Vec<u8>>,
}

/// The committed fuzz seeds (`corpus/hyperv/fuzz-seeds/<target>/<name>`), in the input
/// format of each target.
pub fn fuzz_seeds() -> Vec<Seed> {
    let mut v = Vec::new();
    // xpress: a selector byte (output buffer of (sel + 1) * 256 bytes), then the input
    // run through both the XPRESS decoder and the page-record stream decoder.
    let mut xp = |name: &'static str, sel: u8, stream: Vec<u8>, plain: Vec<u8>| {
        assert!(plain.len() <= (usize::from(sel) + 1) * 256);
        let mut bytes = vec![sel];
        bytes.extend_from_slice(&stream);
        v.push(Seed {
            target: "xpress",
            name,
            bytes,
            decoded: vec![plain],
        });
    };
    // The two examples of MS-XCA §3.1 (plain LZ77).
    let mut ex1 = vec![0x3f, 0x00, 0x00, 0x00];
    ex1.extend_from_slice(b"abcdefghijklmnopqrstuvwxyz");
    xp(
        "ms-xca-abc-z",
        0,
        ex1,
        b"abcdefghijklmnopqrstuvwxyz".to_vec(),
    );
    let ex2 = vec![
        0xff, 0xff, 0xff, 0x1f, 0x61, 0x62, 0x63, 0x17, 0x00, 0x0f, 0xff, 0x26, 0x01,
    ];
    xp("ms-xca-abc-x100", 1, ex2, b"abc".repeat(100));
    // The test encoder: a text page, and every match-length form.
    let page = text(4096, 11);
    xp("text-page", 15, xpress_compress(&page), page);
    let lengths = match_lengths(8192);
    xp("match-lengths", 31, xpress_compress(&lengths), lengths);
    // A page-record stream with every record kind (for the stream decoder; it decodes
    // into a whole block whatever the selector).
    let (stream, block) = every_record_stream(1);
    let mut bytes = vec![15];
    bytes.extend_from_slice(&stream);
    v.push(Seed {
        target: "xpress",
        name: "record-stream",
        bytes,
        decoded: vec![block],
    });

    // hyperv_ram: 48 bytes of RamMemoryBlock0, then a cut selector byte and the
    // RamBlock0 | RamBlock1 values (RamBlock1 doubles as partition_state).
    let small_block = |seed: u64| {
        let mut b = vec![0u8; 1 << 20];
        for (i, p) in b.chunks_mut(4096).enumerate() {
            match i % 16 {
                0 => p.copy_from_slice(&text(4096, seed + i as u64)),
                5 => p.fill(0x90),
                _ => {}
            }
        }
        b
    };
    let b0 = small_block(20);
    let b1 = small_block(40);
    let (s0, d0) = every_record_stream(2);
    let ram = [
        (
            "auto-and-variable",
            memory_block(512, 0, 0),
            encode_block(&b0, PageMode::Auto),
            encode_block(&b1, PageMode::Variable),
            vec![b0.clone(), b1.clone()],
        ),
        (
            "every-record-kind",
            memory_block(300, 0, 16),
            s0,
            encode_block(&b1, PageMode::Auto),
            vec![d0, b1],
        ),
        (
            "partition-state",
            memory_block(256, 0, 0),
            encode_block(&b0, PageMode::Auto),
            partition_state(&vps()),
            vec![b0],
        ),
    ];
    for (name, meta, s0, s1, decoded) in ram {
        v.push(Seed {
            target: "hyperv_ram",
            name,
            bytes: ram_seed(&meta, &s0, &s1),
            decoded,
        });
    }
    v
}

/// Lays out a `hyperv_ram` input so the target's cut (`rest[0] * rest.len() / 256`)
/// falls exactly between the two values: picks the selector byte and pads the second
/// value (after its end) with the fewest zeros that make it so.
fn ram_seed(meta: &[u8], b0: &[u8], b1: &[u8]) -> Vec<u8> {
    assert_eq!(meta.len(), 48);
    let (l0, base) = (b0.len(), 1 + b0.len() + b1.len());
    let (sel, total) = (1..=255usize)
        .filter_map(|sel| {
            let total = (256 * l0).div_ceil(sel).max(base);
            (sel * total / 256 == l0).then_some((sel, total))
        })
        .min_by_key(|&(_, total)| total)
        .expect("a selector byte for the cut");
    let mut v = meta.to_vec();
    v.push(sel as u8);
    v.extend_from_slice(b0);
    v.extend_from_slice(b1);
    v.resize(48 + total, 0);
    v
}

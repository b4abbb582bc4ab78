//! Containers written by the independent builder from the documented format must read
//! back exactly as written: every type, repeated siblings in order, file objects,
//! several key tables, stale copies, chaining, replay log, both headers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::builder::{build, Built, LogOpts, Opts, K, V};
use vmsnap_core::{ErrorKind, FileLayer, Layer, MemSource, RefDecision, RefKind, SniffWindow};
use vmsnap_hyperv::{ArrayData, Container, Value, PLUGIN, RAM_PLUGIN};

fn open(b: &Built) -> vmsnap_core::Result<Container> {
    Container::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(
        b.bytes.clone(),
    )))))
}

fn rules(c: &Container) -> Vec<&'static str> {
    c.findings().to_vec().iter().map(|f| f.rule).collect()
}

/// Asserts the children of `parent` are exactly `ks`, recursively.
fn same_tree(c: &Container, parent: Option<u32>, ks: &[K], path: &str) {
    let kids = c.tree().children_of(parent);
    let names: Vec<&str> = kids
        .iter()
        .map(|&i| c.tree().key(i).unwrap().name.as_str())
        .collect();
    let want: Vec<&str> = ks.iter().map(|k| k.name.as_str()).collect();
    // The builder numbers by position when no sequence is given; sort the expectation
    // the same way the format orders siblings (insertion sequence).
    let mut order: Vec<(u32, &K)> = ks
        .iter()
        .enumerate()
        .map(|(i, k)| (if k.ins == 0 { i as u32 + 1 } else { k.ins }, k))
        .collect();
    order.sort_by_key(|(s, _)| *s);
    let want_sorted: Vec<&str> = order.iter().map(|(_, k)| k.name.as_str()).collect();
    assert_eq!(
        names, want_sorted,
        "children of {path} (written order {want:?})"
    );
    for (&id, (seq, k)) in kids.iter().zip(order) {
        let got = c.tree().key(id).unwrap();
        assert_eq!(got.insertion, seq, "{path}/{}", k.name);
        assert!(got.checksum_ok, "{path}/{} checksum", k.name);
        let p = format!("{path}/{}", k.name);
        match (&k.v, &got.value) {
            (V::Int(a), Value::Int(b)) => assert_eq!(a, b, "{p}"),
            (V::UInt(a), Value::UInt(b)) => assert_eq!(a, b, "{p}"),
            (V::Double(a), Value::Double(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{p}"),
            (V::Bool(a), Value::Bool(b)) => assert_eq!(a, b, "{p}"),
            (V::Str(a), Value::String { text, lossy }) => {
                assert_eq!(a, text, "{p}");
                assert!(!lossy);
            }
            (V::Arr(a), Value::Array(d)) => {
                assert_eq!(&c.array_bytes(d, 1 << 24).unwrap(), a, "{p}");
                assert_eq!(
                    matches!(d, ArrayData::File(_)),
                    a.len() >= 2048 || k.force_file,
                    "{p} placement"
                );
            }
            (
                V::Node,
                Value::Node {
                    next_insertion,
                    change_sequence,
                },
            ) => {
                assert_eq!(*change_sequence, 0);
                assert_eq!(*next_insertion, order_max(&k.kids) + 1, "{p}");
            }
            (w, g) => panic!("{p}: wrote {w:?}, read {g:?}"),
        }
        same_tree(c, Some(id), &k.kids, &p);
    }
}

fn order_max(ks: &[K]) -> u32 {
    ks.iter()
        .enumerate()
        .map(|(i, k)| if k.ins == 0 { i as u32 + 1 } else { k.ins })
        .max()
        .unwrap_or(0)
}

fn guid(i: u32) -> String {
    format!("{{{i:08x}-1234-5678-9abc-def012345678}}")
}

/// A configuration-like tree: every type, repeated siblings, big values in file objects,
/// keys over three tables with parents in lower and higher tables, out-of-order
/// insertion sequences.
fn sample() -> Vec<K> {
    let metrics = K::node(
        "metrics",
        (0..3)
            .map(|i| {
                K::node(
                    "devicetype",
                    vec![
                        K::leaf("guid", V::Str(guid(i))).t(if i == 1 { 2 } else { 1 }),
                        K::node(
                            "deviceinstance",
                            (0..4)
                                .map(|j| K::leaf("metric", V::UInt(u64::from(i * 10 + j))))
                                .collect(),
                        ),
                    ],
                )
                .t(if i == 2 { 3 } else { 1 })
            })
            .collect(),
    );
    vec![K::node(
        "configuration",
        vec![
            K::node(
                "properties",
                vec![
                    K::leaf("name", V::Str("Test VM ünïcødé 🦀".into())),
                    K::leaf("global_id", V::Str(guid(7))),
                    K::leaf("version", V::Int(0x900)),
                    K::leaf(
                        "creation_time",
                        V::Arr(vec![0xa7, 0x6e, 0x45, 0x66, 0x9e, 0x97, 0xd7, 0x01]),
                    ),
                    K::leaf("empty", V::Str(String::new())),
                    K::leaf("empty_array", V::Arr(vec![])),
                    K::leaf("negative", V::Int(-5)),
                    K::leaf("big", V::UInt(u64::MAX)),
                    K::leaf("ratio", V::Double(0.25)),
                    K::leaf("nan", V::Double(f64::NAN)),
                    K::leaf("yes", V::Bool(true)),
                    K::leaf("no", V::Bool(false)),
                    K::leaf("slack", V::Int(9)).slack(17),
                ],
            )
            .ins(24),
            K::node(
                "settings",
                vec![
                    K::node(
                        "memory",
                        vec![K::node("bank", vec![K::leaf("size", V::Int(2048))])],
                    ),
                    K::node("processors", vec![K::leaf("count", V::Int(4))]),
                ],
            )
            .ins(25)
            .t(3),
            K::node(
                "_83f8638b-8dca-4152-9eda-2ca8b33039b4_",
                vec![K::node(
                    "controller0",
                    vec![K::node(
                        "drive0",
                        vec![
                            K::leaf("pathname", V::Str("C:\\VMs\\Test VM\\disk.vhdx".into())).t(2),
                            K::leaf("type", V::Str("VHD".into())),
                        ],
                    )],
                )],
            )
            .ins(21)
            .t(2),
            K::node(
                "_0b82b1a4-ffd3-4d8c-a36d-8e1f8e45d611_",
                vec![
                    K::leaf("friendly_name", V::Str("Network Adapter".into())),
                    K::leaf("MacAddress", V::Str("00155D010203".into())),
                    K::leaf("switch_id", V::Str(guid(3))),
                ],
            )
            .ins(22),
            K::node(
                "global_settings",
                vec![
                    K::leaf(
                        "data_root",
                        V::Str("C:\\ProgramData\\Microsoft\\Windows\\Hyper-V".into()),
                    ),
                    K::leaf("vmrs", V::Str("C:\\VMs\\Test VM\\state.vmrs".into())),
                    K::leaf("xml_blob", V::Str("<x>".repeat(700))),
                    K::leaf(
                        "big_array",
                        V::Arr((0..10_000u32).map(|x| (x * 7) as u8).collect()),
                    ),
                    K::leaf("small_in_file", V::Arr(vec![1, 2, 3])).in_file(),
                ],
            )
            .ins(2),
            metrics.ins(29),
            K::leaf("manifest", V::Int(1)).ins(30).t(2),
        ],
    )]
}

#[test]
fn every_type_and_duplicate_siblings_round_trip() {
    let roots = sample();
    for opts in [
        Opts::default(),
        Opts {
            free_entries: true,
            stale_copies: true,
            ..Opts::default()
        },
        Opts {
            per_table: 2,
            ..Opts::default()
        },
    ] {
        let b = build(&roots, &opts);
        let c = open(&b).unwrap();
        same_tree(&c, None, &roots, "");
        assert!(c.tree().orphans().is_empty());
        let r = rules(&c);
        assert!(
            !r.contains(&vmsnap_hyperv::rule::KEY_CHECKSUM)
                && !r.contains(&vmsnap_hyperv::rule::HEADER_CHECKSUM),
            "{r:?}"
        );
        // Duplicates are all kept: 3 devicetype, each with 4 metrics.
        assert_eq!(
            c.tree().get_all("/configuration/metrics/devicetype").len(),
            3
        );
        assert_eq!(
            c.tree()
                .get_all("/configuration/metrics/devicetype/deviceinstance/metric")
                .len(),
            12
        );
        if opts.stale_copies {
            assert!(c.tree().keys().iter().all(|k| k.name != "stale"));
            assert!(c.key_tables().iter().filter(|t| !t.active).count() == 3);
        }
        if opts.per_table == 2 {
            assert!(
                c.object_tables().len() > 2,
                "chained tables {:?}",
                c.object_tables()
            );
        }
    }
}

#[test]
fn header_sequence_wraps_and_bad_copy_falls_back() {
    let roots = sample();
    let c = open(&build(
        &roots,
        &Opts {
            seqs: [0xFFFF, 0x0000],
            ..Opts::default()
        },
    ))
    .unwrap();
    assert_eq!(c.header().copy, 1);
    let c = open(&build(
        &roots,
        &Opts {
            seqs: [0x0001, 0xFFFF],
            ..Opts::default()
        },
    ))
    .unwrap();
    assert_eq!(c.header().copy, 0);
    let c = open(&build(
        &roots,
        &Opts {
            seqs: [10, 11],
            ..Opts::default()
        },
    ))
    .unwrap();
    assert_eq!(c.header().copy, 1);
    // The newer copy is corrupt: the older one is used.
    let c = open(&build(
        &roots,
        &Opts {
            seqs: [10, 11],
            corrupt_header: Some(1),
            ..Opts::default()
        },
    ))
    .unwrap();
    assert_eq!(c.header().copy, 0);
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::HEADER_CHECKSUM));
    same_tree(&c, None, &roots, "");
    // Equal sequences: copy 0, with a finding.
    let c = open(&build(
        &roots,
        &Opts {
            seqs: [5, 5],
            ..Opts::default()
        },
    ))
    .unwrap();
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::HEADER_SEQUENCE));
    // Both bad: still read, marked unsafe.
    let mut b = build(&roots, &Opts::default());
    b.bytes[4] ^= 1;
    b.bytes[0x1004] ^= 1;
    let c = open(&b).unwrap();
    assert!(c.findings().any_unsafe());
    same_tree(&c, None, &roots, "");
}

#[test]
fn key_table_copies_by_sequence_with_wraparound() {
    let roots = sample();
    // Active copies have sequence 0, stale ones 0xFFFF: 0 is newer.
    let b = build(
        &roots,
        &Opts {
            table_seq: 0,
            stale_copies: true,
            ..Opts::default()
        },
    );
    let c = open(&b).unwrap();
    same_tree(&c, None, &roots, "");
    assert!(c.tree().keys().iter().all(|k| k.name != "stale"));
    // A corrupt header on the newest copy of table 1: the stale copy wins.
    let b = build(
        &roots,
        &Opts {
            stale_copies: true,
            corrupt_table_header: true,
            ..Opts::default()
        },
    );
    let c = open(&b).unwrap();
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::KEY_TABLE_CHECKSUM));
    assert!(c
        .tree()
        .keys()
        .iter()
        .any(|k| k.name == "stale" && k.table == 1));
}

/// The file ranges of key table 1 and of `big_array`'s file object in `plain`, the
/// ranges the replay-log tests rewrite.
fn table_1_and_big_array(plain: &Built) -> Vec<(u64, u64)> {
    let t1 = plain.table_offsets.iter().find(|t| t.0 == 1).unwrap();
    let fo = plain
        .placed
        .iter()
        .find(|p| p.path.ends_with("big_array"))
        .unwrap()
        .file_object
        .unwrap();
    vec![(t1.1, u64::from(t1.2)), (fo.0, u64::from(fo.1))]
}

#[test]
fn pending_replay_log_is_applied_in_memory() {
    let roots = sample();
    let plain = build(&roots, &Opts::default());
    let t1 = plain.table_offsets.iter().find(|t| t.0 == 1).unwrap();
    let log = LogOpts {
        pending: table_1_and_big_array(&plain),
        stale: 3,
        ..LogOpts::default()
    };
    let b = build(
        &roots,
        &Opts {
            log: Some(log.clone()),
            ..Opts::default()
        },
    );
    // Without the log the table is garbage.
    assert_eq!(&b.bytes[t1.1 as usize..t1.1 as usize + 4], &[0xA5; 4]);
    let c = open(&b).unwrap();
    assert_eq!(c.log().pending, 2);
    assert!(c.log().entries.iter().all(|e| e.applied));
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::REPLAY_LOG));
    same_tree(&c, None, &roots, "");
    // The container layer's bytes are the replayed file.
    let layer = vmsnap_hyperv::HyperVContainer::open(Arc::new(FileLayer::new(Arc::new(
        MemSource::new(b.bytes.clone()),
    ))))
    .unwrap();
    let mut buf = vec![0u8; t1.2 as usize];
    layer.read_at(t1.1, &mut buf).unwrap();
    assert_eq!(
        buf,
        plain.bytes[t1.1 as usize..(t1.1 + u64::from(t1.2)) as usize]
    );

    // A corrupt entry, corrupt data, data outside the log, a corrupt log header: not applied.
    for l in [
        LogOpts {
            corrupt_entry: Some(0),
            ..log.clone()
        },
        LogOpts {
            corrupt_data: Some(0),
            ..log.clone()
        },
        LogOpts {
            outside: true,
            ..log.clone()
        },
        LogOpts {
            corrupt_header: true,
            ..log.clone()
        },
    ] {
        let b = build(
            &roots,
            &Opts {
                log: Some(l.clone()),
                ..Opts::default()
            },
        );
        let c = open(&b).unwrap();
        let r = rules(&c);
        assert!(
            r.contains(&vmsnap_hyperv::rule::REPLAY_LOG)
                || r.contains(&vmsnap_hyperv::rule::REPLAY_LOG_CHECKSUM),
            "{l:?}: {r:?}"
        );
        assert!(!c.log().entries.first().is_some_and(|e| e.applied), "{l:?}");
        // Table 1 stays scrambled: its keys are gone.
        assert!(c.tree().get("/configuration/properties/name").is_none());
    }
}

#[test]
fn replay_log_entry_with_a_destination_outside_the_file_is_not_applied() {
    let roots = sample();
    let plain = build(&roots, &Opts::default());
    let t1 = *plain.table_offsets.iter().find(|t| t.0 == 1).unwrap();
    let pending = table_1_and_big_array(&plain);
    let fo = pending[1];
    let log = LogOpts {
        pending,
        ..LogOpts::default()
    };
    let len = build(
        &roots,
        &Opts {
            log: Some(log.clone()),
            ..Opts::default()
        },
    )
    .bytes
    .len() as u64;
    // Just past the end, straddling it, far past it, and overflowing u64.
    for dest in [len, len - 8, 1 << 40, u64::MAX - 8] {
        let b = build(
            &roots,
            &Opts {
                log: Some(LogOpts {
                    dest: Some(dest),
                    ..log.clone()
                }),
                ..Opts::default()
            },
        );
        assert_eq!(b.bytes.len() as u64, len);
        let c = open(&b).unwrap();
        let e = &c.log().entries[0];
        assert_eq!((e.dest, e.size), (dest, t1.2));
        assert!(e.entry_checksum_ok && !e.applied, "{dest:#x}: {e:?}");
        let want = format!(
            "pending replay log entry 0 not applied: its destination {dest:#x}+{:#x} lies outside the file",
            t1.2
        );
        let f = c.findings().to_vec();
        assert!(
            f.iter()
                .any(|f| f.rule == vmsnap_hyperv::rule::REPLAY_LOG && f.message == want),
            "{dest:#x}: {f:?}"
        );
        // The other entry is applied: its file object reads as written; table 1 was
        // only in the refused entry, so it stays scrambled.
        assert!(c.log().entries[1].applied);
        let mut buf = vec![0u8; fo.1 as usize];
        c.image().read_at(fo.0, &mut buf).unwrap();
        assert_eq!(buf, plain.bytes[fo.0 as usize..(fo.0 + fo.1) as usize]);
        assert!(f.iter().any(|f| f.message
            == "the file is dirty: 1 of 2 pending replay log entries applied in memory (the file is not modified)"));
        assert!(c.get("/configuration/properties/name").is_none());
    }
}

#[test]
fn object_entry_checksums_are_checked_from_version_3_1() {
    let roots = sample();
    // 3.1 fixed the object-table entry checksum: older files' entries are not checked.
    for (v, checked) in [
        (0x200u16, false),
        (0x300, false),
        (0x301, true),
        (0x400, true),
    ] {
        let c = open(&build(
            &roots,
            &Opts {
                version: v,
                corrupt_object_entry: true,
                ..Opts::default()
            },
        ))
        .unwrap();
        let bad: Vec<_> = c
            .findings()
            .to_vec()
            .into_iter()
            .filter(|f| f.rule == vmsnap_hyperv::rule::OBJECT_CHECKSUM)
            .collect();
        if checked {
            assert_eq!(bad.len(), 1, "{v:#x}: {bad:?}");
            assert_eq!(
                bad[0].message,
                "object table entry 0 checksum does not verify"
            );
            assert_eq!(bad[0].offset, Some(0x2008));
        } else {
            assert!(bad.is_empty(), "{v:#x}: {bad:?}");
        }
        // The entry's checksum status, and the tree either way.
        assert_eq!(c.objects()[0].checksum_ok, !checked, "{v:#x}");
        assert_eq!(c.objects()[0].offset, 0x3000);
        same_tree(&c, None, &roots, "");
    }
}

#[test]
fn unknown_key_types_are_kept_with_their_bytes() {
    let roots = vec![K::node(
        "configuration",
        vec![
            // Type 2 (dissect's "Unknown") and a type nobody lists.
            K::leaf("two", V::Raw(2, vec![1, 2, 3, 4, 5])),
            K::leaf("forty_two", V::Raw(42, vec![])),
            K::leaf("after", V::Int(7)),
        ],
    )];
    let b = build(&roots, &Opts::default());
    let c = open(&b).unwrap();
    let two = c.get("/configuration/two").unwrap();
    assert_eq!(
        two.value,
        Value::Unknown {
            kind: 2,
            raw: vec![1, 2, 3, 4, 5]
        }
    );
    assert!(two.checksum_ok);
    assert_eq!(two.kind, 2);
    let other = c.get("/configuration/forty_two").unwrap();
    assert_eq!(
        other.value,
        Value::Unknown {
            kind: 42,
            raw: vec![]
        }
    );
    assert_eq!(c.value("/configuration/after"), Some(&Value::Int(7)));
    let f = c.findings().to_vec();
    let msgs: Vec<&str> = f
        .iter()
        .filter(|f| f.rule == vmsnap_hyperv::rule::KEY_TYPE)
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(
        msgs,
        [
            r#"key "two" has unknown type 2"#,
            r#"key "forty_two" has unknown type 42"#
        ]
    );
    // meta shows them with their type byte and bytes.
    let m = c.tree_json();
    let kids = &m["keys"][0]["children"];
    assert_eq!(kids[0]["name"], "two");
    assert_eq!(kids[0]["type"], "unknown");
    assert_eq!(kids[0]["kind"], 2);
    assert_eq!(kids[0]["value"], "0102030405");
    assert_eq!(kids[1]["kind"], 42);
    assert_eq!(kids[1]["value"], "");
}

#[test]
fn file_objects_without_the_object_flag_read_the_same() {
    // openvmm's writer leaves the flags byte of file-object entries 0; vmsnap does not
    // depend on it (dissect skips such objects).
    let roots = sample();
    for flags in [0u8, 1] {
        let b = build(
            &roots,
            &Opts {
                file_object_flags: flags,
                ..Opts::default()
            },
        );
        let c = open(&b).unwrap();
        let files: Vec<u8> = c
            .objects()
            .iter()
            .filter(|o| o.kind == 3)
            .map(|o| o.flags)
            .collect();
        assert_eq!(files, [flags; 3]);
        assert!(
            !rules(&c).contains(&vmsnap_hyperv::rule::FILE_OBJECT),
            "{:?}",
            rules(&c)
        );
        same_tree(&c, None, &roots, "");
    }
}

#[test]
fn older_versions_read_or_refused_clearly() {
    let roots = sample();
    for v in [0x300u16, 0x301, 0x200] {
        let c = open(&build(
            &roots,
            &Opts {
                version: v,
                ..Opts::default()
            },
        ))
        .unwrap();
        assert!(rules(&c).contains(&vmsnap_hyperv::rule::FORMAT_VERSION));
        same_tree(&c, None, &roots, "");
    }
    for v in [0x100u16, 0x101, 0x500, 0] {
        let e = open(&build(
            &roots,
            &Opts {
                version: v,
                ..Opts::default()
            },
        ))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{v:#x}: {e}");
        assert!(e.to_string().contains("version"), "{e}");
    }
}

#[test]
fn checksum_mismatches_are_findings_and_values_still_shown() {
    let mut roots = sample();
    roots[0].kids[0].kids[2] = K::leaf("version", V::Int(0x900)).bad_crc();
    let b = build(
        &roots,
        &Opts {
            corrupt_object_entry: true,
            ..Opts::default()
        },
    );
    let c = open(&b).unwrap();
    let r = rules(&c);
    assert!(r.contains(&vmsnap_hyperv::rule::KEY_CHECKSUM), "{r:?}");
    assert!(r.contains(&vmsnap_hyperv::rule::OBJECT_CHECKSUM), "{r:?}");
    let k = c.get("/configuration/properties/version").unwrap();
    assert!(!k.checksum_ok);
    assert_eq!(k.value, Value::Int(0x900));
    let meta = c.tree_json().to_string();
    assert!(meta.contains(r#""checksum":"mismatch""#));
}

#[test]
fn meta_describe_and_external_refs() {
    let b = build(&sample(), &Opts::default());
    let layer = vmsnap_hyperv::HyperVContainer::open(Arc::new(FileLayer::new(Arc::new(
        MemSource::new(b.bytes.clone()),
    ))))
    .unwrap();
    let d = layer.describe();
    assert_eq!(d["format"], "hyperv-vmcx");
    assert_eq!(d["virtual_size"], b.bytes.len() as u64);
    assert_eq!(d["vm"]["name"], "Test VM ünïcødé 🦀");
    assert_eq!(d["vm"]["id"], guid(7));
    assert_eq!(d["vm"]["config_version"], "9.0");
    assert_eq!(d["vm"]["memory_mb"], 2048);
    assert_eq!(d["vm"]["processors"], 4);
    assert_eq!(d["vm"]["disks"][0]["path"], "C:\\VMs\\Test VM\\disk.vhdx");
    assert_eq!(
        d["vm"]["disks"][0]["key"],
        "/configuration/_83f8638b-8dca-4152-9eda-2ca8b33039b4_/controller0/drive0/pathname"
    );
    assert_eq!(
        d["vm"]["network_adapters"][0]["mac_address"],
        "00155D010203"
    );
    assert_eq!(
        d["vm"]["state_files"][0]["path"],
        "C:\\VMs\\Test VM\\state.vmrs"
    );
    let refs = layer.external_refs();
    let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"C:\\VMs\\Test VM\\disk.vhdx"));
    assert!(names.contains(&"C:\\VMs\\Test VM\\state.vmrs"));
    assert!(names.contains(&"C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"));
    assert!(refs
        .iter()
        .all(|r| r.kind == RefKind::Configured && r.decision == RefDecision::Listed));
    // meta: the whole tree with types, repeated names in insertion order.
    let m = layer.meta();
    let conf = &m["tree"]["keys"][0];
    assert_eq!(conf["name"], "configuration");
    let kids: Vec<&str> = conf["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [
            "global_settings",
            "_83f8638b-8dca-4152-9eda-2ca8b33039b4_",
            "_0b82b1a4-ffd3-4d8c-a36d-8e1f8e45d611_",
            "properties",
            "settings",
            "metrics",
            "manifest"
        ]
    );
    let metrics = &conf["children"][5]["children"];
    assert_eq!(metrics.as_array().unwrap().len(), 3);
    assert_eq!(metrics[1]["children"][0]["value"], guid(1));
    assert_eq!(metrics[1]["children"][0]["table"], 2);
    let props = &conf["children"][3]["children"];
    assert_eq!(props[3]["type"], "array");
    assert_eq!(props[3]["value"], "a76e45669e97d701");
    assert_eq!(props[8]["type"], "double");
    assert_eq!(props[10]["value"], true);
    assert_eq!(
        m["structure"]["keys"],
        layer.container().tree().keys().len()
    );
    assert!(layer.children().is_empty());
}

#[test]
fn probes() {
    let b = build(&sample(), &Opts::default());
    let w = SniffWindow::of_whole(&b.bytes);
    assert!((PLUGIN.probe)(&w).is_yes());
    assert!(!(RAM_PLUGIN.probe)(&w).is_yes());
    let w2 = SniffWindow {
        layer: "hyperv-vmcx",
        space: vmsnap_core::AddressSpace::Metadata,
        ..w
    };
    assert!(!PLUGIN.recognises(&w2).is_yes());
    // A configuration has no RAM keys: conclusive when the window covers the file.
    assert!(!(RAM_PLUGIN.probe)(&w2).is_yes());
    let zeros = vec![0u8; 0x4000];
    assert!(!(PLUGIN.probe)(&SniffWindow::of_bytes(&zeros, &zeros, 0x4000)).is_yes());
}

//! Hostile containers: bad CRCs, parent cycles, parents outside tables, file-object
//! pointers past EOF, overflowing counts, a replay log outside the file, truncation.
//! Each gives its expected finding or error kind, never a panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::builder::{build, Opts, K, V};
use vmsnap_core::{ErrorKind, FileLayer, Layer, MemSource};
use vmsnap_hyperv::{Container, HyperVContainer, Value};

fn open(bytes: &[u8]) -> vmsnap_core::Result<Container> {
    Container::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(
        bytes.to_vec(),
    )))))
}

fn rules(c: &Container) -> Vec<&'static str> {
    c.findings.to_vec().iter().map(|f| f.rule).collect()
}

fn tree() -> Vec<K> {
    vec![K::node(
        "configuration",
        vec![
            K::node("a", vec![K::node("b", vec![K::leaf("c", V::Int(1))])]),
            K::leaf("blob", V::Arr(vec![7u8; 5000])),
            K::leaf("n", V::Int(3)),
        ],
    )]
}

/// Recomputes the checksum of the entry at `at` (header + name + `vlen` value bytes).
fn fix_crc(f: &mut [u8], at: usize, vlen: usize) {
    let name_len = f[at + 20] as usize;
    let end = at + 21 + name_len + vlen;
    let mut v = f[at..end].to_vec();
    v[12..16].fill(0);
    let crc = crc32fast::hash(&v);
    f[at + 12..at + 16].copy_from_slice(&crc.to_le_bytes());
}

fn fix_file_header(f: &mut [u8]) {
    for base in [0usize, 0x1000] {
        let mut h = f[base..base + 0x2E].to_vec();
        h[4..8].fill(0);
        let crc = crc32fast::hash(&h);
        f[base + 4..base + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

#[test]
fn parent_cycle_is_detected() {
    let b = build(&tree(), &Opts::default());
    let mut f = b.bytes.clone();
    let a = b
        .placed
        .iter()
        .find(|p| p.path == "/configuration/a")
        .unwrap();
    let bb = b
        .placed
        .iter()
        .find(|p| p.path == "/configuration/a/b")
        .unwrap();
    // a's parent becomes b: a -> b -> a.
    let at = a.file_offset as usize;
    f[at + 6..at + 8].copy_from_slice(&bb.table.to_le_bytes());
    f[at + 8..at + 12].copy_from_slice(&bb.offset.to_le_bytes());
    fix_crc(&mut f, at, 12);
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&"key_parent_cycle"), "{:?}", rules(&c));
    assert!(c.tree.get("/configuration/a").is_none());
    assert_eq!(c.tree.orphans.len(), 3); // a, b and c
    assert!(c.get("/configuration/n").is_some());
    let m = c.tree_json();
    assert_eq!(m["orphans"].as_array().unwrap().len(), 3);
    // A self-parent.
    let mut f = b.bytes.clone();
    f[at + 6..at + 8].copy_from_slice(&a.table.to_le_bytes());
    f[at + 8..at + 12].copy_from_slice(&a.offset.to_le_bytes());
    fix_crc(&mut f, at, 12);
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&"key_parent_cycle"));
}

#[test]
fn parents_outside_tables_are_orphans() {
    let b = build(&tree(), &Opts::default());
    let n = b
        .placed
        .iter()
        .find(|p| p.path == "/configuration/n")
        .unwrap();
    for (table, offset) in [
        (1u16, 0x00FF_FFFFu32),
        (9, 10),
        (1, 3),
        (u16::MAX, u32::MAX),
    ] {
        let mut f = b.bytes.clone();
        let at = n.file_offset as usize;
        f[at + 6..at + 8].copy_from_slice(&table.to_le_bytes());
        f[at + 8..at + 12].copy_from_slice(&offset.to_le_bytes());
        fix_crc(&mut f, at, 8);
        let c = open(&f).unwrap();
        assert!(rules(&c).contains(&"key_parent"), "{table} {offset:#x}");
        assert!(c.get("/configuration/n").is_none());
    }
    // Parent that is not a node.
    let mut f = b.bytes.clone();
    let c_key = b
        .placed
        .iter()
        .find(|p| p.path == "/configuration/a/b/c")
        .unwrap();
    let at = n.file_offset as usize;
    f[at + 8..at + 12].copy_from_slice(&c_key.offset.to_le_bytes());
    fix_crc(&mut f, at, 8);
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&"key_parent"));
}

#[test]
fn file_object_pointer_past_eof() {
    let b = build(&tree(), &Opts::default());
    let blob = b
        .placed
        .iter()
        .find(|p| p.path == "/configuration/blob")
        .unwrap();
    for off in [
        b.bytes.len() as u64,
        u64::MAX - 2,
        b.bytes.len() as u64 - 100,
    ] {
        let mut f = b.bytes.clone();
        let at = blob.file_offset as usize;
        let vo = at + 21 + f[at + 20] as usize + 4;
        f[vo..vo + 8].copy_from_slice(&off.to_le_bytes());
        fix_crc(&mut f, at, 12);
        let c = open(&f).unwrap();
        let k = c.get("/configuration/blob").unwrap();
        assert!(
            matches!(k.value, Value::Unreadable(_)),
            "{off:#x}: {:?}",
            k.value
        );
        assert!(rules(&c).contains(&"key_value"));
        assert!(k.checksum_ok);
    }
    // Inside the file but not in a file object of the object table.
    let mut f = b.bytes.clone();
    let at = blob.file_offset as usize;
    let vo = at + 21 + f[at + 20] as usize + 4;
    f[vo..vo + 8].copy_from_slice(&0x100u64.to_le_bytes());
    fix_crc(&mut f, at, 12);
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&"file_object"));
}

#[test]
fn overflowing_counts_and_sizes() {
    let b = build(&tree(), &Opts::default());
    // Object table entry count.
    let mut f = b.bytes.clone();
    f[0x2004..0x2008].copy_from_slice(&u32::MAX.to_le_bytes());
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&"object_table"));
    assert!(c.get("/configuration/n").is_some());
    // Key entry size.
    let mut f = b.bytes.clone();
    let a = b
        .placed
        .iter()
        .find(|p| p.path == "/configuration/a")
        .unwrap();
    let at = a.file_offset as usize;
    f[at + 2..at + 6].copy_from_slice(&u32::MAX.to_le_bytes());
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&"key_entry"));
    // Name length past the entry, string length past the entry.
    let mut f = b.bytes.clone();
    f[at + 20] = 255;
    let _ = open(&f).unwrap();
    // Key table object with a huge size / offset.
    let mut f = b.bytes.clone();
    let e = 0x2008;
    f[e + 5..e + 13].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
    f[e + 13..e + 17].copy_from_slice(&u32::MAX.to_le_bytes());
    let c = open(&f).unwrap();
    let r = rules(&c);
    assert!(
        r.contains(&"object_checksum") && r.contains(&"key_table"),
        "{r:?}"
    );
}

#[test]
fn replay_log_outside_the_file_and_huge_counts() {
    let b = build(&tree(), &Opts::default());
    for (off, size) in [
        (b.bytes.len() as u64, 0x1000u64),
        (u64::MAX - 5, 0x1000),
        (0x3000, u64::MAX),
    ] {
        let mut f = b.bytes.clone();
        for base in [0usize, 0x1000] {
            f[base + 0x1A..base + 0x22].copy_from_slice(&off.to_le_bytes());
            f[base + 0x22..base + 0x2A].copy_from_slice(&size.to_le_bytes());
        }
        fix_file_header(&mut f);
        let c = open(&f).unwrap();
        assert!(rules(&c).contains(&"replay_log"), "{off:#x}");
        assert!(c.get("/configuration/n").is_some());
    }
    // A valid log header claiming u32::MAX pending entries.
    let log = common::builder::LogOpts {
        pending: vec![(0x3000, 16)],
        ..Default::default()
    };
    let b = build(
        &tree(),
        &Opts {
            log: Some(log),
            ..Opts::default()
        },
    );
    let mut f = b.bytes.clone();
    let l = b.log_offset as usize;
    f[l + 8..l + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut h = f[l..l + 34].to_vec();
    h[4..8].fill(0);
    let crc = crc32fast::hash(&h);
    f[l + 4..l + 8].copy_from_slice(&crc.to_le_bytes());
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&"replay_log"));
    assert!(c.findings.any_unsafe());
}

#[test]
fn truncated_and_garbage_files() {
    let b = build(&tree(), &Opts::default());
    assert_eq!(
        open(&b.bytes[..0x20]).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    assert_eq!(
        open(&b.bytes[..0x100]).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    assert_eq!(
        open(&b.bytes[..0x2100]).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    assert_eq!(
        open(&vec![0u8; 0x8000]).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // Every truncation point: an error or a partial tree, never a panic.
    for cut in (0..b.bytes.len()).step_by(4099) {
        let _ = open(&b.bytes[..cut]);
    }
    // Flip bytes all over the key tables.
    for i in (0x3000..b.bytes.len().min(0x5000)).step_by(61) {
        let mut f = b.bytes.clone();
        f[i] ^= 0x5A;
        if let Ok(c) = open(&f) {
            let _ = c.tree_json().to_string();
        }
        let layer = HyperVContainer::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(f)))));
        if let Ok(l) = layer {
            let _ = l.describe().to_string();
            let _ = l.meta().to_string();
        }
    }
}

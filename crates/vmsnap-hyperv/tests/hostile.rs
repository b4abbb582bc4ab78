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
    c.findings().to_vec().iter().map(|f| f.rule).collect()
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
    assert!(
        rules(&c).contains(&vmsnap_hyperv::rule::KEY_PARENT_CYCLE),
        "{:?}",
        rules(&c)
    );
    assert!(c.tree().get("/configuration/a").is_none());
    assert_eq!(c.tree().orphans().len(), 3); // a, b and c
    assert!(c.get("/configuration/n").is_some());
    let m = c.tree_json();
    assert_eq!(m["orphans"].as_array().unwrap().len(), 3);
    // A self-parent.
    let mut f = b.bytes.clone();
    f[at + 6..at + 8].copy_from_slice(&a.table.to_le_bytes());
    f[at + 8..at + 12].copy_from_slice(&a.offset.to_le_bytes());
    fix_crc(&mut f, at, 12);
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::KEY_PARENT_CYCLE));
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
        assert!(
            rules(&c).contains(&vmsnap_hyperv::rule::KEY_PARENT),
            "{table} {offset:#x}"
        );
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
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::KEY_PARENT));
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
        assert!(rules(&c).contains(&vmsnap_hyperv::rule::KEY_VALUE));
        assert!(k.checksum_ok);
    }
    // Inside the file but not in a file object of the object table.
    let mut f = b.bytes.clone();
    let at = blob.file_offset as usize;
    let vo = at + 21 + f[at + 20] as usize + 4;
    f[vo..vo + 8].copy_from_slice(&0x100u64.to_le_bytes());
    fix_crc(&mut f, at, 12);
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::FILE_OBJECT));
}

#[test]
fn overflowing_counts_and_sizes() {
    let b = build(&tree(), &Opts::default());
    // Object table entry count.
    let mut f = b.bytes.clone();
    f[0x2004..0x2008].copy_from_slice(&u32::MAX.to_le_bytes());
    let c = open(&f).unwrap();
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::OBJECT_TABLE));
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
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::KEY_ENTRY));
    // Name length past the entry: the key is kept, unreadable, and its children are
    // orphans; the rest of the table still reads.
    let mut f = b.bytes.clone();
    f[at + 20] = 255;
    let c = open(&f).unwrap();
    let bad = c
        .tree()
        .keys()
        .iter()
        .find(|k| k.file_offset == a.file_offset)
        .unwrap();
    assert_eq!(
        bad.value,
        Value::Unreadable("name of 255 bytes runs past the entry".into())
    );
    assert!(bad.name.is_empty() && !bad.checksum_ok);
    assert!(c
        .findings()
        .to_vec()
        .iter()
        .any(|f| f.rule == vmsnap_hyperv::rule::KEY_ENTRY
            && f.message == "key name runs past its entry"
            && f.offset == Some(a.file_offset)));
    assert!(c.get("/configuration/a/b").is_none());
    assert_eq!(c.value("/configuration/n"), Some(&Value::Int(3)));
    // Key table object with a huge size / offset.
    let mut f = b.bytes.clone();
    let e = 0x2008;
    f[e + 5..e + 13].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
    f[e + 13..e + 17].copy_from_slice(&u32::MAX.to_le_bytes());
    let c = open(&f).unwrap();
    let r = rules(&c);
    assert!(
        r.contains(&vmsnap_hyperv::rule::OBJECT_CHECKSUM)
            && r.contains(&vmsnap_hyperv::rule::KEY_TABLE),
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
        assert!(
            rules(&c).contains(&vmsnap_hyperv::rule::REPLAY_LOG),
            "{off:#x}"
        );
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
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::REPLAY_LOG));
    assert!(c.findings().any_unsafe());
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

/// Points the file-object pointer of the key at `at` at `(offset, size)`.
fn repoint(f: &mut [u8], at: usize, offset: u64, size: u32) {
    let vo = at + 21 + f[at + 20] as usize;
    f[vo..vo + 4].copy_from_slice(&size.to_le_bytes());
    f[vo + 4..vo + 12].copy_from_slice(&offset.to_le_bytes());
    fix_crc(f, at, 12);
}

/// UTF-16LE of `s`.
fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The audit's case, scaled down: many keys naming one large file-object string (the
/// same bytes, or overlapping slices of them, so de-duplicating identical pointers would
/// not be enough). Decoding stays within the file's size; the strings past the budget
/// are kept, deferred, readable on demand, with an unsafe finding; those within it are
/// decoded as before.
#[test]
fn many_keys_naming_one_file_object_string() {
    let big: String = (0..256 << 10)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect(); // 512 KiB stored
    let other = "Ω".repeat(1500); // 3000 bytes stored: a file object of its own
    let n = 64usize;
    let mut kids = vec![
        K::leaf("big", V::Str(big.clone())),
        K::leaf("other", V::Str(other.clone())),
    ];
    for i in 0..n {
        kids.push(K::leaf(&format!("s{i}"), V::Str("x".into())).in_file());
    }
    let b = build(&[K::node("configuration", kids)], &Opts::default());
    let place = |p: &str| b.placed.iter().find(|x| x.path == p).unwrap();
    let (bo, bs) = place("/configuration/big").file_object.unwrap();
    let mut f = b.bytes.clone();
    // Even keys: the whole string; odd keys: a slice starting `i` characters in.
    let want = |i: usize| -> (u64, u32, &str) {
        let skip = if i.is_multiple_of(2) { 0 } else { i };
        (bo + 2 * skip as u64, bs - 2 * skip as u32, &big[skip..])
    };
    for i in 0..n {
        let (o, s, _) = want(i);
        repoint(
            &mut f,
            place(&format!("/configuration/s{i}")).file_offset as usize,
            o,
            s,
        );
    }
    let file_len = f.len() as u64;
    assert!(
        file_len < 2 * u64::from(bs),
        "the test needs a second copy to overflow"
    );
    let c = open(&f).unwrap();
    let st = c.strings();
    assert_eq!(st.budget, file_len);
    assert_eq!((st.decoded, st.deferred), (2, n as u64), "{st:?}");
    assert_eq!(st.decoded_bytes, u64::from(bs) + 3000);
    assert!(st.decoded_bytes <= st.budget);
    let sum: u64 = (0..n).map(|i| u64::from(want(i).1)).sum();
    assert_eq!(st.deferred_bytes, sum);
    // Within the budget: decoded as before.
    assert_eq!(
        c.value("/configuration/big").unwrap().as_str(),
        Some(big.as_str())
    );
    assert_eq!(
        c.value("/configuration/other").unwrap().as_str(),
        Some(other.as_str())
    );
    // Past it: kept by reference, exact, and readable on demand.
    for i in 0..n {
        let k = c.get(&format!("/configuration/s{i}")).unwrap();
        let (o, s, text) = want(i);
        let Value::DeferredString(at) = k.value else {
            panic!("s{i}: {:?}", k.value)
        };
        assert_eq!((at.offset, at.size), (o, s));
        assert_eq!(k.value.type_name(), "string");
        assert!(k.checksum_ok);
        let (got, lossy) = c.read_string(at, u64::from(bs)).unwrap();
        assert!(!lossy && got == text, "s{i}");
    }
    let found: Vec<_> = c
        .findings()
        .to_vec()
        .into_iter()
        .filter(|f| f.rule == vmsnap_hyperv::rule::FILE_OBJECT_STRINGS)
        .collect();
    assert_eq!(found.len(), 1, "one finding, not one per key");
    assert_eq!(found[0].severity, vmsnap_core::Severity::Unsafe);
    assert_eq!(
        found[0].offset,
        Some(place("/configuration/s0").file_offset)
    );
    // meta: type, pointer and the deferral shown; no text.
    let m = c.tree_json();
    let kids = m["keys"][0]["children"].as_array().unwrap();
    assert_eq!(kids[0]["value"].as_str().unwrap().len(), big.len());
    let s1 = &kids[3];
    assert_eq!(s1["name"], "s1");
    assert_eq!(s1["type"], "string");
    assert!(s1["value"].is_null());
    assert_eq!(s1["deferred"], true);
    assert_eq!(s1["file_object"]["offset"], want(1).0);
    assert!(kids[0].get("deferred").is_none());
    assert!(m.to_string().len() < 2 * file_len as usize);
    // The layer opens too, with the finding.
    let layer =
        HyperVContainer::open(Arc::new(FileLayer::new(Arc::new(MemSource::new(f))))).unwrap();
    assert!(layer
        .findings()
        .iter()
        .any(|f| f.rule == vmsnap_hyperv::rule::FILE_OBJECT_STRINGS));
    assert_eq!(
        layer.meta()["structure"]["file_object_strings"]["deferred"],
        n as u64
    );

    // Under the budget, keys sharing one string are all decoded, and no finding is made.
    let shared = "path-like but not: ".repeat(60); // 2280 bytes stored
    let mut kids = vec![K::leaf("shared", V::Str(shared.clone()))];
    for i in 0..4 {
        kids.push(K::leaf(&format!("s{i}"), V::Str("x".into())).in_file());
    }
    let b = build(&[K::node("configuration", kids)], &Opts::default());
    let place = |p: &str| b.placed.iter().find(|x| x.path == p).unwrap();
    let (so, ss) = place("/configuration/shared").file_object.unwrap();
    let mut f = b.bytes.clone();
    for i in 0..4 {
        repoint(
            &mut f,
            place(&format!("/configuration/s{i}")).file_offset as usize,
            so,
            ss,
        );
    }
    let c = open(&f).unwrap();
    assert_eq!((c.strings().decoded, c.strings().deferred), (5, 0));
    for p in ["shared", "s0", "s1", "s2", "s3"] {
        let v = c.value(&format!("/configuration/{p}")).unwrap();
        assert_eq!(v.as_str(), Some(shared.as_str()), "{p}");
    }
    assert!(!rules(&c).contains(&vmsnap_hyperv::rule::FILE_OBJECT_STRINGS));
    assert_eq!(utf16le(&shared).len(), ss as usize);
}

/// Keys all naming one file-object array small enough to show: `meta()` shows the bytes
/// while they stay within the file's size, then marks the rest deferred.
#[test]
fn many_keys_naming_one_file_object_array_in_meta() {
    let data: Vec<u8> = (0..60u32 << 10).map(|i| (i * 7) as u8).collect();
    let n = 200usize;
    let mut kids = vec![K::leaf("arr", V::Arr(data.clone()))];
    for i in 0..n {
        kids.push(K::leaf(&format!("a{i}"), V::Arr(vec![1])).in_file());
    }
    let b = build(&[K::node("configuration", kids)], &Opts::default());
    let place = |p: &str| b.placed.iter().find(|x| x.path == p).unwrap();
    let (ao, asz) = place("/configuration/arr").file_object.unwrap();
    let mut f = b.bytes.clone();
    for i in 0..n {
        repoint(
            &mut f,
            place(&format!("/configuration/a{i}")).file_offset as usize,
            ao,
            asz,
        );
    }
    let file_len = f.len() as u64;
    let c = open(&f).unwrap();
    let m = c.tree_json();
    let kids = m["keys"][0]["children"].as_array().unwrap();
    assert_eq!(kids.len(), n + 1);
    let hex = vmsnap_hyperv::hex(&data);
    let shown = kids.iter().filter(|k| k["value"] == hex.as_str()).count();
    let deferred = kids
        .iter()
        .filter(|k| k["value"].is_null() && k["deferred"] == true)
        .count();
    assert_eq!(shown + deferred, n + 1);
    assert_eq!(
        shown as u64,
        file_len / u64::from(asz),
        "as many as the file holds"
    );
    assert!(deferred > n / 2);
    // Every key still names its bytes, and reading them is unchanged.
    for k in kids {
        assert_eq!(k["size"], u64::from(asz));
        assert_eq!(k["file_object"]["offset"], ao);
    }
    let Value::Array(a) = &c.get("/configuration/a150").unwrap().value else {
        panic!()
    };
    assert_eq!(c.array_bytes(a, 1 << 20).unwrap(), data);
}

/// Object entries naming the key table again, or overlapping slices of it: the same
/// offset is read once, and the key table bytes read stay within the file's size.
#[test]
fn key_tables_listed_many_times() {
    let b = build(&tree(), &Opts::default());
    let (_, kt, kt_size) = b.table_offsets[0];
    // Slots in use: the key tables, then the file objects.
    let used = b.table_offsets.len() + b.placed.iter().filter(|p| p.file_object.is_some()).count();
    let entry = |slot: usize| 0x2008 + slot * 18;
    let write = |f: &mut [u8], slot: usize, offset: u64| {
        let e = entry(slot);
        f[e] = 2;
        f[e + 5..e + 13].copy_from_slice(&offset.to_le_bytes());
        f[e + 13..e + 17].copy_from_slice(&kt_size.to_le_bytes());
        f[e + 17] = 1;
        let mut v = f[e..e + 18].to_vec();
        v[1..5].fill(0);
        let crc = crc32fast::hash(&v);
        f[e + 1..e + 5].copy_from_slice(&crc.to_le_bytes());
    };
    // The same table listed 100 times more: read once, one warning each.
    let mut f = b.bytes.clone();
    for slot in used..used + 100 {
        write(&mut f, slot, kt);
    }
    let c = open(&f).unwrap();
    assert_eq!(c.key_tables().len(), 1);
    assert!(c.get("/configuration/n").is_some());
    assert!(rules(&c).contains(&vmsnap_hyperv::rule::KEY_TABLE));
    // Slices of it at 100 offsets: more key table bytes than the file has.
    let mut f = b.bytes.clone();
    for (i, slot) in (used..used + 100).enumerate() {
        write(&mut f, slot, kt + 8 * i as u64);
    }
    assert!(100 * u64::from(kt_size) > f.len() as u64);
    let e = open(&f).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert!(e.to_string().contains("file's size"), "{e}");
}

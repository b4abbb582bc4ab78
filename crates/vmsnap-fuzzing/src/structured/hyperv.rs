//! Hyper-V storage containers (.vmcx/.vmrs), structure-aware: a key tree (names, typed
//! values, tables, insertion order, values stored in file objects, bad entry checksums)
//! written by the independent writer of `vmsnap-hyperv`'s tests with its headers, object
//! table and per-entry CRC-32s, then patched inside the header area or a key table.

use arbitrary::Arbitrary;
use vmsnap_core::{ExternalPolicy, Sniff};
use vmsnap_hyperv::{PLUGIN, RAM_PLUGIN};

use super::{apply, description, Patch};
use crate::hyperv_common::builder::{build, Opts, K, V};

#[derive(Arbitrary, Debug)]
enum Value {
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(String),
    Arr(Vec<u8>),
    Bool(bool),
    Raw(u8, Vec<u8>),
    Node(Vec<Key>),
}

#[derive(Arbitrary, Debug)]
struct Key {
    name: String,
    value: Value,
    table: u8,
    ins: u8,
    slack: u8,
    bad_crc: bool,
    in_file: bool,
}

#[derive(Arbitrary, Debug)]
struct Desc {
    keys: Vec<Key>,
    version_new: bool,
    seqs: [u16; 2],
    corrupt_header: Option<bool>,
    table_seq: u16,
    stale_copies: bool,
    free_entries: bool,
    per_table: u8,
    corrupt_object_entry: bool,
    corrupt_table_header: bool,
    file_object_flags: u8,
    patches: Vec<Patch>,
}

/// Keys at most three deep, 32 in all, with bounded names and values.
fn keys(from: &[Key], depth: usize, budget: &mut usize) -> Vec<K> {
    let mut out = Vec::new();
    for k in from {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let name: String = k
            .name
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '/')
            .take(40)
            .collect();
        let bytes = |b: &Vec<u8>| b.iter().copied().take(8192).collect::<Vec<u8>>();
        let mut key = match &k.value {
            Value::Node(kids) if depth < 3 => K::node(&name, keys(kids, depth + 1, budget)),
            Value::Node(_) => K::node(&name, Vec::new()),
            Value::Int(x) => K::leaf(&name, V::Int(*x)),
            Value::UInt(x) => K::leaf(&name, V::UInt(*x)),
            Value::Double(x) => K::leaf(&name, V::Double(*x)),
            Value::Str(s) => K::leaf(&name, V::Str(s.chars().take(4096).collect())),
            Value::Arr(b) => K::leaf(&name, V::Arr(bytes(b))),
            Value::Bool(b) => K::leaf(&name, V::Bool(*b)),
            Value::Raw(t, b) => K::leaf(&name, V::Raw(*t, bytes(b))),
        };
        key = key
            .t(u16::from(k.table % 3) + 1)
            .ins(u32::from(k.ins))
            .slack(usize::from(k.slack % 32));
        if k.bad_crc {
            key = key.bad_crc();
        }
        if k.in_file && matches!(k.value, Value::Str(_) | Value::Arr(_)) {
            key = key.in_file();
        }
        out.push(key);
    }
    out
}

fn file(d: &Desc) -> Vec<u8> {
    let mut budget = 32;
    let tree = keys(&d.keys, 0, &mut budget);
    let opts = Opts {
        version: if d.version_new { 0x400 } else { 0x300 },
        seqs: d.seqs,
        corrupt_header: d.corrupt_header.map(usize::from),
        table_seq: d.table_seq,
        stale_copies: d.stale_copies,
        free_entries: d.free_entries,
        per_table: 1 + usize::from(d.per_table) % 226,
        corrupt_object_entry: d.corrupt_object_entry,
        corrupt_table_header: d.corrupt_table_header,
        file_object_flags: d.file_object_flags,
        ..Opts::default()
    };
    let built = build(&tree, &opts);
    let mut f = built.bytes;
    let mut regions = vec![(0usize, 0x3000usize.min(f.len()))];
    regions.extend(
        built
            .table_offsets
            .iter()
            .map(|&(_, at, len)| (at as usize, len as usize)),
    );
    apply(&mut f, &regions, &d.patches);
    f
}

/// The `hyperv_container` target: a built container (structured mode) or the input
/// itself, opened through `hyperv-vmcx` (and `hyperv-vmrs-ram` stacked on it when that
/// accepts), then every read, extent, the key tree, findings and children exercised.
pub fn run(data: &[u8]) {
    let built;
    let data = match description::<Desc>(data) {
        Some(d) => {
            built = file(&d);
            &built[..]
        }
        None => data,
    };
    let _ = (PLUGIN.probe)(&crate::window(data));
    let Some(layer) = crate::open(
        &PLUGIN,
        &[&RAM_PLUGIN],
        crate::file(data),
        ExternalPolicy::Deny,
    ) else {
        return;
    };
    vmsnap_testkit::exercise(&layer, 64 << 20);
    if let Ok(s) = Sniff::read(layer.as_ref()) {
        if (RAM_PLUGIN.probe)(&s.window(layer.as_ref())).is_yes() {
            if let Some(ram) = crate::open(&RAM_PLUGIN, &[&PLUGIN], layer, ExternalPolicy::Deny) {
                vmsnap_testkit::exercise(&ram, 64 << 20);
            }
        }
    }
}

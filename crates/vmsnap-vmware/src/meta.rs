//! JSON views: `describe()` (the summary `vmsnap info` shows) and the lossless tree of
//! every group and tag (`vmsnap meta`, like Volatility 2's `vmwareinfo`).

use serde_json::{json, Map, Value as Json};
use vmsnap_core::{CpuState, Layer, LayerExt};

use crate::checkpoint::Checkpoint;
use crate::compress;
use crate::layer::{Entry, MemorySource, Vmware};
use crate::raw::{magic_name, MAX_META_BLOCK, META_BLOCK_HEAD, PAGE_SIZE};
use crate::tag::{Tag, Value};

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from_digit(u32::from(x >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(x & 15), 16).unwrap_or('0'));
    }
    s
}

fn text_of(b: &[u8]) -> Option<String> {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    let t = b.get(..end)?;
    let printable = !t.is_empty()
        && t.iter()
            .all(|&c| c == b'\n' || c == b'\r' || c == b'\t' || (0x20..0x7f).contains(&c));
    printable.then(|| String::from_utf8_lossy(t).into_owned())
}

fn tag_json(ck: &Checkpoint, t: &Tag) -> Json {
    let mut o = Map::new();
    o.insert("offset".into(), json!(t.offset));
    o.insert("name".into(), json!(t.full_name()));
    o.insert("tag".into(), json!(t.name));
    o.insert("indices".into(), json!(t.indices));
    match &t.value {
        Value::Inline(b) => {
            o.insert("kind".into(), json!("inline"));
            o.insert("size".into(), json!(b.len()));
            if let (Some(n), 1 | 2 | 4 | 8) = (t.number(), b.len()) {
                // Tag values can be 64-bit registers: hex, as every register (docs/json.md).
                o.insert("value".into(), json!(format!("{n:#x}")));
            }
            o.insert("hex".into(), json!(hex(b)));
            if b.len() > 8 {
                if let Some(s) = text_of(b) {
                    o.insert("text".into(), json!(s));
                }
            }
        }
        Value::Block(b) => {
            o.insert(
                "kind".into(),
                json!(if b.compressed {
                    "compressed_block"
                } else {
                    "block"
                }),
            );
            o.insert("nbytes".into(), json!(b.nbytes));
            o.insert("nbytesinmem".into(), json!(b.nbytes_in_mem));
            o.insert("padsize".into(), json!(b.padsize));
            o.insert("data_offset".into(), json!(b.data_offset));
            let full = b.nbytes <= MAX_META_BLOCK && t.name != "Memory";
            let n = if full { b.nbytes } else { META_BLOCK_HEAD };
            match ck
                .file
                .read_vec(b.data_offset, n, MAX_META_BLOCK, "VMware block")
            {
                Ok(d) => {
                    if b.compressed {
                        o.insert("compression".into(), json!(compress::sniff(&d)));
                    }
                    o.insert(if full { "hex" } else { "hex_head" }.into(), json!(hex(&d)));
                    if full && !b.compressed {
                        if let Some(s) = text_of(&d) {
                            o.insert("text".into(), json!(s));
                        }
                    }
                }
                Err(e) => {
                    o.insert("error".into(), json!(e.to_string()));
                }
            }
        }
    }
    Json::Object(o)
}

/// The lossless tree: header, then every group with every tag.
pub fn tree(ck: &Checkpoint) -> Json {
    let groups: Vec<Json> = ck
        .groups
        .iter()
        .map(|g| {
            let tags: Vec<Json> = ck
                .tags
                .get(g.tags.clone())
                .unwrap_or_default()
                .iter()
                .map(|t| tag_json(ck, t))
                .collect();
            json!({
                "name": g.desc.name,
                "offset": g.desc.offset,
                "size": g.desc.size,
                "descriptor_offset": g.desc.desc_offset,
                "terminator": g.terminator,
                "error": g.error,
                "tags": tags,
            })
        })
        .collect();
    json!({
        "header": header_json(ck),
        "groups": groups,
    })
}

fn header_json(ck: &Checkpoint) -> Json {
    let h = &ck.header;
    json!({
        "magic": format!("{:#010x}", h.magic),
        "magic_name": magic_name(h.magic),
        "header_version": h.header_version,
        "version": h.version(),
        "block_size_bits": if h.is_32bit() { 32 } else { 64 },
        "group_count": h.group_count,
    })
}

fn regs_json(c: &CpuState) -> Json {
    let regs: Map<String, Json> = c
        .regs
        .iter()
        .map(|(k, v)| (k.clone(), json!(format!("{v:#x}"))))
        .collect();
    json!({
        "index": c.index,
        "cr0": format!("{:#x}", c.cr0),
        "cr3": format!("{:#x}", c.cr3),
        "cr4": format!("{:#x}", c.cr4),
        "regs": regs,
    })
}

/// Keys of the `.vmx` text worth showing in the summary.
const CFG_KEYS: [&str; 6] = [
    "displayName",
    "guestOS",
    "memsize",
    "numvcpus",
    "virtualHW.version",
    "config.version",
];

fn cfg_summary(text: &str) -> Json {
    let mut o = Map::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if CFG_KEYS.contains(&k) {
            o.insert(k.to_string(), json!(v.trim().trim_matches('"')));
        }
    }
    Json::Object(o)
}

/// The summary for `vmsnap info`.
pub fn describe(v: &Vmware, cpus: &[CpuState]) -> Json {
    let map = v.map();
    let mapped: u64 = map.segments().iter().map(|s| s.len).sum();
    let regions: Vec<Json> = v
        .memory_info()
        .regions
        .iter()
        .map(|r| {
            json!({
                "guest_start": r.ppn.saturating_mul(PAGE_SIZE),
                "guest_end": r.ppn.saturating_add(r.pages).saturating_mul(PAGE_SIZE),
                "memory_offset": r.page_num.saturating_mul(PAGE_SIZE),
                "pages": r.pages,
            })
        })
        .collect();
    let source = match v.memory_source() {
        MemorySource::Embedded {
            offset,
            len,
            compression,
        } => json!({
            "source": "embedded", "offset": offset, "bytes": len, "compression": compression,
        }),
        MemorySource::Vmem { name, path } => json!({"source": "vmem", "name": name, "path": path}),
        MemorySource::Missing { name, reason } => {
            json!({"source": "missing", "name": name, "reason": reason})
        }
    };
    let mut o = Map::new();
    o.insert("format".into(), json!("vmware"));
    o.insert("virtual_size".into(), json!(v.len()));
    o.insert(
        "opened_from".into(),
        json!(match v.entry() {
            Entry::Checkpoint => "checkpoint",
            Entry::Vmem => "vmem",
        }),
    );
    o.insert("product".into(), json!("VMware checkpoint"));
    o.insert("memory_size".into(), json!(mapped));
    o.insert(
        "memory".into(),
        json!({
            "layout": source,
            "regions_count": v.memory_info().regions_count,
            "regions": regions,
            "align_mask": v.memory_info().align_mask,
        }),
    );
    o.insert("vcpus".into(), json!(cpus.len()));
    o.insert(
        "cpu".into(),
        Json::Array(cpus.iter().map(regs_json).collect()),
    );
    if let Some(ck) = v.checkpoint() {
        o.insert("header".into(), header_json(ck));
        o.insert(
            "groups".into(),
            json!(ck
                .groups
                .iter()
                .map(|g| g.desc.name.clone())
                .collect::<Vec<_>>()),
        );
        o.insert("tags".into(), json!(ck.tags.len()));
        let compressed = ck
            .tags
            .iter()
            .filter(|t| t.block().is_some_and(|b| b.compressed))
            .count();
        o.insert("compressed_blocks".into(), json!(compressed));
        if let Some(t) = ck
            .find("MKSVMX", "imageData", &[])
            .or_else(|| ck.find_spec("MKSVMX/imageData"))
        {
            let len = t.block().map_or(0, |b| b.nbytes);
            o.insert(
                "screenshot".into(),
                json!({"tag": "MKSVMX/imageData", "bytes": len}),
            );
        }
    }
    if let Some(cfg) = v.config_text() {
        o.insert("config".into(), cfg_summary(cfg));
        o.insert("config_text".into(), json!(cfg));
    }
    Json::Object(o)
}

//! The `QEMU_VM_VMDESCRIPTION` JSON trailer and the exact walk of a device section by its
//! field sizes, the way QEMU's `scripts/analyze-migration.py` reads it.

use std::collections::HashMap;

use serde_json::Value;
use vmsnap_core::limits::MAX_TEXT_BYTES;
use vmsnap_core::{Error, Layer, LayerExt, Result};

use crate::cursor::Cursor;
use crate::raw::{limits::*, SEC_SUBSECTION, SEC_VMDESC};

/// The parsed trailer.
#[derive(Debug, Clone)]
pub struct VmDesc {
    /// Stream offset of the 0x06 byte.
    pub offset: u64,
    /// The JSON.
    pub json: Value,
    /// (name, instance_id) → index into `devices`.
    index: HashMap<(String, u64), usize>,
}

impl VmDesc {
    /// Finds the trailer at the end of `lower` (the JSON runs to the end of the stream).
    /// `None` when there is none or it does not parse.
    pub fn locate(lower: &dyn Layer) -> Result<Option<VmDesc>> {
        let size = lower.len();
        let window = size.min(MAX_TEXT_BYTES + 5);
        let start = size - window;
        let tail = lower.read_vec(start, window, MAX_TEXT_BYTES + 5, "vmdesc search window")?;
        // Candidates: 0x06, be32 len, '{' with the JSON ending exactly at the end.
        let mut i = tail.len().saturating_sub(6);
        loop {
            if tail.get(i) == Some(&SEC_VMDESC) && tail.get(i + 5) == Some(&b'{') {
                let len = tail
                    .get(i + 1..i + 5)
                    .and_then(|s| <[u8; 4]>::try_from(s).ok())
                    .map(u32::from_be_bytes)
                    .unwrap_or(0) as usize;
                if i + 5 + len == tail.len() {
                    if let Some(json) = tail
                        .get(i + 5..)
                        .and_then(|s| serde_json::from_slice::<Value>(s).ok())
                    {
                        return Ok(Some(VmDesc::new(start + i as u64, json)));
                    }
                }
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn new(offset: u64, json: Value) -> Self {
        let mut index = HashMap::new();
        if let Some(devs) = json.get("devices").and_then(Value::as_array) {
            for (i, d) in devs.iter().enumerate() {
                let name = d.get("name").and_then(Value::as_str).unwrap_or("");
                let inst = d.get("instance_id").and_then(Value::as_u64).unwrap_or(0);
                index.entry((name.to_string(), inst)).or_insert(i);
            }
        }
        VmDesc {
            offset,
            json,
            index,
        }
    }

    /// `page_size` from the JSON.
    pub fn page_size(&self) -> Option<u64> {
        self.json.get("page_size").and_then(Value::as_u64)
    }

    /// The description of section (`name`, `instance`).
    pub fn device(&self, name: &str, instance: u64) -> Option<&Value> {
        let i = self.index.get(&(name.to_string(), instance))?;
        self.json.get("devices")?.as_array()?.get(*i)
    }

    /// Number of devices described.
    pub fn device_count(&self) -> usize {
        self.json
            .get("devices")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }
}

/// One leaf field met during a walk: qualified name, stream offset, size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldAt {
    /// e.g. `env.segs[1].base`.
    pub name: String,
    /// Stream offset.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
}

/// Walks a section payload described by `desc` (a vmdesc device entry) from the cursor's
/// position; leaves the cursor after it. Collects leaf fields when `fields` is given.
pub fn walk(cur: &mut Cursor, desc: &Value, mut fields: Option<&mut Vec<FieldAt>>) -> Result<()> {
    let mut budget = MAX_VMDESC_FIELDS;
    walk_struct(cur, desc, "", 0, &mut budget, &mut fields)
}

fn walk_struct(
    cur: &mut Cursor,
    desc: &Value,
    prefix: &str,
    depth: u32,
    budget: &mut u64,
    fields: &mut Option<&mut Vec<FieldAt>>,
) -> Result<()> {
    if depth > MAX_VMDESC_DEPTH {
        return Err(Error::limit(
            "vmdesc struct nesting",
            u64::from(depth),
            u64::from(MAX_VMDESC_DEPTH),
        ));
    }
    let empty = Vec::new();
    let list = desc
        .get("fields")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for f in list {
        let name = f.get("name").and_then(Value::as_str).unwrap_or("?");
        let ty = f.get("type").and_then(Value::as_str).unwrap_or("");
        let size = f.get("size").and_then(Value::as_u64).unwrap_or(0);
        let count = f.get("array_len").and_then(Value::as_u64);
        for i in 0..count.unwrap_or(1) {
            *budget = budget.checked_sub(1).ok_or_else(|| {
                Error::limit(
                    "vmdesc fields in one section",
                    MAX_VMDESC_FIELDS + 1,
                    MAX_VMDESC_FIELDS,
                )
            })?;
            let qual = match count {
                Some(_) => format!("{prefix}{name}[{i}]"),
                None => format!("{prefix}{name}"),
            };
            match (ty, f.get("struct")) {
                ("struct", Some(s)) => {
                    let p = format!("{qual}.");
                    walk_struct(cur, s, &p, depth + 1, budget, fields)?;
                }
                _ => {
                    if let Some(out) = fields.as_deref_mut() {
                        out.push(FieldAt {
                            name: qual,
                            offset: cur.pos(),
                            size,
                        });
                    }
                    cur.skip(size, "vmdesc-described field")?;
                }
            }
        }
    }
    // Subsections that were sent are listed, in order; each starts with 0x05.
    if let Some(subs) = desc.get("subsections").and_then(Value::as_array) {
        for s in subs {
            let want = s.get("vmsd_name").and_then(Value::as_str).unwrap_or("");
            let at = cur.pos();
            let m = cur.u8("subsection marker")?;
            if m != SEC_SUBSECTION {
                return Err(Error::malformed(
                    at,
                    format!("subsection {want} not found: byte {m:#04x} instead of 0x05"),
                ));
            }
            let name = cur.str8("subsection name")?;
            if name != want {
                return Err(Error::malformed(
                    at,
                    format!("subsection {name} where the vmdesc lists {want}"),
                ));
            }
            let _version = cur.be32("subsection version")?;
            let p = format!("{prefix}{name}/");
            walk_struct(cur, s, &p, depth + 1, budget, fields)?;
        }
    }
    Ok(())
}

//! `translate`: how a virtual address becomes a physical one, step by step.

use serde_json::{json, Value};
use vmsnap::core::{Error, ErrorKind, Layer, Result};

use crate::json::envelope;

/// The `translate --json` document of `addr` in layer `name` (a translation layer) of
/// `file`.
pub fn document(layer: &dyn Layer, name: &str, file: &str, addr: u64) -> Result<Value> {
    let describe = layer.describe();
    let mode = describe.get("mode").and_then(Value::as_str);
    let offset = offset_of(addr, mode, layer.len())?;
    let mut walk = layer.translate(offset)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!("layer {name} does not translate addresses"),
        )
    })?;
    if let Some(o) = walk.as_object_mut() {
        o.insert("file".into(), json!(file));
        o.insert("layer".into(), json!(name));
    }
    Ok(envelope(walk))
}

/// The layer offset of a virtual address. 4- and 5-level paging take canonical addresses
/// only (bits above 47, or 56, copies of that bit) and store the low 48 (57) bits; other
/// modes take addresses below the end of their space.
pub fn offset_of(addr: u64, mode: Option<&str>, len: u64) -> Result<u64> {
    let bits = match mode {
        Some("level_4") => Some(48u32),
        Some("level_5") => Some(57),
        _ => None,
    };
    match bits {
        Some(bits) => {
            let high = addr >> (bits - 1);
            if high != 0 && high != u64::MAX >> (bits - 1) {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "{addr:#x} is not a canonical address for {} paging (bits 63..{} must all equal bit {})",
                        human_mode(mode.unwrap_or("")),
                        bits - 1,
                        bits - 1
                    ),
                ));
            }
            Ok(addr & ((1u64 << bits) - 1))
        }
        None if addr < len => Ok(addr),
        None => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{addr:#x} is past the end of the {} address space ({len:#x})",
                human_mode(mode.unwrap_or("virtual"))
            ),
        )),
    }
}

/// `level_4` as people say it: `4-level`.
pub fn human_mode(id: &str) -> &str {
    match id {
        "bits_32" => "32-bit",
        "bits_32_pse" => "32-bit+pse",
        "level_4" => "4-level",
        "level_5" => "5-level",
        other => other,
    }
}

//! `vmsnap translate`: how a virtual address becomes a physical one, step by step.

use serde_json::{json, Value};
use vmsnap::core::{AddressSpace, Error, ErrorKind, Result};

use crate::cli::TranslateArgs;
use crate::json::envelope;
use crate::open::open_for_data;
use crate::output::{parse_address, print_json};
use crate::Outcome;

/// Runs `translate`.
pub fn run(args: &TranslateArgs) -> Result<Outcome> {
    // A typo is a usage error before any file is read.
    let addr = parse_address(&args.address)?;
    let opened = open_for_data(&args.open)?;
    let stack = &opened.stack;
    let sel = match &args.layer.layer {
        Some(spec) => stack.select(spec)?,
        None => {
            let idx = stack
                .entries
                .iter()
                .rposition(|e| e.layer.space() == AddressSpace::GuestVirtual)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        "no guest-virtual layer in the stack (does the snapshot record CPU state with paging on?)",
                    )
                })?;
            stack.select(&idx.to_string())?
        }
    };
    let mode = sel.layer.describe()["mode"].as_str().map(str::to_string);
    let offset = offset_of(addr, mode.as_deref(), sel.layer.len())?;
    let walk = sel.layer.translate(offset)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!("layer {} does not translate addresses", sel.name),
        )
    })?;
    if args.json {
        let mut v = walk;
        if let Some(o) = v.as_object_mut() {
            o.insert("file".into(), json!(args.open.file.display().to_string()));
            o.insert("layer".into(), json!(sel.name));
        }
        print_json(&envelope(v))?;
        return Ok(Outcome::Ok);
    }
    print_text(addr, &sel.name, &walk);
    Ok(Outcome::Ok)
}

/// The layer offset of a virtual address. 4- and 5-level paging take canonical addresses
/// only (bits above 47, or 56, copies of that bit) and store the low 48 (57) bits; other
/// modes take addresses below the end of their space.
pub(crate) fn offset_of(addr: u64, mode: Option<&str>, len: u64) -> Result<u64> {
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
fn human_mode(id: &str) -> &str {
    match id {
        "bits_32" => "32-bit",
        "bits_32_pse" => "32-bit+pse",
        "level_4" => "4-level",
        "level_5" => "5-level",
        other => other,
    }
}

fn hex_field(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn print_text(addr: u64, layer: &str, walk: &Value) {
    println!(
        "address {addr:#x} (layer {layer}, {} paging, root {})",
        human_mode(walk["mode"].as_str().unwrap_or("?")),
        hex_field(&walk["root"])
    );
    let w = &walk["walk"];
    for s in w["steps"].as_array().into_iter().flatten() {
        println!(
            "  {:<6} [{:>3}] at {:>14} = {:>18}",
            s["level"].as_str().unwrap_or(""),
            s["index"].as_u64().unwrap_or(0),
            hex_field(&s["entry_address"]),
            hex_field(&s["value"])
        );
    }
    match w["result"].as_str() {
        Some("mapped") => println!(
            "  -> physical {} ({} KiB page{}{}{})",
            hex_field(&w["physical"]),
            w["page_size"].as_u64().unwrap_or(0) / 1024,
            if w["flags"]["writable"] == true {
                ", writable"
            } else {
                ", read-only"
            },
            if w["flags"]["user"] == true {
                ", user"
            } else {
                ", supervisor"
            },
            if w["flags"]["nx"] == true {
                ", no-execute"
            } else {
                ""
            },
        ),
        _ => println!(
            "  -> not mapped at {}: {}",
            w["level"].as_str().unwrap_or("?"),
            w["reason"].as_str().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::offset_of;

    #[test]
    fn canonical_addresses_only_in_4_and_5_level_paging() {
        let l4 = Some("level_4");
        assert_eq!(
            offset_of(0xffff_ffff_8100_0000, l4, 1 << 48).unwrap(),
            0xffff_8100_0000
        );
        assert_eq!(
            offset_of(0x7fff_ffff_f000, l4, 1 << 48).unwrap(),
            0x7fff_ffff_f000
        );
        let e = offset_of(0x8000_0000_0000, l4, 1 << 48).unwrap_err();
        assert!(e.to_string().contains("not a canonical address"), "{e}");
        assert!(offset_of(0x0100_0000_0000_0000, Some("level_5"), 1 << 57).is_err());
        assert_eq!(
            offset_of(0xff00_0000_0000_0000, Some("level_5"), 1 << 57).unwrap(),
            0x0100_0000_0000_0000
        );
        assert!(offset_of(1 << 32, Some("pae"), 1 << 32).is_err());
        assert_eq!(
            offset_of(0xc000_0000, Some("pae"), 1 << 32).unwrap(),
            0xc000_0000
        );
    }
}

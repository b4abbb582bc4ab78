//! `vmsnap translate`: how a virtual address becomes a physical one, step by step.

use serde_json::Value;
use vmsnap::core::{AddressSpace, Error, ErrorKind, Result};

use crate::cli::TranslateArgs;
use crate::open::open_for_data;
use crate::output::{parse_address, print_json};
use crate::Outcome;
#[cfg(test)]
use vmsnap_report::translate::offset_of;
use vmsnap_report::translate::{document, human_mode};

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
    let file = args.open.file.display().to_string();
    let walk = document(sel.layer.as_ref(), &sel.name, &file, addr)?;
    if args.json {
        print_json(&walk)?;
        return Ok(Outcome::Ok);
    }
    print_text(addr, &sel.name, &walk);
    Ok(Outcome::Ok)
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

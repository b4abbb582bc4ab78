//! `vmsnap translate`: how a virtual address becomes a physical one, step by step.

use vmsnap::core::{AddressSpace, Error, ErrorKind, Result};

use crate::cli::TranslateArgs;
use crate::open::open_for_data;
use crate::output::print_json;
use crate::Outcome;

/// Runs `translate`.
pub fn run(args: &TranslateArgs) -> Result<Outcome> {
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
    let addr = crate::output::parse_size(&args.address)?;
    // Accept canonical addresses: drop the sign extension the layer does not store.
    let bits = 64 - (sel.layer.len().max(2) - 1).leading_zeros();
    let offset = if bits < 64 && addr >= sel.layer.len() {
        let low = addr & ((1u64 << bits) - 1);
        let canonical = (addr >> (bits - 1)) == (u64::MAX >> (bits - 1));
        if !canonical {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("{addr:#x} is not a canonical {bits}-bit address"),
            ));
        }
        low
    } else {
        addr
    };
    let walk = sel.layer.translate(offset)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!("layer {} does not translate addresses", sel.name),
        )
    })?;
    if args.json {
        print_json(&walk)?;
        return Ok(Outcome::Ok);
    }
    println!(
        "address {addr:#x} (layer {}, {} paging, root {:#x})",
        sel.name,
        walk["mode"].as_str().unwrap_or("?"),
        walk["root"].as_u64().unwrap_or(0)
    );
    let w = &walk["walk"];
    for s in w["steps"].as_array().into_iter().flatten() {
        println!(
            "  {:<6} [{:>3}] at {:#014x} = {:#018x}",
            s["level"].as_str().unwrap_or(""),
            s["index"].as_u64().unwrap_or(0),
            s["entry_address"].as_u64().unwrap_or(0),
            s["value"].as_u64().unwrap_or(0)
        );
    }
    match w["result"].as_str() {
        Some("mapped") => println!(
            "  -> physical {:#x} ({} KiB page{}{}{})",
            w["physical"].as_u64().unwrap_or(0),
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
    Ok(Outcome::Ok)
}

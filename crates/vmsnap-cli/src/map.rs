//! `vmsnap map`: a layer's extents.

use serde_json::json;
use vmsnap::core::{ExtentKind, Result};

use crate::cli::MapArgs;
use crate::json::envelope;
use crate::open::{open_for_data, select};
use crate::output::print_json;
use crate::Outcome;

/// Runs `map`.
pub fn run(args: &MapArgs) -> Result<Outcome> {
    let opened = open_for_data(&args.open)?;
    let sel = select(&opened.stack, &args.layer)?;
    let extents = sel.layer.extents(0..sel.layer.len())?;
    if args.json {
        let v: Vec<_> = extents
            .iter()
            .map(|e| {
                let mut v = json!({
                    "start": e.offset, "length": e.len,
                    "data": e.kind == ExtentKind::Data,
                    "zero": e.kind != ExtentKind::Data,
                    "kind": e.kind,
                    "offset": e.lower_offset,
                });
                if let (Some(a), Some(o)) = (sel.layer.extent_attributes(e), v.as_object_mut()) {
                    o.insert("attributes".into(), a);
                }
                v
            })
            .collect();
        print_json(&envelope(json!({
            "file": args.open.file.display().to_string(),
            "layer": sel.name,
            "size": sel.layer.len(),
            "extents": v,
        })))?;
    } else {
        println!("layer: {} ({} bytes)", sel.name, sel.layer.len());
        println!(
            "{:<18} {:<18} {:<12} {:<18}",
            "Offset", "Length", "Kind", "Mapped to"
        );
        for e in &extents {
            let kind = match e.kind {
                ExtentKind::Data => "data",
                ExtentKind::Zero => "zero",
                ExtentKind::Unallocated => "unallocated",
                ExtentKind::Unavailable => "unavailable",
            };
            let to = e
                .lower_offset
                .map(|o| format!("{o:#x}"))
                .unwrap_or_default();
            println!("{:<#18x} {:<#18x} {:<12} {:<18}", e.offset, e.len, kind, to);
        }
    }
    Ok(Outcome::Ok)
}

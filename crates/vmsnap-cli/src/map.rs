//! `vmsnap map`: a layer's extents, and for a disk with a backing chain which file holds
//! each one (depth, as `qemu-img map`) and whether it is stored compressed.

use std::sync::Arc;

use vmsnap::core::{RefDecision, Result};

use crate::cli::MapArgs;
use crate::open::{open_for_data, select};
use crate::output::print_json;
use crate::Outcome;
use vmsnap_report::chain::{origins, ChainOrigins};
use vmsnap_report::map::{alone_pieces, annotate, document, extent_json, Origin};

/// Runs `map`.
pub fn run(args: &MapArgs) -> Result<Outcome> {
    let opened = open_for_data(&args.open)?;
    let sel = select(&opened.stack, &args.layer)?;
    let extents = sel.layer.extents(0..sel.layer.len())?;
    let zeros = opened.resolver.missing() == vmsnap::core::MissingPolicy::Zeros;
    // The input's own disk: the layer stacked on the file.
    let is_input_disk = opened
        .stack
        .entries
        .iter()
        .any(|e| e.parent == Some(0) && e.via.is_none() && Arc::ptr_eq(&e.layer, &sel.layer));
    let registry = crate::open::registry()?;
    let origins: Option<ChainOrigins> = if is_input_disk {
        origins(&opened.input, &opened.resolver, &registry, &sel.layer)
    } else {
        None
    };
    // Without a chain, the input holds every stored extent when nothing else was opened.
    let alone = !opened
        .resolver
        .log()
        .iter()
        .any(|r| matches!(r.decision, RefDecision::Opened { .. }));
    let pieces: Vec<_> = match &origins {
        Some(o) => annotate(&extents, &o.origins),
        None => alone_pieces(&extents, alone),
    };
    let input = opened.input.display().to_string();
    let file_of = |o: &Option<Origin>| -> Option<String> {
        match &origins {
            Some(chain) => chain.file_of(o.as_ref()),
            // Alone, the input holds what is stored (depth 0).
            None => o.as_ref()?.depth.map(|_| input.clone()),
        }
    };
    if args.json {
        let v: Vec<_> = pieces
            .iter()
            .map(|(e, o)| extent_json(sel.layer.as_ref(), e, o.as_ref(), file_of(o), zeros))
            .collect();
        print_json(&document(
            &args.open.file.display().to_string(),
            &sel.name,
            sel.layer.len(),
            v,
        ))?;
    } else {
        println!("layer: {} ({} bytes)", sel.name, sel.layer.len());
        println!(
            "{:<18} {:<18} {:<18} {:<18} {:>5}  File",
            "Offset", "Length", "Kind", "Mapped to", "Depth"
        );
        for (e, o) in &pieces {
            let mut kind = e.kind.as_str().to_string();
            if o.as_ref().is_some_and(|o| o.compressed) {
                kind.push_str(", compressed");
            }
            let to = o
                .as_ref()
                .filter(|o| o.depth.is_some())
                .map_or(e.lower_offset, |o| o.offset)
                .map(|o| format!("{o:#x}"))
                .unwrap_or_default();
            let depth = o
                .as_ref()
                .and_then(|o| o.depth)
                .map(|d| d.to_string())
                .unwrap_or_default();
            println!(
                "{:<#18x} {:<#18x} {:<18} {:<18} {:>5}  {}",
                e.offset,
                e.len,
                kind,
                to,
                depth,
                file_of(o).unwrap_or_default()
            );
        }
    }
    Ok(Outcome::Ok)
}

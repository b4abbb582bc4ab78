//! The head of `info`'s text: what `qemu-img info` shows first (image, format, virtual
//! size, disk size, backing chain with formats, snapshot table with UTC dates, dirty and
//! corrupt flags), so a qemu-img user finds it where they look for it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use vmsnap::core::{FileLayer, Layer, PluginKind, RefDecision, RefKind, Registry, Sniff};

use crate::open::Opened;
use crate::output::human_size;

/// Prints the summary of the input's own format (the layer stacked on the file).
pub fn print(opened: &Opened, registry: &Registry) {
    let stack = &opened.stack;
    println!("image: {}", opened.input.display());
    // The format of the input itself: the layer stacked directly on the file.
    let top = stack
        .entries
        .iter()
        .find(|e| e.parent == Some(0) && e.via.is_none());
    let (format, layer) = match top {
        Some(e) => (e.plugin.map_or("raw", |p| p.name), e.layer.clone()),
        None => match stack.entries.first() {
            Some(e) => ("raw", e.layer.clone()),
            None => return,
        },
    };
    println!("file format: {format}");
    println!("virtual size: {}", size_text(layer.len()));
    if let Ok(m) = std::fs::metadata(&opened.input) {
        // Allocated bytes, as qemu-img's "disk size".
        println!("disk size: {}", short_size(m.blocks().saturating_mul(512)));
    }
    let d = layer.describe();
    if let Some(cs) = d["cluster_size"].as_u64() {
        println!("cluster_size: {cs}");
    }
    if top
        .and_then(|e| e.plugin)
        .is_some_and(|p| p.kind == PluginKind::Vm)
    {
        // A VM is several disks, each with its own chain (shown with its inner layer):
        // one "backing chain" would mix them.
        print_inner_layers(layer.as_ref());
    } else {
        print_chain(opened, registry);
    }
    print_snapshots(&d["snapshots"]);
    let flags: Vec<String> = ["dirty", "corrupt"]
        .iter()
        .filter_map(|k| d[*k].as_bool().map(|b| format!("{k}: {}", yes_no(b))))
        .collect();
    if !flags.is_empty() {
        println!("{}", flags.join("    "));
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `16 MiB (16777216 bytes)`, as qemu-img prints sizes.
fn size_text(n: u64) -> String {
    format!("{} ({n} bytes)", short_size(n))
}

/// `16 MiB`, `458.6 KiB`, `512 B`.
fn short_size(n: u64) -> String {
    let h = human_size(n);
    let short = h.split(" (").next().unwrap_or(&h);
    short.replace(".0 ", " ")
}

/// A VM's inner layers by name, what `--layer` selects.
fn print_inner_layers(layer: &dyn Layer) {
    let names: Vec<String> = layer.children().into_iter().map(|c| c.name).collect();
    if !names.is_empty() {
        println!("inner layers (--layer): {}", names.join(", "));
    }
}

/// Every backing or parent file that was opened, with its depth and format; those that
/// were not, with why.
fn print_chain(opened: &Opened, registry: &Registry) {
    let refs: Vec<_> = opened
        .resolver
        .log()
        .into_iter()
        .filter(|r| matches!(r.kind, RefKind::Backing | RefKind::Parent))
        .collect();
    if refs.is_empty() {
        return;
    }
    println!("backing chain:");
    println!("  [0] {}", opened.input.display());
    for (depth, r) in refs.iter().enumerate() {
        let depth = depth + 1;
        match &r.decision {
            RefDecision::Opened { path, .. } => println!(
                "  [{depth}] {} ({}, {})",
                r.name,
                format_of(path, registry),
                path.display()
            ),
            RefDecision::Denied { reason } | RefDecision::Failed { reason } => {
                println!("  [{depth}] {} (not opened: {reason})", r.name)
            }
            RefDecision::Listed => println!("  [{depth}] {} (listed, not opened)", r.name),
            other => println!("  [{depth}] {} ({})", r.name, other.describe()),
        }
    }
}

/// The disk format a file probes as (`raw` when none accepts).
fn format_of(path: &Path, registry: &Registry) -> &'static str {
    let Ok(file) = FileLayer::open(path) else {
        return "unreadable";
    };
    let file: Arc<dyn Layer> = Arc::new(file);
    let Ok(sniff) = Sniff::read(file.as_ref()) else {
        return "unreadable";
    };
    let window = sniff.window(file.as_ref());
    registry.disk_for(&window).map_or("raw", |p| p.name)
}

/// qemu-img's snapshot table from a `snapshots` list with `id`, `name`, `vm_state_size`,
/// `date_sec` and `vm_clock_nsec`.
fn print_snapshots(snapshots: &Value) {
    for line in snapshot_table(snapshots) {
        println!("{line}");
    }
}

/// The lines of [`print_snapshots`]' table, none when there are no snapshots.
fn snapshot_table(snapshots: &Value) -> Vec<String> {
    let Some(list) = snapshots.as_array().filter(|l| !l.is_empty()) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let id_of = |s: &Value| {
        s["id"]
            .as_str()
            .map_or_else(|| s["id"].to_string(), str::to_string)
    };
    // qemu-img's widths, widened (one space apart) for long IDs and tags (GUIDs).
    let id_w = list
        .iter()
        .map(|s| id_of(s).len() + 1)
        .max()
        .unwrap_or(0)
        .max(10);
    let tag_w = list
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("").len() + 1)
        .max()
        .unwrap_or(0)
        .max(18);
    lines.push("Snapshot list:".to_string());
    lines.push(format!(
        "{:<id_w$}{:<tag_w$}{:>12}{:>22}{:>15}",
        "ID", "TAG", "VM SIZE", "DATE (UTC)", "VM CLOCK"
    ));
    for s in list {
        let date = s["date_sec"]
            .as_u64()
            .map(|d| {
                vmsnap::core::time::iso8601_utc(d)
                    .replace('T', " ")
                    .replace('Z', "")
            })
            .unwrap_or_default();
        let clock = s["vm_clock_nsec"].as_u64().unwrap_or(0);
        let ms = clock / 1_000_000;
        let clock = format!(
            "{:02}:{:02}:{:02}.{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        );
        lines.push(format!(
            "{:<id_w$}{:<tag_w$}{:>12}{:>22}{:>15}",
            id_of(s),
            s["name"].as_str().unwrap_or(""),
            short_size(s["vm_state_size"].as_u64().unwrap_or(0)),
            date,
            clock
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_qemu_img() {
        assert_eq!(short_size(16 << 20), "16 MiB");
        assert_eq!(size_text(16 << 20), "16 MiB (16777216 bytes)");
        assert_eq!(short_size(469_574), "458.6 KiB");
        assert_eq!(short_size(0), "0 B");
    }

    #[test]
    fn snapshot_columns_keep_qemu_img_widths_and_widen_for_guids() {
        let short = serde_json::json!([{"id": "1", "name": "Installed", "vm_state_size": 0}]);
        let t = snapshot_table(&short);
        assert_eq!(
            t[1],
            format!(
                "{:<10}{:<18}{:>12}{:>22}{:>15}",
                "ID", "TAG", "VM SIZE", "DATE (UTC)", "VM CLOCK"
            )
        );
        assert!(t[2].starts_with("1         Installed         "), "{t:?}");
        let guid = "4f0e2ad4-a9b0-4bd1-9c1e-0c6a3e5b7d21";
        let long = serde_json::json!([{"id": guid, "name": format!("snapshot:{guid}")}]);
        let t = snapshot_table(&long);
        assert!(
            t[2].starts_with(&format!("{guid} snapshot:{guid} ")),
            "{t:?}"
        );
        assert!(snapshot_table(&serde_json::json!([])).is_empty());
    }
}

//! The VM summary of a configuration (`.vmcx`) or saved state (`.vmrs`) key tree, and
//! the file paths it names (listed as external references, never opened).
//!
//! Key names beyond the saved-state schema are the Hyper-V configuration schema's
//! (`configuration/properties/name`, `settings/memory/bank/size` …); paths are found by
//! shape wherever they are, so an unknown layout still lists every path.

use serde_json::{json, Value as Json};
use vmsnap_core::{ExternalRef, RefDecision, RefKind};

use crate::tree::Tree;
use crate::value::Value;

const DISK_EXT: &[&str] = &[".vhd", ".vhdx", ".avhd", ".avhdx", ".iso", ".vfd", ".vhds"];
const STATE_EXT: &[&str] = &[".vmrs", ".vmgs", ".vsv", ".bin", ".vmcx", ".xml"];

/// What a configured path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathClass {
    /// A virtual disk or media image.
    Disk,
    /// A state, guest-state or configuration file.
    State,
    /// A directory or other file.
    Other,
}

/// Whether `s` looks like a host path (`C:\…`, `\\server\…`, or a name with a known
/// VM-file extension), and what kind.
pub fn classify_path(s: &str) -> Option<PathClass> {
    let b = s.as_bytes();
    // Every extension starts with '.', a drive has ':' second, a UNC path starts with
    // "\\\\": a string with none of them is not a path (most values).
    if b.get(1) != Some(&b':') && !s.starts_with("\\\\") && !b.contains(&b'.') {
        return None;
    }
    let drive = b.len() >= 3
        && b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.get(1) == Some(&b':')
        && matches!(b.get(2), Some(b'\\') | Some(b'/'));
    let unc = s.starts_with("\\\\");
    let ext = |list: &[&str]| {
        list.iter().any(|e| {
            b.len()
                .checked_sub(e.len())
                .and_then(|at| b.get(at..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case(e.as_bytes()))
        })
    };
    if ext(DISK_EXT) {
        Some(PathClass::Disk)
    } else if ext(STATE_EXT) && (drive || unc || s.contains('\\')) {
        Some(PathClass::State)
    } else if drive || unc {
        Some(PathClass::Other)
    } else {
        None
    }
}

fn path_of(tree: &Tree, mut id: u32) -> String {
    let mut parts = Vec::new();
    let mut guard = 0;
    while let Some(k) = tree.key(id) {
        parts.push(k.name.as_str());
        guard += 1;
        if k.parent_table == 0 || guard > crate::limits::MAX_KEY_DEPTH + 1 {
            break;
        }
        // Parent id by table/offset (looked up once, when the tree was built).
        let Some(lo) = tree.parent_position(id) else {
            break;
        };
        id = lo;
    }
    parts.reverse();
    format!("/{}", parts.join("/"))
}

/// Every path-looking string value reachable from the root, with its key path.
pub fn configured_paths(tree: &Tree) -> Vec<(String, String, PathClass)> {
    let mut out = Vec::new();
    // Classify every string in one pass over the keys (in memory order), then walk the
    // tree only if some key looks like a path.
    let class: Vec<Option<PathClass>> = tree
        .keys
        .iter()
        .map(|k| k.value.as_str().and_then(classify_path))
        .collect();
    if class.iter().all(Option::is_none) {
        return out;
    }
    let mut stack: Vec<u32> = tree.roots.iter().rev().copied().collect();
    while let Some(id) = stack.pop() {
        if let (Some(Some(c)), Some(s)) = (
            class.get(id as usize),
            tree.key(id).and_then(|k| k.value.as_str()),
        ) {
            out.push((path_of(tree, id), s.to_string(), *c));
        }
        stack.extend(tree.children_of(Some(id)).iter().rev().copied());
        if out.len() >= vmsnap_core::limits::MAX_FINDINGS {
            break;
        }
    }
    out
}

/// The external references for the configured paths (distinct names, in tree order).
pub fn external_refs(tree: &Tree) -> Vec<ExternalRef> {
    let mut seen = std::collections::HashSet::new();
    configured_paths(tree)
        .into_iter()
        .filter(|(_, name, _)| seen.insert(name.clone()))
        .map(|(_, name, _)| ExternalRef {
            kind: RefKind::Configured,
            name,
            decision: RefDecision::Listed,
        })
        .collect()
}

fn int(tree: &Tree, paths: &[&str]) -> Option<i128> {
    paths.iter().find_map(|p| {
        tree.get(p)
            .and_then(|id| tree.key(id))
            .and_then(|k| k.value.as_i128())
    })
}

fn text(tree: &Tree, paths: &[&str]) -> Option<String> {
    paths.iter().find_map(|p| {
        tree.get(p)
            .and_then(|id| tree.key(id))
            .and_then(|k| k.value.as_str().map(str::to_string))
    })
}

/// The VM summary: name, id, configuration version, memory, processors, disks,
/// network adapters and state files.
pub fn summary(tree: &Tree) -> Json {
    let paths = configured_paths(tree);
    let list = |c: PathClass| -> Vec<Json> {
        paths
            .iter()
            .filter(|(_, _, k)| *k == c)
            .map(|(key, p, _)| json!({"key": key, "path": p}))
            .collect()
    };
    // Network adapters: nodes with a MAC address or a switch id child.
    let mut nics = Vec::new();
    for (i, k) in tree.keys.iter().enumerate() {
        if !matches!(k.value, Value::Node { .. }) {
            continue;
        }
        let kids = tree.children_of(Some(i as u32));
        let get = |n: &str| {
            kids.iter()
                .filter_map(|&c| tree.key(c))
                .find(|c| c.name.eq_ignore_ascii_case(n))
                .map(|c| match &c.value {
                    Value::String { text, .. } => json!(text),
                    v => v.to_json(|_| None),
                })
        };
        let mac = get("MacAddress").or_else(|| get("mac_address"));
        let switch = get("SwitchName")
            .or_else(|| get("switch_id"))
            .or_else(|| get("AltSwitchName"));
        if mac.is_some() || switch.is_some() {
            nics.push(json!({
                "key": path_of(tree, i as u32),
                "name": get("friendly_name").or_else(|| get("FriendlyName")),
                "mac_address": mac,
                "switch": switch,
            }));
            if nics.len() >= 256 {
                break;
            }
        }
    }
    let version = int(
        tree,
        &["/configuration/properties/version", "/savedstate/VmVersion"],
    );
    json!({
        "name": text(tree, &["/configuration/properties/name"]),
        "id": text(tree, &["/configuration/properties/global_id", "/configuration/properties/vm_id"]),
        "config_version": version.map(|v| format!("{}.{}", v >> 8, v & 0xff)),
        "config_version_raw": version.map(|v| v as i64),
        "memory_mb": int(tree, &["/configuration/settings/memory/bank/size"]).map(|v| v as i64),
        "processors": int(tree, &["/configuration/settings/processors/count"]).map(|v| v as i64),
        "disks": list(PathClass::Disk),
        "network_adapters": nics,
        "state_files": list(PathClass::State),
        "other_paths": list(PathClass::Other),
    })
}

//! The `info --json` document: the stack, and per layer what it is.

use std::path::Path;

use serde_json::{json, Value};
use vmsnap::core::ExternalPolicy;
use vmsnap::stack::{Stack, StackEntry};

use crate::json::{envelope, error_object, snake};

/// The JSON report of a stack opened from `file` under `policy` (also what golden dumps
/// hold); `explain` adds the stacker's attempts.
pub fn report(stack: &Stack, policy: ExternalPolicy, file: &str, explain: bool) -> Value {
    let layers: Vec<Value> = stack
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| layer(i, e))
        .collect();
    let findings: Vec<Value> = stack
        .all_findings()
        .iter()
        .map(|(i, f)| {
            json!({"layer": i, "rule": f.rule, "severity": f.severity,
                   "message": f.message, "offset": f.offset})
        })
        .collect();
    let input = Path::new(file);
    let mut out = envelope(json!({
        "file": file,
        "external_policy": snake(policy.as_str()),
        "stack": stack.entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        "layers": layers,
        "findings": findings,
        "error": stack.error.as_ref().map(|e| error_object(e, Some(input))),
    }));
    if explain {
        if let Some(obj) = out.as_object_mut() {
            obj.insert("attempts".into(), json!(stack.attempts));
        }
    }
    out
}

/// One entry of `layers`: the layer at `index` of the stack.
pub fn layer(index: usize, e: &StackEntry) -> Value {
    let l = &e.layer;
    let children: Vec<Value> = l
        .children()
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "role": c.role, "size": c.layer.len(),
                "space": c.layer.space(), "stackable": c.stackable,
            })
        })
        .collect();
    let mut v = json!({
        "index": index,
        "name": e.name,
        "plugin": e.plugin.map(|p| p.name),
        "plugin_kind": e.plugin.map(|p| p.kind.as_str()),
        "space": l.space(),
        "size": l.len(),
        "parent": e.parent,
        "via": e.via,
        "describe": l.describe(),
    });
    if let Some(obj) = v.as_object_mut() {
        let findings = l.findings();
        if !findings.is_empty() && (e.via.is_none() || e.plugin.is_some()) {
            obj.insert("findings".into(), json!(findings));
        }
        let refs = l.external_refs();
        if !refs.is_empty() {
            obj.insert("external_refs".into(), json!(refs));
        }
        if !children.is_empty() {
            obj.insert("children".into(), Value::Array(children));
        }
        let cpu = l.cpu_state();
        if !cpu.is_empty() {
            obj.insert("cpu".into(), json!(cpu));
        }
    }
    v
}

//! `vmsnap info`: the stack, and per layer what it is.

use serde_json::Value;
use vmsnap::core::{ExternalPolicy, Result, Severity};
use vmsnap::stack::Stack;

use crate::cli::InfoArgs;
use crate::open::{open, Opened};
use crate::output::{human_size, print_json};
use crate::Outcome;

/// Runs `info`.
pub fn run(args: &InfoArgs) -> Result<Outcome> {
    let mut opened = open(&args.open, args.explain)?;
    let report = report(&opened, &args.open.file.display().to_string(), args.explain);
    if args.json {
        print_json(&report)?;
    } else {
        crate::summary::print(&opened, &crate::open::registry()?);
        println!();
        print_text(&opened.stack, opened.policy, &report);
    }
    // The report holds the error; its one line goes to stderr once, by `main`.
    if let Some(e) = opened.stack.error.take() {
        return Ok(Outcome::Failed(e));
    }
    Ok(if opened.stack.any_unsafe() {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

/// The JSON report of a stack (also what golden dumps hold).
pub fn report(opened: &Opened, file: &str, explain: bool) -> Value {
    vmsnap_report::info::report(&opened.stack, opened.policy, file, explain)
}

fn print_text(stack: &Stack, policy: ExternalPolicy, report: &Value) {
    let chain: Vec<&str> = {
        let mut v = Vec::new();
        let mut idx = Some(stack.main_top());
        while let Some(i) = idx {
            let Some(e) = stack.entries.get(i) else { break };
            v.push(e.name.as_str());
            idx = e.parent;
        }
        v.reverse();
        v
    };
    println!("stack: {}", chain.join(" -> "));
    for (i, e) in stack.entries.iter().enumerate() {
        let l = &e.layer;
        let space = serde_json::to_value(l.space()).unwrap_or_default();
        println!(
            "[{i}] {}  ({}, {})",
            e.name,
            space.as_str().unwrap_or(""),
            human_size(l.len())
        );
        if let Some(obj) = l.describe().as_object() {
            for (k, v) in obj {
                print_field(k, v, 4);
            }
        }
        let children = l.children();
        if !children.is_empty() {
            println!("    layers inside:");
            for c in children {
                println!(
                    "      {}/{}  ({:?}, {})",
                    e.name,
                    c.name,
                    c.role,
                    human_size(c.layer.len())
                );
            }
        }
        for r in l.external_refs() {
            println!("    external reference: {}", r.finding().message);
        }
    }
    let findings = stack.all_findings();
    if !findings.is_empty() {
        println!("findings:");
        for (i, f) in findings {
            let sev = match f.severity {
                Severity::Unsafe => "UNSAFE",
                other => other.as_str(),
            };
            let at = f.offset.map(|o| format!(" at {o:#x}")).unwrap_or_default();
            println!("  [{sev}] {} (layer {i}{at}): {}", f.rule, f.message);
        }
    }
    if let Some(attempts) = report.get("attempts").and_then(Value::as_array) {
        println!("explain:");
        for a in attempts {
            let on = a["on"].as_u64().unwrap_or(0);
            let plugin = a["plugin"].as_str().unwrap_or("");
            let outcome = a["outcome"].as_str().unwrap_or("");
            let reason = a["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            println!("  on [{on}] {plugin}: {outcome}{reason}");
        }
    }
    let (policy, note) = match policy {
        ExternalPolicy::SameDir => (
            policy.as_str(),
            "only files in the input's directory may be opened",
        ),
        ExternalPolicy::Any => (policy.as_str(), "any local file may be opened"),
        _ => (policy.as_str(), "no other file may be opened"),
    };
    println!("external references: --external={policy} ({note})");
}

fn print_field(key: &str, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Null => {}
        Value::Object(m) if m.is_empty() => {}
        Value::Array(a) if a.is_empty() => {}
        Value::Object(m) => {
            println!("{pad}{key}:");
            for (k, v) in m.iter().take(64) {
                print_field(k, v, indent + 2);
            }
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            let items: Vec<String> = a.iter().take(32).map(scalar).collect();
            let more = if a.len() > 32 {
                format!(" … ({} in all)", a.len())
            } else {
                String::new()
            };
            println!("{pad}{key}: {}{more}", items.join(", "));
        }
        Value::Array(a) => {
            println!("{pad}{key}:");
            for (i, x) in a.iter().enumerate().take(64) {
                print_field(&format!("[{i}]"), x, indent + 2);
            }
            if a.len() > 64 {
                println!("{pad}  … ({} in all)", a.len());
            }
        }
        other => println!("{pad}{key}: {}", scalar(other)),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

//! `vmsnap check`: is this image safe to hand to a hypervisor? Nothing outside the file is
//! opened; every external reference is a finding.

use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap::core::{
    ExternalPolicy, FileLayer, Finding, Layer, Options, Probe, Resolver, Result, Severity, Sniff,
};
use vmsnap::stack::Stacker;

use crate::cli::CheckArgs;
use crate::output::print_json;
use crate::Outcome;

/// Non-plugin formats a disk image may also be (polyglot checks).
fn container_formats(head: &[u8]) -> Vec<&'static str> {
    let mut v = Vec::new();
    if head.get(0x8001..0x8006) == Some(b"CD001") {
        v.push("iso");
    }
    if head.get(512..520) == Some(b"EFI PART") || head.get(4096..4104) == Some(b"EFI PART") {
        v.push("gpt");
    }
    v
}

/// Runs `check`.
pub fn run(args: &CheckArgs) -> Result<Outcome> {
    let registry = crate::open::registry()?;
    let resolver = Resolver::new(ExternalPolicy::Deny);
    let options = Options::new();
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&args.file)?);
    let sniff = Sniff::read(file.as_ref())?;
    let window = sniff.window(file.as_ref());
    let mut detected: Vec<&str> = registry
        .plugins()
        .iter()
        .filter(|p| (p.probe)(&window) == Probe::Yes)
        .map(|p| p.name)
        .collect();
    detected.extend(container_formats(&sniff.head));
    let mut rules: Vec<Value> = Vec::new();
    let mut unsafe_found = false;
    let mut push = |id: &str, f: Option<&Finding>, layer: Option<usize>| {
        let (verdict, reason) = match f {
            None => ("pass", String::new()),
            Some(f) => match f.severity {
                Severity::Unsafe => ("fail", f.message.clone()),
                Severity::Warning => ("warn", f.message.clone()),
                Severity::Info => ("info", f.message.clone()),
            },
        };
        rules.push(json!({"id": id, "verdict": verdict, "reason": reason, "layer": layer}));
    };
    if detected.len() > 1 {
        let f = Finding::unsafe_(
            "multiple_formats",
            format!("Multiple formats detected: {}", detected.join(", ")),
        );
        push("multiple_formats", Some(&f), Some(0));
        unsafe_found = true;
    } else {
        push("multiple_formats", None, None);
    }
    let stack = Stacker::new(&registry, &resolver, &options).stack(file);
    let format = stack
        .entries
        .get(1)
        .and_then(|e| e.plugin)
        .map(|p| p.name)
        .unwrap_or("raw");
    if let Some(claimed) = &args.format {
        if claimed != format && !(claimed == "raw" && format == "file") {
            let f = Finding::unsafe_(
                "format_mismatch",
                format!("declared format {claimed:?} but the image is {format:?}"),
            );
            push("format_mismatch", Some(&f), Some(0));
            unsafe_found = true;
        } else {
            push("format_mismatch", None, None);
        }
    }
    for (i, f) in stack.all_findings() {
        // The stacker's own ambiguity finding repeats `multiple_formats` above.
        if f.rule == "multiple_formats" && i == 0 {
            continue;
        }
        unsafe_found |= f.severity == Severity::Unsafe;
        push(f.rule, Some(&f), Some(i));
    }
    let mut refs = 0;
    for (i, e) in stack.entries.iter().enumerate() {
        for r in e.layer.external_refs() {
            let f = r.finding();
            // Formats usually record their own finding too; report the reference once.
            let dup = e.layer.findings().iter().any(|x| x.rule == f.rule);
            if !dup {
                unsafe_found |= f.severity == Severity::Unsafe;
                push(f.rule, Some(&f), Some(i));
            }
            refs += 1;
        }
    }
    if refs == 0 {
        push("external_references", None, None);
    }
    let virtual_size = stack.default_selection().layer.len();
    let verdict = if stack.error.is_some() {
        "error"
    } else if unsafe_found {
        "unsafe"
    } else {
        "safe"
    };
    let report = json!({
        "file": args.file.display().to_string(),
        "format": format,
        "detected": detected,
        "virtual_size": virtual_size,
        "verdict": verdict,
        "rules": rules,
        "error": stack.error.as_ref().map(|e| e.to_string()),
    });
    if args.json {
        print_json(&report)?;
    } else {
        println!(
            "{}: {verdict} ({format}, {virtual_size} bytes)",
            args.file.display()
        );
        for r in report["rules"].as_array().into_iter().flatten() {
            let v = r["verdict"].as_str().unwrap_or("");
            if v != "pass" {
                println!(
                    "  {v:<5} {}: {}",
                    r["id"].as_str().unwrap_or(""),
                    r["reason"].as_str().unwrap_or("")
                );
            }
        }
    }
    if let Some(e) = stack.error {
        if !args.json {
            crate::output::print_error(&e, false);
        }
        return Err(e);
    }
    Ok(if unsafe_found {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

//! Random-access inspection: every probe, polyglot detection, the declared format, then
//! the matched format's safety rules. Nothing outside the image is opened.

use std::sync::Arc;

use serde::Serialize;
use vmsnap_core::{
    ExternalPolicy, Finding, Layer, Options, Probe, Registry, Resolver, Severity, Sniff,
};
use vmsnap_stack::Stacker;

use crate::detect;

/// What the caller expects of an image.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The format the image claims to be (`raw` for none); a mismatch is a finding.
    pub expected_format: Option<String>,
    /// Format combinations that are allowed together, e.g. `iso+gpt` for hybrid ISOs.
    pub allow: Vec<String>,
}

/// The verdict of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The rule holds.
    Pass,
    /// Informational.
    Info,
    /// Inconsistent but not dangerous.
    Warn,
    /// The image is unsafe.
    Fail,
}

/// One rule's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    /// Rule id (OpenStack's name where one corresponds).
    pub id: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Why (empty on pass).
    pub reason: String,
    /// Stack layer the finding belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    /// Safe to hand to a hypervisor.
    Safe,
    /// Unsafe.
    Unsafe,
    /// Could not be inspected.
    Error,
}

/// The result of inspecting an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The format (`raw` when no plugin matched).
    pub format: String,
    /// Every format whose probe matched, plus `iso`/`gpt`.
    pub detected: Vec<String>,
    /// Virtual size of the image (of the disk, for disk formats).
    pub virtual_size: u64,
    /// Overall verdict.
    pub verdict: Overall,
    /// Rule by rule.
    pub rules: Vec<RuleResult>,
    /// Why it could not be inspected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn rule(id: &str, f: Option<&Finding>, layer: Option<usize>) -> RuleResult {
    let (verdict, reason) = match f {
        None => (Verdict::Pass, String::new()),
        Some(f) => (
            match f.severity {
                Severity::Unsafe => Verdict::Fail,
                Severity::Warning => Verdict::Warn,
                Severity::Info => Verdict::Info,
            },
            f.message.clone(),
        ),
    };
    RuleResult {
        id: id.to_string(),
        verdict,
        reason,
        layer,
    }
}

/// Inspects `file` (the base layer of an image).
pub fn inspect(file: Arc<dyn Layer>, registry: &Registry, opts: &CheckOptions) -> Report {
    let resolver = Resolver::new(ExternalPolicy::Deny);
    let options = Options::new();
    let mut rules = Vec::new();
    let sniff = match Sniff::read(file.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            return Report {
                format: "unknown".into(),
                detected: Vec::new(),
                virtual_size: 0,
                verdict: Overall::Error,
                rules,
                error: Some(e.to_string()),
            }
        }
    };
    let window = sniff.window(file.as_ref());
    // Every probe, not only the first match.
    let mut detected: Vec<String> = registry
        .plugins()
        .iter()
        .filter(|p| p.kind != vmsnap_core::PluginKind::Translation)
        .filter(|p| (p.probe)(&window) == Probe::Yes)
        .map(|p| p.name.to_string())
        .collect();
    let iso = detect::is_iso(&sniff.head);
    let gpt = detect::is_gpt(&sniff.head);
    if iso {
        detected.push("iso".into());
    }
    if gpt {
        detected.push("gpt".into());
    }
    let combo = detected.join("+");
    if detected.len() > 1 && !opts.allow.contains(&combo) {
        let f = Finding::unsafe_(
            "multiple_formats",
            format!("Multiple formats detected: {}", detected.join(", ")),
        );
        rules.push(rule("multiple_formats", Some(&f), Some(0)));
    } else {
        rules.push(rule("multiple_formats", None, None));
    }
    if gpt || detect::is_mbr(&sniff.head) {
        let fs = detect::mbr_findings(&sniff.head);
        if fs.is_empty() {
            rules.push(rule("mbr", None, None));
        }
        for f in &fs {
            rules.push(rule(f.rule, Some(f), Some(0)));
        }
    }
    // The image's own format only: guest data is not read to look for nested formats
    // (streaming inspection does not keep it, and qemu-img info does not do it either).
    let stack = Stacker::new(registry, &resolver, &options)
        .max_layers(1)
        .branches(false)
        .stack_sniffed(file, Some(sniff));
    // A format that accepted the file but refused to open it is still the file's format:
    // "raw" would claim that nothing was recognised.
    let failed = stack.attempts.iter().find_map(|a| match a.outcome {
        vmsnap_stack::Outcome::Failed(_) if a.on == 0 => Some(a.plugin),
        _ => None,
    });
    let format = stack
        .entries
        .get(1)
        .and_then(|e| e.plugin)
        .map(|p| p.name)
        .or(failed)
        .map_or_else(
            || {
                if gpt {
                    "gpt"
                } else if iso {
                    "iso"
                } else {
                    "raw"
                }
                .to_string()
            },
            |name| name.to_string(),
        );
    if let Some(claimed) = &opts.expected_format {
        if *claimed != format {
            let f = Finding::unsafe_(
                "format_mismatch",
                format!("declared format {claimed:?} but the image is {format:?}"),
            );
            rules.push(rule("format_mismatch", Some(&f), Some(0)));
        } else {
            rules.push(rule("format_mismatch", None, None));
        }
    }
    for (i, f) in stack.all_findings() {
        if f.rule == "multiple_formats" && i == 0 {
            continue; // already judged above, with ISO and GPT included
        }
        rules.push(rule(f.rule, Some(&f), Some(i)));
    }
    let mut refs = 0;
    for (i, e) in stack.entries.iter().enumerate() {
        let own: Vec<&'static str> = e.layer.findings().iter().map(|f| f.rule).collect();
        for r in e.layer.external_refs() {
            refs += 1;
            let f = r.finding();
            // Formats usually report their references as findings themselves.
            if !own.contains(&f.rule) {
                rules.push(rule(f.rule, Some(&f), Some(i)));
            }
        }
    }
    if refs == 0 {
        rules.push(rule("external_references", None, None));
    }
    if let Some(e) = &stack.error {
        // A refusal that stands for a safety rule is reported under that rule.
        if let Some(id) = e.rule() {
            let f = Finding::unsafe_(id, e.to_string());
            rules.push(rule(id, Some(&f), Some(0)));
        }
    }
    // Unknown when the format could not be opened (not the file's length).
    let virtual_size = if failed.is_some() && stack.entries.len() < 2 {
        0
    } else {
        stack.default_selection().layer.len()
    };
    let error = stack.error.as_ref().map(|e| e.to_string());
    // A refusal under a named rule is a judgement (unsafe), not a failure to inspect.
    let judged = stack.error.as_ref().is_some_and(|e| e.rule().is_some());
    let verdict = if error.is_some() && !judged {
        Overall::Error
    } else if rules.iter().any(|r| r.verdict == Verdict::Fail) {
        Overall::Unsafe
    } else {
        Overall::Safe
    };
    Report {
        format,
        detected,
        virtual_size,
        verdict,
        rules,
        error,
    }
}

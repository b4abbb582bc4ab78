//! Random-access inspection: every probe, polyglot detection, the declared format, then
//! the matched format's safety rules. Nothing outside the image is opened.

use std::sync::Arc;

use serde::Serialize;
use vmsnap_core::{
    ErrorKind, ExternalPolicy, Finding, Layer, Options, Registry, Resolver, Severity, Sniff,
};
use vmsnap_stack::Stacker;

use crate::{detect, names, signature};

/// What the caller expects of an image.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The format the image claims to be (`raw` for none), or a comma-separated list of
    /// the formats allowed; aliases (`vpc`, `ploop`) are accepted. A mismatch is a finding.
    pub expected_format: Option<String>,
    /// Format combinations that are allowed together, e.g. `iso+gpt` for hybrid ISOs (and
    /// ISOs with an MBR: OpenStack names any MBR `gpt`), in any order.
    pub allow: Vec<String>,
}

/// The verdict of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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

impl Verdict {
    /// The name, as JSON spells it (`pass`, `info`, `warn`, `fail`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Info => "info",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One rule's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
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
#[non_exhaustive]
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
    /// Where an encrypted payload starts (LUKS), as `qemu-img info`'s `payload-offset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_offset: Option<u64>,
    /// Why it could not be inspected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The same failure in parts (kind, file, layer, offset), for callers that report
    /// errors structured (`check --json`, Python); see [`Failure::to_error`].
    #[serde(skip)]
    pub failure: Option<Failure>,
}

/// An inspection failure in parts: what [`vmsnap_core::Error`] holds, kept in a report
/// that is cloned and compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error's kind.
    pub kind: vmsnap_core::ErrorKind,
    /// Its message, without context.
    pub message: String,
    /// Where it happened.
    pub context: vmsnap_core::Context,
}

impl Failure {
    /// The failure of `e`.
    pub fn of(e: &vmsnap_core::Error) -> Self {
        Failure {
            kind: e.kind(),
            message: e.message().to_string(),
            context: e.context().clone(),
        }
    }

    /// The error again, with its context.
    pub fn to_error(&self) -> vmsnap_core::Error {
        let mut e = vmsnap_core::Error::new(self.kind, self.message.clone());
        let c = &self.context;
        if let Some(o) = c.offset {
            e = e.at(o);
        }
        if let Some(l) = &c.layer {
            e = e.in_layer(l.clone());
        }
        if let Some(p) = &c.path {
            e = e.in_file(p);
        }
        if let Some(op) = c.op {
            e = e.during(op);
        }
        e
    }
}

fn rule(id: &str, f: Option<&Finding>, layer: Option<usize>) -> RuleResult {
    let (verdict, reason) = match f {
        None => (Verdict::Pass, String::new()),
        Some(f) => (
            match f.severity {
                Severity::Unsafe => Verdict::Fail,
                Severity::Warning => Verdict::Warn,
                Severity::Info => Verdict::Info,
                // A severity this inspector does not know is never let pass.
                _ => Verdict::Fail,
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
    inspect_with(file, registry, opts, &|| false)
}

impl Report {
    /// The report of an input that could not be inspected because of `e` (exit 2).
    pub fn could_not_inspect(e: &vmsnap_core::Error) -> Report {
        Report {
            format: "unknown".into(),
            detected: Vec::new(),
            virtual_size: 0,
            payload_offset: None,
            verdict: Overall::Error,
            rules: Vec::new(),
            error: Some(e.to_string()),
            failure: Some(Failure::of(e)),
        }
    }
}

/// Whether `opts` allows exactly the formats of `detected` together.
fn allowed(detected: &[String], opts: &CheckOptions) -> bool {
    let mut have: Vec<String> = detected.to_vec();
    have.sort();
    have.dedup();
    opts.allow.iter().any(|a| {
        let mut want: Vec<String> = a.split('+').map(names::canonical).collect();
        want.sort();
        want.dedup();
        want == have
    })
}

/// The formats whose files are tar archives (so the tar signature is theirs).
const TAR_FORMATS: [&str; 1] = ["ova"];

/// Inspects `file`; `lacked` tells whether a read failed because a stream did not keep
/// the bytes (then a refusal is "could not inspect", not a verdict).
pub(crate) fn inspect_with(
    file: Arc<dyn Layer>,
    registry: &Registry,
    opts: &CheckOptions,
    lacked: &dyn Fn() -> bool,
) -> Report {
    let resolver = Resolver::new(ExternalPolicy::Deny);
    let options = Options::new();
    let mut rules = Vec::new();
    let sniff = match Sniff::read(file.as_ref()) {
        Ok(s) => s,
        Err(e) => return Report::could_not_inspect(&e),
    };
    let signatures = match signature::detect(file.as_ref(), &sniff.head, &sniff.tail, sniff.size) {
        Ok(s) => s,
        Err(e) => return Report::could_not_inspect(&e),
    };
    let window = sniff.window(file.as_ref());
    // Every probe, not only the first match.
    let mut detected: Vec<String> = registry
        .plugins()
        .iter()
        .filter(|p| p.kind != vmsnap_core::PluginKind::Translation)
        .filter(|p| p.recognises(&window).is_yes())
        .map(|p| p.name.to_string())
        .collect();
    // An OVA is a tar archive: the plugin that reads it names what the tar signature
    // does, not a second format (its own layer reports the `archive` rule below).
    let signatures: Vec<_> = if detected.iter().any(|d| TAR_FORMATS.contains(&d.as_str())) {
        signatures.into_iter().filter(|s| s.name != "tar").collect()
    } else {
        signatures
    };
    detected.extend(signatures.iter().map(|s| s.name.to_string()));
    let iso = detect::is_iso(&sniff.head);
    // OpenStack's GPT inspector matches any MBR (boot signature, not a FAT boot sector),
    // not only a GPT's protective one: an isohybrid ISO is two formats.
    let gpt = detect::is_gpt(&sniff.head) || detect::is_mbr(&sniff.head);
    if iso {
        detected.push("iso".into());
    }
    if gpt {
        detected.push("gpt".into());
    }
    if detected.len() > 1 && !allowed(&detected, opts) {
        let f = Finding::unsafe_(
            vmsnap_core::rule::MULTIPLE_FORMATS,
            format!("Multiple formats detected: {}", detected.join(", ")),
        );
        rules.push(rule(vmsnap_core::rule::MULTIPLE_FORMATS, Some(&f), Some(0)));
    } else {
        rules.push(rule(vmsnap_core::rule::MULTIPLE_FORMATS, None, None));
    }
    if gpt {
        let fs = detect::mbr_findings(&sniff.head);
        if fs.is_empty() {
            rules.push(rule(crate::rule::MBR, None, None));
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
    let plugin = stack
        .entries
        .get(1)
        .and_then(|e| e.plugin)
        .map(|p| p.name)
        .or(failed);
    let signature = signatures.first().filter(|_| plugin.is_none());
    let format = plugin
        .or(signature.map(|s| s.name))
        .unwrap_or(if gpt {
            "gpt"
        } else if iso {
            "iso"
        } else {
            "raw"
        })
        .to_string();
    if let Some(claimed) = &opts.expected_format {
        let list: Vec<String> = claimed.split(',').map(names::canonical).collect();
        if list.contains(&format) {
            rules.push(rule(vmsnap_core::rule::FORMAT_MISMATCH, None, None));
        } else {
            let f = Finding::unsafe_(
                vmsnap_core::rule::FORMAT_MISMATCH,
                format!("declared format {claimed:?} but the image is {format:?}"),
            );
            rules.push(rule(vmsnap_core::rule::FORMAT_MISMATCH, Some(&f), Some(0)));
        }
    }
    for s in &signatures {
        for f in &s.findings {
            rules.push(rule(f.rule, Some(f), Some(0)));
        }
    }
    for (i, f) in stack.all_findings() {
        if f.rule == vmsnap_core::rule::MULTIPLE_FORMATS && i == 0 {
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
            // Formats usually report their references as findings themselves; a VM's
            // `references` finding sums its files up, each of which is still listed.
            if !own.contains(&f.rule) || f.rule == vmsnap_core::rule::REFERENCES {
                rules.push(rule(f.rule, Some(&f), Some(i)));
            }
        }
    }
    if refs == 0 {
        rules.push(rule(vmsnap_core::rule::EXTERNAL_REFERENCES, None, None));
        if let Some(f) = stack
            .entries
            .get(1)
            .and_then(|e| archive_of_disks(e.layer.as_ref()))
        {
            rules.push(rule(f.rule, Some(&f), Some(1)));
        }
    }
    // A refusal to open is a verdict naming the rule or limit the header breaks, unless
    // the bytes could not be read (I/O, or a stream that did not keep them).
    let judged = match &stack.error {
        Some(e) if !lacked() => refusal_rule(e).map(|id| (id, e)),
        _ => None,
    };
    if let Some((id, e)) = judged {
        let f = Finding::unsafe_(id, e.to_string());
        rules.push(rule(id, Some(&f), Some(0)));
    }
    let virtual_size = if plugin.is_some() {
        // Unknown when the format could not be opened (not the file's length).
        if stack.entries.len() < 2 {
            0
        } else {
            stack.default_selection().layer.len()
        }
    } else if let Some(s) = signature {
        s.virtual_size.unwrap_or(0)
    } else {
        stack.default_selection().layer.len()
    };
    let error = stack.error.as_ref().map(|e| e.to_string());
    let verdict = if error.is_some() && judged.is_none() {
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
        payload_offset: signature.and_then(|s| s.payload_offset),
        verdict,
        rules,
        error,
        failure: stack.error.as_ref().map(Failure::of),
    }
}

/// The rule a refusal to open stands for: the one the format named, else one for the
/// kind of header fault. `None` for failures to read, which are not verdicts.
fn refusal_rule(e: &vmsnap_core::Error) -> Option<&'static str> {
    if let Some(id) = e.rule() {
        return Some(id);
    }
    match e.kind() {
        ErrorKind::LimitExceeded => Some("limit"),
        ErrorKind::Malformed | ErrorKind::OutOfBounds => Some("malformed"),
        ErrorKind::Truncated => Some("truncated"),
        ErrorKind::Unsupported => Some("unsupported"),
        ErrorKind::Unsafe => Some("refused"),
        ErrorKind::Ambiguous => Some(vmsnap_core::rule::MULTIPLE_FORMATS),
        ErrorKind::PolicyDenied => Some(vmsnap_core::rule::EXTERNAL_REFERENCES),
        _ => None, // I/O, and caller errors
    }
}

/// A format whose layer is metadata holding its own guest disks (a Proxmox VMA backup) is
/// an archive, not a disk image: like a tar, a hypervisor would read the archive's bytes
/// as the disk. (Configurations whose disks are other files are judged by their
/// references instead.)
fn archive_of_disks(layer: &dyn vmsnap_core::Layer) -> Option<Finding> {
    if layer.space() != vmsnap_core::AddressSpace::Metadata {
        return None;
    }
    let disks: Vec<String> = layer
        .children()
        .into_iter()
        .filter(|c| c.layer.space() == vmsnap_core::AddressSpace::GuestDisk)
        .map(|c| c.name)
        .collect();
    if disks.is_empty() {
        return None;
    }
    Some(Finding::unsafe_(
        crate::rule::ARCHIVE,
        format!(
            "the {} archive holding {} disks ({}) is not a disk image: extract a disk first \
             (vmsnap convert --layer {} FILE OUT)",
            layer.name(),
            disks.len(),
            disks.join(", "),
            disks.first().map_or("", String::as_str),
        ),
    ))
}

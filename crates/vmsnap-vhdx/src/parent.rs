//! Differencing disks: the parent locator's paths, opened only through the
//! external-reference policy and accepted only when the parent's data write GUID is the
//! recorded `parent_linkage`.

use std::sync::Arc;

use vmsnap_core::{DiskFormat, ExternalRef, Finding, Layer, OpenCtx, RefDecision, RefKind};

use crate::header::active_header;
use crate::metadata::ParentLocator;
use crate::raw::{guid_text, parse_guid, Guid};

/// What resolving the parent gave.
#[derive(Debug, Default)]
pub struct ParentOutcome {
    /// The opened parent disk.
    pub layer: Option<Arc<dyn Layer>>,
    /// Every reference, followed or not.
    pub refs: Vec<ExternalRef>,
    /// Findings made on the way.
    pub findings: Vec<Finding>,
}

/// Normalises a stored path for the resolver (`\` to `/`, leading `./` dropped).
pub fn normalise(stored: &str) -> String {
    let mut s = stored.trim_end_matches('\0').replace('\\', "/");
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.to_string();
    }
    s
}

/// The names to try, in order: `relative_path`, `absolute_win32_path`, `volume_path`.
pub fn candidates(loc: &ParentLocator) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in ["relative_path", "absolute_win32_path", "volume_path"] {
        for (k, v) in &loc.entries {
            if k == key {
                let n = normalise(v);
                if !n.is_empty() && !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    out
}

/// Tries the candidates through the policy.
pub fn resolve(lower: &Arc<dyn Layer>, loc: &ParentLocator, ctx: &OpenCtx<'_>) -> ParentOutcome {
    let mut out = ParentOutcome::default();
    let linkage: Vec<Guid> = ["parent_linkage", "parent_linkage2"]
        .iter()
        .filter_map(|k| loc.get(k))
        .filter_map(parse_guid)
        .collect();
    if linkage.is_empty() {
        out.findings.push(Finding::unsafe_(
            vmsnap_core::rule::PARENT,
            "the parent locator has no usable parent_linkage GUID; no parent is opened",
        ));
    }
    let names = candidates(loc);
    for name in &names {
        if out.layer.is_some() || linkage.is_empty() {
            out.refs.push(ExternalRef {
                kind: RefKind::Parent,
                name: name.clone(),
                decision: RefDecision::Listed,
            });
            continue;
        }
        // Past the chain-depth cap the parent is unavailable, not the whole disk.
        let followed = ctx.follow_disk(
            RefKind::Parent,
            lower.path(),
            name,
            DiskFormat::Plugin(&crate::PLUGIN),
            |file| {
                let mut scratch = Vec::new();
                match active_header(file, &mut scratch) {
                    Ok(h) if linkage.contains(&h.data_write_guid) => Ok(()),
                    Ok(h) => {
                        let reason = format!(
                            "its data write GUID {} is not the recorded parent_linkage {}",
                            guid_text(&h.data_write_guid),
                            linkage.first().map(guid_text).unwrap_or_default()
                        );
                        out.findings.push(Finding::unsafe_(
                            vmsnap_core::rule::PARENT,
                            format!("parent candidate {name:?}: {reason}"),
                        ));
                        Err(reason)
                    }
                    Err(e) => Err(format!("not a VHDX: {e}")),
                }
            },
        );
        out.layer = followed.layer;
        out.refs.push(followed.reference);
    }
    if out.layer.is_none() {
        out.findings.push(Finding::unsafe_(
            vmsnap_core::rule::PARENT,
            format!(
                "differencing disk: parent ({}) was not opened; blocks and sectors it would supply are unavailable",
                names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    out
}

//! Differencing disks: the parent's names from the dynamic header's locators, opened only
//! through the external-reference policy, and checked against the recorded parent UUID.

use std::sync::Arc;

use vmsnap_core::{
    DiskFormat, ExternalRef, Finding, Layer, LayerExt, OpenCtx, RefDecision, RefKind, Result,
};

use crate::raw::{utf16_until_nul, uuid_text, DynHeader, Footer, FOOTER_COOKIE, MAX_LOCATOR_BYTES};

/// A parent name found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentName {
    /// Where it came from: a locator platform code or `header` (parent unicode name).
    pub source: String,
    /// The name exactly as stored.
    pub stored: String,
    /// The name handed to the resolver (separators normalised to `/`, `./` stripped,
    /// `file://` removed).
    pub name: String,
}

/// What resolving the parent gave.
#[derive(Debug, Default)]
pub struct ParentOutcome {
    /// The opened parent disk, when one was opened and its UUID matched.
    pub layer: Option<Arc<dyn Layer>>,
    /// Every reference, followed or not.
    pub refs: Vec<ExternalRef>,
    /// Findings made on the way.
    pub findings: Vec<Finding>,
    /// The names found.
    pub names: Vec<ParentName>,
}

/// Normalises a stored parent path for the resolver.
pub fn normalise(stored: &str) -> String {
    let mut s = stored.trim_end_matches('\0').replace('\\', "/");
    if let Some(rest) = s.strip_prefix("file://") {
        s = rest.to_string();
    }
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.to_string();
    }
    s
}

fn decode_locator(code: &[u8; 4], data: &[u8]) -> Option<String> {
    match code {
        b"W2ru" | b"W2ku" => Some(utf16_until_nul(data, false)),
        b"Wi2r" | b"Wi2k" | b"MacX" => {
            let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
            Some(String::from_utf8_lossy(data.get(..end).unwrap_or(&[])).into_owned())
        }
        _ => None,
    }
}

/// Collects the parent names in the order they are tried: relative locator, header name,
/// absolute locator, the deprecated and Mac ones.
pub fn names(lower: &dyn Layer, hdr: &DynHeader, findings: &mut Vec<Finding>) -> Vec<ParentName> {
    let mut out: Vec<ParentName> = Vec::new();
    let mut add = |source: String, stored: String| {
        let name = normalise(&stored);
        if !name.is_empty() && !out.iter().any(|n| n.name == name) {
            out.push(ParentName {
                source,
                stored,
                name,
            });
        }
    };
    let rank = |c: &[u8; 4]| match c {
        b"W2ru" => 0,
        b"W2ku" => 2,
        b"Wi2r" => 3,
        b"Wi2k" => 4,
        _ => 5,
    };
    let mut locs: Vec<_> = hdr.locators.iter().collect();
    locs.sort_by_key(|l| rank(&l.code));
    let mut header_added = false;
    for l in locs {
        if rank(&l.code) >= 2 && !header_added {
            add("header".into(), hdr.parent_name.clone());
            header_added = true;
        }
        let code = String::from_utf8_lossy(&l.code).into_owned();
        if l.length == 0 {
            continue;
        }
        if l.length > MAX_LOCATOR_BYTES {
            findings.push(
                Finding::warning(
                    vmsnap_core::rule::PARENT,
                    format!(
                        "parent locator {code:?} claims {} bytes, above the limit of {MAX_LOCATOR_BYTES}; ignored",
                        l.length
                    ),
                )
                .at(hdr.at),
            );
            continue;
        }
        let data = match lower.read_vec(
            l.offset,
            u64::from(l.length),
            u64::from(MAX_LOCATOR_BYTES),
            "parent locator",
        ) {
            Ok(d) => d,
            Err(e) => {
                findings.push(
                    Finding::warning(
                        vmsnap_core::rule::PARENT,
                        format!("parent locator {code:?} cannot be read: {e}"),
                    )
                    .at(l.offset),
                );
                continue;
            }
        };
        match decode_locator(&l.code, &data) {
            Some(s) => add(code, s),
            None => findings.push(
                Finding::info(
                    vmsnap_core::rule::PARENT,
                    format!("parent locator of platform {code:?} is not decoded"),
                )
                .at(l.offset),
            ),
        }
    }
    if !header_added {
        add("header".into(), hdr.parent_name.clone());
    }
    out
}

/// Reads the footer of a candidate parent (copy at 0, else at EOF).
fn parent_footer(layer: &dyn Layer) -> Option<Footer> {
    let size = layer.len();
    let head: [u8; 512] = layer.read_array(0).ok()?;
    if head.get(..8) == Some(FOOTER_COOKIE.as_slice()) {
        if let Ok(f) = Footer::parse(&head, 0) {
            return Some(f);
        }
    }
    let at = size.checked_sub(512)?;
    let tail: [u8; 512] = layer.read_array(at).ok()?;
    Footer::parse(&tail, at).ok()
}

/// Tries the parent names through the policy; the first that opens with the right UUID
/// becomes the parent.
pub fn resolve(
    lower: &Arc<dyn Layer>,
    hdr: &DynHeader,
    ctx: &OpenCtx<'_>,
) -> Result<ParentOutcome> {
    let mut out = ParentOutcome::default();
    out.names = names(lower.as_ref(), hdr, &mut out.findings);
    let want = uuid_text(&hdr.parent_uuid);
    for n in out.names.clone() {
        if out.layer.is_some() {
            out.refs.push(ExternalRef {
                kind: RefKind::Parent,
                name: n.name.clone(),
                decision: RefDecision::Listed,
            });
            continue;
        }
        // Past the chain-depth cap the parent is unavailable, not the whole disk.
        let followed = ctx.follow_disk(
            RefKind::Parent,
            lower.path(),
            &n.name,
            DiskFormat::Plugin(&crate::PLUGIN),
            |file| match parent_footer(file) {
                Some(f) if f.uuid == hdr.parent_uuid => Ok(()),
                Some(f) => {
                    let reason = format!(
                        "its unique id {} is not the recorded parent id {want}",
                        uuid_text(&f.uuid)
                    );
                    out.findings.push(Finding::unsafe_(
                        vmsnap_core::rule::PARENT,
                        format!("parent candidate {:?}: {reason}", n.name),
                    ));
                    Err(reason)
                }
                None => Err("not a VHD (no footer)".into()),
            },
        );
        out.layer = followed.layer;
        out.refs.push(followed.reference);
    }
    if out.layer.is_none() {
        out.findings.push(Finding::unsafe_(
            vmsnap_core::rule::PARENT,
            format!(
                "differencing disk: parent {want} ({}) was not opened; blocks it would supply are unavailable",
                out.names
                    .iter()
                    .map(|n| format!("{:?}", n.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_windows_paths() {
        assert_eq!(normalise(".\\base.vhd"), "base.vhd");
        assert_eq!(normalise("C:\\d\\base.vhd"), "C:/d/base.vhd");
        assert_eq!(normalise("file://localhost/x.vhd"), "localhost/x.vhd");
    }
}

//! The parent of a differencing VDI. A VDI names its parent only by UUID (`uuid_link`, the
//! parent's `uuid_image`; VirtualBox finds it in its media registry), so the parent is
//! looked for among the files the external-reference policy allows: the `.vdi` files in
//! the image's own directory (none under the `none` policy). Every candidate tried is
//! recorded; when none matches, the parent is unavailable.

use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{
    none_opened, DiskFormat, ExternalPolicy, ExternalRef, Finding, Layer, OpenCtx, RefDecision,
    RefKind, Result,
};

use crate::header::Header;
use crate::raw::HEADER_LEN;

/// At most this many `.vdi` files of a directory are tried as the parent.
pub const MAX_PARENT_CANDIDATES: usize = 256;

/// What looking for the parent found.
#[derive(Debug)]
pub struct ParentSearch {
    /// Every candidate tried, and the summary reference when none matched.
    pub refs: Vec<ExternalRef>,
    /// Findings about candidates (a UUID that matches but a modification UUID that does
    /// not).
    pub findings: Vec<Finding>,
    /// The opened parent, or the stand-in for one that was not found.
    pub layer: Arc<dyn Layer>,
    /// Whether it was found and opened.
    pub opened: bool,
}

/// The `.vdi` files beside `image` (sorted, the image itself excluded), at most
/// [`MAX_PARENT_CANDIDATES`].
fn siblings(image: &Path) -> std::result::Result<Vec<String>, String> {
    let dir = match image.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let own = image.file_name();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {} for .vdi files: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| Some(n.as_os_str()) != own)
        .filter_map(|n| n.into_string().ok())
        .filter(|n| {
            Path::new(n)
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("vdi"))
        })
        .collect();
    names.sort();
    names.truncate(MAX_PARENT_CANDIDATES);
    Ok(names)
}

/// Looks for the parent of `header` (a differencing image read from `lower`) among the
/// files the policy allows, `size` bytes of guest disk long.
pub fn find(
    lower: &Arc<dyn Layer>,
    header: &Header,
    size: u64,
    ctx: &OpenCtx<'_>,
) -> Result<ParentSearch> {
    let want = header.uuid_link;
    let mut refs = Vec::new();
    let mut findings = Vec::new();
    let candidates = match (ctx.resolver.policy(), lower.path()) {
        // Under `none` nothing is listed: the UUID itself is the refused reference.
        (ExternalPolicy::Deny, _) => Err(None),
        (_, None) => Err(Some("the image has no directory to look in".to_string())),
        (_, Some(p)) => siblings(p).map_err(Some),
    };
    let names = match candidates {
        Ok(n) => n,
        Err(None) => {
            let (r, _) = ctx
                .resolver
                .open(RefKind::Parent, lower.path(), &want.to_string());
            let layer = ctx.resolver.unavailable(&r, "vdi", lower.path(), size);
            refs.push(r);
            return Ok(ParentSearch {
                refs,
                findings,
                layer,
                opened: false,
            });
        }
        Err(Some(reason)) => {
            let r = ExternalRef {
                kind: RefKind::Parent,
                name: want.to_string(),
                decision: RefDecision::Failed { reason },
            };
            let layer = ctx.resolver.unavailable(&r, "vdi", lower.path(), size);
            refs.push(r);
            return Ok(ParentSearch {
                refs,
                findings,
                layer,
                opened: false,
            });
        }
    };
    for name in &names {
        let followed = ctx
            .follow_disk(
                RefKind::Parent,
                lower.path(),
                name,
                DiskFormat::Plugin(&crate::PLUGIN),
                |file| {
                    let mut head = [0u8; HEADER_LEN];
                    let parsed = if file.len() < HEADER_LEN as u64 {
                        None
                    } else {
                        file.read_at(0, &mut head)
                            .ok()
                            .and_then(|()| Header::parse(&head).ok())
                    };
                    match parsed {
                        Some(h) if h.uuid_image == want => {
                            if !header.uuid_parent.is_null()
                                && h.uuid_last_snap != header.uuid_parent
                            {
                                findings.push(Finding::warning(
                                    vmsnap_core::rule::PARENT,
                                    format!(
                                        "parent {name:?} was modified after this image was made: \
                                         its modification UUID is {}, this image recorded {}",
                                        h.uuid_last_snap, header.uuid_parent
                                    ),
                                ));
                            }
                            Ok(())
                        }
                        Some(h) => Err(format!(
                            "its UUID {} is not the parent UUID {want}",
                            h.uuid_image
                        )),
                        None => Err("not a VDI image".into()),
                    }
                },
            )
            .deny_too_deep()?;
        refs.push(followed.reference);
        if let Some(layer) = followed.layer {
            return Ok(ParentSearch {
                refs,
                findings,
                layer,
                opened: true,
            });
        }
    }
    let summary = none_opened(RefKind::Parent, &want.to_string(), &refs);
    let layer = ctx
        .resolver
        .unavailable(&summary, "vdi", lower.path(), size);
    refs.push(summary);
    Ok(ParentSearch {
        refs,
        findings,
        layer,
        opened: false,
    })
}

//! Opening the registry's media through the external-reference resolver, each image
//! once, with the differencing chain the registry says.
//!
//! A VDI names its parent only by UUID, so the VDI plugin on its own looks for the parent
//! among the `.vdi` files beside the image; VirtualBox keeps differencing images in the
//! snapshot folder and the base beside the settings, so that search would miss it (or
//! find another image with that UUID). Here the registry decides: each VDI is opened
//! through the resolver and its header checked against the registry (its `uuid_image` is
//! the medium's UUID; a differencing image's `uuid_link` is its registry parent's UUID, a
//! base image is not differencing), and a differencing image is opened with the parent
//! the registry names ([`vmsnap_vdi::Vdi::open_with_parent`]). A mismatch is an unsafe
//! `registry` finding and the image is not read. Media in other formats are opened by
//! their own plugin ([`vmsnap_core::OpenCtx::follow_disk`]), which follows their own
//! parent references (a registry parent is then reported, not checked).

use std::path::Path;
use std::sync::Arc;

use vmsnap_core::{DiskFormat, ExternalRef, Finding, Layer, OpenCtx, RefDecision, RefKind, Result};
use vmsnap_vdi::parent::ParentSearch;
use vmsnap_vdi::{Header as VdiHeader, Vdi, HEADER_LEN as VDI_HEADER_LEN};

use crate::config::{Machine, Medium};
use crate::layer::NAME;
use crate::raw::plugin_of;
use crate::rule;

/// What became of one medium.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The reader, or the stand-in whose reads fail (or read zeros under
    /// `--missing zeros`).
    pub layer: Arc<dyn Layer>,
    /// Whether the image itself was opened (its ancestors may still be missing).
    pub opened: bool,
    /// Its reference.
    pub reference: ExternalRef,
}

/// Opens media on demand, each once.
pub struct Media<'a, 'c> {
    ctx: &'a OpenCtx<'c>,
    from: Option<&'a Path>,
    machine: &'a Machine,
    done: Vec<Option<Opened>>,
    /// Every reference, in the order made.
    pub refs: Vec<ExternalRef>,
    /// What opening found.
    pub findings: Vec<Finding>,
}

impl<'a, 'c> Media<'a, 'c> {
    /// Media of `machine`, whose settings file is `from`.
    pub fn new(ctx: &'a OpenCtx<'c>, from: Option<&'a Path>, machine: &'a Machine) -> Self {
        Media {
            ctx,
            from,
            machine,
            done: vec![None; machine.media.len()],
            refs: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// Each medium's reference (`None` for one no attachment needed).
    pub fn references(&self) -> Vec<Option<ExternalRef>> {
        self.done
            .iter()
            .map(|o| o.as_ref().map(|o| o.reference.clone()))
            .collect()
    }

    /// Opens medium `idx` (its ancestors first).
    pub fn open(&mut self, idx: usize) -> Result<Opened> {
        if let Some(Some(o)) = self.done.get(idx) {
            return Ok(o.clone());
        }
        let machine = self.machine;
        let Some(m) = machine.media.get(idx) else {
            return Err(vmsnap_core::Error::new(
                vmsnap_core::ErrorKind::NotFound,
                format!("no medium {idx}"),
            ));
        };
        // Ancestors first (recursion depth is the registry depth, capped here).
        let parent = match m.parent {
            Some(p) if m.depth <= vmsnap_core::limits::MAX_CHAIN_DEPTH as usize => {
                Some(self.open(p)?)
            }
            _ => None,
        };
        let o = self.open_one(m, parent)?;
        self.refs.push(o.reference.clone());
        if let Some(slot) = self.done.get_mut(idx) {
            *slot = Some(o.clone());
        }
        Ok(o)
    }

    fn open_one(&mut self, m: &Medium, parent: Option<Opened>) -> Result<Opened> {
        let what = format!("medium {} ({:?})", m.uuid, m.location);
        if m.encrypted {
            let r = ExternalRef {
                kind: RefKind::VmFile,
                name: m.location.clone(),
                decision: RefDecision::Listed,
            };
            self.findings.push(Finding::unsafe_(
                rule::ENCRYPTED,
                format!("{what} is encrypted (CRYPT properties): recognised, not read"),
            ));
            return Ok(self.stand_in(r, 0));
        }
        if m.depth > vmsnap_core::limits::MAX_CHAIN_DEPTH as usize {
            let reason = format!(
                "it is {} links deep in the registry; at most {} are followed",
                m.depth,
                vmsnap_core::limits::MAX_CHAIN_DEPTH
            );
            return Ok(self.failed(m, reason, 0));
        }
        if plugin_of(&m.format) != Some("vdi") {
            // `follow_disk` goes the one link deeper itself.
            return Ok(match self.ctx_at(m.depth) {
                Ok(ctx) => self.open_other(m, &what, &ctx),
                Err(e) => self.failed(m, e.to_string(), 0),
            });
        }
        let ctx = match self.ctx_at(m.depth.saturating_add(1)) {
            Ok(ctx) => ctx,
            Err(e) => return Ok(self.failed(m, e.to_string(), 0)),
        };
        let followed = ctx.follow_file(RefKind::VmFile, self.from, &m.location);
        let Some(file) = followed.layer.clone() else {
            let len = parent.as_ref().map_or(0, |p| p.layer.len());
            return Ok(self.stand_in(followed.reference, len));
        };
        let header = match read_vdi_header(file.as_ref()) {
            Ok(h) => h,
            Err(e) => return Ok(self.failed(m, format!("not a VDI image: {e}"), 0)),
        };
        if let Err(reason) = self.check_against_registry(m, &header) {
            self.findings.push(Finding::unsafe_(
                rule::REGISTRY,
                format!("{what}: {reason}; not read"),
            ));
            return Ok(self.failed(m, reason, header.virtual_size()));
        }
        let opened = match parent {
            None => Vdi::open(file, &ctx),
            Some(p) => {
                if p.layer.len() != header.virtual_size() {
                    self.findings.push(Finding::warning(
                        rule::REGISTRY,
                        format!(
                            "{what} is {} bytes, its parent {}",
                            header.virtual_size(),
                            p.layer.len()
                        ),
                    ));
                }
                let parent_ref = ExternalRef {
                    kind: RefKind::Parent,
                    ..p.reference.clone()
                };
                let search = ParentSearch {
                    refs: vec![parent_ref],
                    findings: Vec::new(),
                    layer: p.layer.clone(),
                    opened: p.opened,
                };
                Vdi::open_with_parent(file, &ctx, search)
            }
        };
        match opened {
            Ok(v) => Ok(Opened {
                layer: Arc::new(v),
                opened: true,
                reference: followed.reference,
            }),
            Err(e) => Ok(self.failed(m, e.to_string(), header.virtual_size())),
        }
    }

    /// The context `links` links below the settings file (capped by
    /// [`OpenCtx::next_link`]).
    fn ctx_at(&self, links: usize) -> Result<OpenCtx<'c>> {
        let mut ctx = *self.ctx;
        for _ in 0..links {
            ctx = ctx.next_link()?;
        }
        Ok(ctx)
    }

    /// The registry's word against the VDI header's.
    fn check_against_registry(&self, m: &Medium, h: &VdiHeader) -> std::result::Result<(), String> {
        let own = h.uuid_image.to_string();
        if own != m.uuid {
            return Err(format!(
                "the image's UUID is {own}, the registry says {}",
                m.uuid
            ));
        }
        let registry_parent = m
            .parent
            .and_then(|p| self.machine.media.get(p))
            .map(|p| p.uuid.as_str());
        match (registry_parent, h.is_differencing()) {
            (Some(want), true) => {
                let link = h.uuid_link.to_string();
                if link != want {
                    return Err(format!(
                        "the image's parent UUID is {link}, the registry's parent is {want}"
                    ));
                }
            }
            (Some(want), false) => {
                return Err(format!(
                    "the registry makes it a differencing image of {want}, but it is a {} image",
                    h.type_name()
                ))
            }
            (None, true) => {
                return Err(format!(
                    "it is a differencing image of {}, but the registry lists it as a base \
                     image",
                    h.uuid_link
                ))
            }
            (None, false) => {}
        }
        Ok(())
    }

    /// A medium in another format: its own plugin, its own parent references.
    fn open_other(&mut self, m: &Medium, what: &str, ctx: &OpenCtx<'_>) -> Opened {
        if m.parent.is_some() {
            self.findings.push(Finding::info(
                rule::REGISTRY,
                format!(
                    "{what} ({}) is a differencing image in the registry; its own reader \
                     follows its parent reference, which is not checked against the registry",
                    m.format
                ),
            ));
        }
        let format = DiskFormat::Named(plugin_of(&m.format));
        let f = ctx.follow_disk(RefKind::VmFile, self.from, &m.location, format, |_| Ok(()));
        match f.layer.clone() {
            Some(layer) => Opened {
                layer,
                opened: true,
                reference: f.reference,
            },
            None => self.stand_in(f.reference, 0),
        }
    }

    /// A reference that was allowed but is not read: the stand-in.
    fn failed(&mut self, m: &Medium, reason: String, len: u64) -> Opened {
        let r = ExternalRef {
            kind: RefKind::VmFile,
            name: m.location.clone(),
            decision: RefDecision::Failed { reason },
        };
        self.stand_in(r, len)
    }

    fn stand_in(&mut self, reference: ExternalRef, len: u64) -> Opened {
        let layer = self
            .ctx
            .resolver
            .unavailable(&reference, NAME, self.from, len);
        Opened {
            layer,
            opened: false,
            reference,
        }
    }
}

/// The VDI header of `file`.
fn read_vdi_header(file: &dyn Layer) -> Result<VdiHeader> {
    if file.len() < VDI_HEADER_LEN as u64 {
        return Err(vmsnap_core::Error::truncated(
            0,
            format!("{} bytes are too short for a VDI header", file.len()),
        ));
    }
    let mut head = [0u8; VDI_HEADER_LEN];
    file.read_at(0, &mut head)?;
    VdiHeader::parse(&head)
}

//! Following a reference: the one open sequence for backing files, parent disks, extents,
//! external data files and companions. The name goes through the [`Resolver`](crate::Resolver) (the
//! policy decides, every attempt is logged); a disk is opened one link further down the
//! chain, capped at [`MAX_CHAIN_DEPTH`]; whatever stops it is written into the reference
//! (`Denied`, or `Failed` with the reason), and a reference that was not opened is stood
//! in for by an [`UnavailableLayer`] ([`Followed::stand_in`]), never by zeros.
//!
//! ```
//! use std::path::Path;
//! use vmsnap_core::{
//!     DiskFormat, ErrorKind, ExternalPolicy, Layer, OpenCtx, Options, RefDecision, RefKind,
//!     Registry, Resolver,
//! };
//!
//! let (resolver, registry, options) =
//!     (Resolver::new(ExternalPolicy::Deny), Registry::empty(), Options::new());
//! let ctx = OpenCtx::new(&resolver, &registry, &options);
//! let top = Path::new("/images/top.qcow2");
//! // qcow2 names its backing file "base.qcow2"; the `none` policy refuses it.
//! let backing = ctx
//!     .follow_disk(RefKind::Backing, Some(top), "base.qcow2", DiskFormat::Named(None), |_| Ok(()))
//!     .deny_too_deep()
//!     .unwrap();
//! assert!(backing.layer.is_none());
//! assert!(matches!(backing.reference.decision, RefDecision::Denied { .. }));
//! let stand_in = backing.stand_in(&ctx, "qcow2", Some(top), 1 << 20);
//! let err = stand_in.read_at(0, &mut [0u8; 512]).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Unavailable);
//! ```

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::layer::{FileLayer, Layer};
use crate::limits::MAX_CHAIN_DEPTH;
use crate::plugin::{OpenCtx, Plugin};
use crate::policy::{ExternalRef, RefDecision, RefKind};
use crate::unavailable::UnavailableLayer;

/// How the file a reference names is read as a disk of the chain.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum DiskFormat<'f> {
    /// The format the referring file names (qcow2's and QED's backing format): that
    /// plugin of the registry, `raw`/`file` as plain bytes; probed among the registry's
    /// disk plugins when `None` (plain bytes when none recognises it).
    Named(Option<&'f str>),
    /// This plugin, whether or not the registry has it (a parent disk is the format of
    /// its child).
    Plugin(&'static Plugin),
}

/// One reference followed (see [`OpenCtx::follow_disk`], [`OpenCtx::follow_file`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Followed {
    /// The reference as the file names it and what became of it: `Opened` when `layer`
    /// is there, otherwise `Denied` or `Failed` with the reason.
    pub reference: ExternalRef,
    /// The opened file or disk.
    pub layer: Option<Arc<dyn Layer>>,
    /// The chain is deeper than [`MAX_CHAIN_DEPTH`] here (an image naming itself, say):
    /// the error, which the reference's `Failed` reason repeats.
    pub too_deep: Option<Error>,
    /// Why the file itself could not be opened (refused by the policy, missing,
    /// unreadable), as the resolver said it; `None` once the file was opened, even when
    /// opening it as a disk failed afterwards (that reason is in the reference).
    pub open_error: Option<Error>,
}

impl Followed {
    /// Fails with the chain-depth error when the chain was too deep: what a format that
    /// refuses a too deep chain as a whole (as qemu-img does) calls. Formats that read on
    /// with the reference unavailable ignore [`Followed::too_deep`].
    pub fn deny_too_deep(mut self) -> Result<Self> {
        match self.too_deep.take() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    /// Whether it was opened.
    pub fn opened(&self) -> bool {
        self.layer.is_some()
    }

    /// The stand-in for the reference when it was not opened: `len` bytes whose reads
    /// fail (or read zeros when the reader opted in), needed by layer `referrer` of the
    /// file at `referrer_path`; recorded with the resolver
    /// ([`crate::Resolver::unavailable`]).
    pub fn stand_in(
        &self,
        ctx: &OpenCtx<'_>,
        referrer: &str,
        referrer_path: Option<&Path>,
        len: u64,
    ) -> Arc<UnavailableLayer> {
        ctx.resolver
            .unavailable(&self.reference, referrer, referrer_path, len)
    }

    /// The opened layer, or the [`Followed::stand_in`].
    pub fn layer_or_stand_in(
        &self,
        ctx: &OpenCtx<'_>,
        referrer: &str,
        referrer_path: Option<&Path>,
        len: u64,
    ) -> Arc<dyn Layer> {
        match &self.layer {
            Some(l) => l.clone(),
            None => self.stand_in(ctx, referrer, referrer_path, len),
        }
    }

    /// For a file looked for by convention rather than named (Parallels' `Snapshots.xml`,
    /// a `.vmx`'s `<stem>.vmsd`): `None` when it could not be opened, since its absence is
    /// normal and then it is no reference; when the policy refused it, the reason says that
    /// it may not exist, since nothing was looked at.
    pub fn by_convention(mut self) -> Option<Self> {
        match &mut self.reference.decision {
            RefDecision::Failed { .. } => None,
            RefDecision::Denied { reason } => {
                reason.push_str("; looked for by convention, it may not exist");
                Some(self)
            }
            _ => Some(self),
        }
    }

    fn failed(mut self, reason: String) -> Self {
        self.reference.decision = RefDecision::Failed { reason };
        self.layer = None;
        self
    }
}

/// A file a VM configuration names and what became of it, as the VM keeps it: the
/// reference and, once opened, its layer (or, where the format reads on without it, a
/// stand-in: then [`Link::opened`] still says no).
#[derive(Debug, Clone)]
pub struct Link {
    /// The reference: the name as written, opened, denied, failed or only listed.
    pub reference: ExternalRef,
    /// The opened disk or file, or a stand-in for one that was not opened.
    pub layer: Option<Arc<dyn Layer>>,
}

impl Link {
    /// A file the format names and does not open (a host device, a disk of an encrypted
    /// VM): [`RefDecision::Listed`].
    pub fn listed(kind: RefKind, name: &str) -> Link {
        Link {
            reference: ExternalRef {
                kind,
                name: name.to_string(),
                decision: RefDecision::Listed,
            },
            layer: None,
        }
    }

    /// Whether the file itself was opened (a stand-in is not).
    pub fn opened(&self) -> bool {
        matches!(self.reference.decision, RefDecision::Opened { .. })
    }
}

impl From<Followed> for Link {
    fn from(f: Followed) -> Link {
        Link {
            reference: f.reference,
            layer: f.layer,
        }
    }
}

impl<'a> OpenCtx<'a> {
    /// The context one link further down a backing or parent chain, or a
    /// [`ErrorKind::LimitExceeded`] error past [`MAX_CHAIN_DEPTH`].
    pub fn next_link(&self) -> Result<OpenCtx<'a>> {
        let next = self.deeper();
        if next.depth > MAX_CHAIN_DEPTH {
            return Err(Error::limit(
                "backing/parent chain depth",
                u64::from(next.depth),
                u64::from(MAX_CHAIN_DEPTH),
            ));
        }
        Ok(next)
    }

    /// Follows a reference to plain bytes (an extent, an external data file, a companion
    /// file): `name`, a `kind` reference of the file at `from`, through the resolver,
    /// never probed.
    pub fn follow_file(&self, kind: RefKind, from: Option<&Path>, name: &str) -> Followed {
        let (reference, src) = self.resolver.open(kind, from, name);
        let (layer, open_error) = match src {
            Ok(s) => (Some(Arc::new(FileLayer::new(s)) as Arc<dyn Layer>), None),
            Err(e) => (None, Some(e)),
        };
        Followed {
            reference,
            layer,
            too_deep: None,
            open_error,
        }
    }

    /// Follows a reference to a disk of the chain (a backing file, a parent disk): `name`,
    /// a `kind` reference of the file at `from`, through the resolver; then `verify` sees
    /// the file and may refuse it with a reason (a parent whose unique id is not the one
    /// recorded); then it is opened as `format` one link deeper. Whatever stops it is in
    /// the reference; past the depth cap, also in [`Followed::too_deep`].
    pub fn follow_disk(
        &self,
        kind: RefKind,
        from: Option<&Path>,
        name: &str,
        format: DiskFormat<'_>,
        verify: impl FnOnce(&dyn Layer) -> std::result::Result<(), String>,
    ) -> Followed {
        let followed = self.follow_file(kind, from, name);
        let Some(file) = followed.layer.clone() else {
            return followed;
        };
        if let Err(reason) = verify(file.as_ref()) {
            return followed.failed(reason);
        }
        let opened = match format {
            DiskFormat::Named(name) => self.registry.open_chained(file, name, self),
            DiskFormat::Plugin(p) => self.next_link().and_then(|next| (p.open)(file, &next)),
        };
        match opened {
            Ok(layer) => Followed {
                layer: Some(layer),
                ..followed
            },
            Err(e) if e.kind() == ErrorKind::LimitExceeded => {
                let e = e.during(match kind {
                    RefKind::Backing => "opening the backing chain",
                    _ => "opening the parent chain",
                });
                let mut f = followed.failed(e.to_string());
                f.too_deep = Some(e);
                f
            }
            Err(e) => followed.failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{Options, PluginKind, Probe, SniffWindow};
    use crate::policy::{ExternalPolicy, Resolver};
    use crate::registry::Registry;
    use crate::source::{MemSource, Source};
    use crate::AddressSpace;

    /// Opens a "disk" whose bytes name its parent: the file itself, so the chain loops.
    fn open_looping(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
        let f = ctx
            .follow_disk(
                RefKind::Parent,
                Some(Path::new("/d/loop.img")),
                "loop.img",
                DiskFormat::Plugin(&LOOP),
                |_| Ok(()),
            )
            .deny_too_deep()?;
        Ok(f.layer.unwrap_or(lower))
    }
    fn no(_: &SniffWindow<'_>) -> Probe {
        Probe::No("test")
    }
    static LOOP: Plugin = Plugin {
        name: "loop",
        kind: PluginKind::Disk,
        priority: 1,
        stacks_on: &[AddressSpace::File],
        summary: "",
        options: &[],
        probe: no,
        open: open_looping,
    };

    fn resolver() -> Resolver {
        Resolver::with_opener(ExternalPolicy::Any, |p| {
            if p == Path::new("/d/loop.img") {
                Ok(Arc::new(MemSource::new(vec![1u8; 512])) as Arc<dyn Source>)
            } else {
                Err(Error::new(ErrorKind::Io, "no such file"))
            }
        })
    }

    #[test]
    fn a_chain_naming_itself_stops_at_the_depth_cap() {
        let (r, reg, o) = (resolver(), Registry::empty(), Options::new());
        let ctx = OpenCtx::new(&r, &reg, &o);
        let file: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(vec![0]))));
        let e = open_looping(file, &ctx).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert!(e.to_string().contains("opening the parent chain"), "{e}");
        // Every link was resolved once: MAX_CHAIN_DEPTH opened, the next refused.
        assert_eq!(r.log().len(), MAX_CHAIN_DEPTH as usize + 1);
    }

    #[test]
    fn a_refused_verification_or_a_missing_file_is_a_failed_reference_and_a_stand_in() {
        let (r, reg, o) = (resolver(), Registry::empty(), Options::new());
        let ctx = OpenCtx::new(&r, &reg, &o);
        let from = Some(Path::new("/d/top.img"));
        let f = ctx.follow_disk(
            RefKind::Parent,
            from,
            "loop.img",
            DiskFormat::Named(Some("raw")),
            |_| Err("its unique id is not the recorded one".into()),
        );
        assert!(!f.opened());
        assert_eq!(
            f.reference.decision,
            RefDecision::Failed {
                reason: "its unique id is not the recorded one".into()
            }
        );
        let l = f.layer_or_stand_in(&ctx, "top", from, 4096);
        assert_eq!(l.len(), 4096);
        assert_eq!(
            l.read_at(0, &mut [0u8; 8]).unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        let f = ctx.follow_disk(
            RefKind::Parent,
            from,
            "loop.img",
            DiskFormat::Named(Some("raw")),
            |_| Ok(()),
        );
        assert!(f.opened());
        assert_eq!(f.layer.map(|l| l.len()), Some(512));
        let f = ctx.follow_file(RefKind::Extent, from, "gone.img");
        assert!(matches!(f.reference.decision, RefDecision::Failed { .. }));
        assert!(f.too_deep.is_none());
        assert_eq!(r.unavailable_refs().len(), 1);
    }
}

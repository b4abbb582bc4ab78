//! The package layer (`ovf` for a descriptor, `ova` for an archive): metadata space, it
//! reads as the file's own bytes; each disk drive is a named child `disk:<bus><n>:<unit>`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use vmsnap_core::{
    DiskFormat, Error, ExternalRef, Finding, Layer, LayerExt, NamedLayer, OpenCtx, RefDecision,
    RefKind, Result, ResultExt,
};

use crate::archive::Archive;
use crate::descriptor::Descriptor;
use crate::manifest::Manifest;
use crate::package::{Opened, Package};
use crate::raw::{MAX_CHAIN_WALK, MAX_MANIFEST, MAX_XML_LEN};
use crate::rule::MANIFEST;

/// The plugin and layer name of a descriptor.
pub const NAME: &str = "ovf";
/// The plugin and layer name of an archive.
pub const OVA_NAME: &str = "ova";

/// An open OVF descriptor or OVA archive.
#[derive(Debug)]
pub struct Ovf {
    name: &'static str,
    lower: Arc<dyn Layer>,
    package: Package,
    archive: Option<Archive>,
    /// A `.ovf`'s manifest (`<stem>.mf` beside it): the reference, and its name and text
    /// when it was read.
    manifest: Option<(ExternalRef, Option<(String, Manifest)>)>,
    /// The manifest's verification, made once when first asked for.
    verified: OnceLock<(Vec<Finding>, Value)>,
}

impl Ovf {
    /// Opens the `.ovf` descriptor on `lower`; every file it names is opened through
    /// `ctx` (`follow_disk`, the format probed among the registry's disk plugins).
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_ovf(lower, ctx).in_layer(NAME)
    }

    fn open_ovf(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        let bytes = lower.read_vec(0, lower.len(), MAX_XML_LEN, "OVF descriptor")?;
        let descriptor = Descriptor::parse(&bytes)?;
        let from: Option<PathBuf> = lower.path().map(Path::to_path_buf);
        let package = Package::build(descriptor, ctx, NAME, from.as_deref(), |f| {
            let followed = ctx.follow_disk(
                RefKind::VmFile,
                from.as_deref(),
                &f.href,
                DiskFormat::Named(None),
                |_| Ok(()),
            );
            Opened {
                status: followed.reference.decision.describe(),
                reference: Some(followed.reference),
                layer: followed.layer,
            }
        });
        let manifest = open_manifest(from.as_deref(), ctx);
        Ok(Ovf {
            name: NAME,
            lower,
            package,
            archive: None,
            manifest,
            verified: OnceLock::new(),
        })
    }

    /// Opens the `.ova` archive on `lower`: its disks are its members, read in place.
    pub fn open_ova(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_ova_inner(lower, ctx).in_layer(OVA_NAME)
    }

    fn open_ova_inner(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        let archive = Archive::read(lower.as_ref())?;
        let bytes = archive.descriptor_bytes(lower.as_ref())?;
        let descriptor = Descriptor::parse(&bytes).map_err(|e| {
            // A tar holding an .ovf that is not OVF is a broken OVA, not another format.
            if e.kind() == vmsnap_core::ErrorKind::Declined {
                Error::malformed(0, format!("the .ovf member is not an OVF descriptor: {e}"))
            } else {
                e
            }
        })?;
        let package = Package::build(descriptor, ctx, OVA_NAME, lower.path(), |f| {
            archive.open_disk(&lower, f, ctx)
        });
        Ok(Ovf {
            name: OVA_NAME,
            lower,
            package,
            archive: Some(archive),
            manifest: None,
            verified: OnceLock::new(),
        })
    }

    /// The descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.package.descriptor
    }

    /// The drives with their disks.
    pub fn package(&self) -> &Package {
        &self.package
    }

    /// The archive's members, for an OVA.
    pub fn archive(&self) -> Option<&Archive> {
        self.archive.as_ref()
    }

    /// The manifest's findings and per-file results: an OVA's against its members, a
    /// `.ovf`'s against itself and the disk files it opened.
    fn verification(&self) -> &(Vec<Finding>, Value) {
        self.verified.get_or_init(|| match &self.archive {
            Some(a) => a.verify(&self.lower),
            None if matches!(&self.manifest, Some((_, None))) => {
                let r = self.manifest.as_ref().map(|(r, _)| r);
                let what = r.map(|r| format!("{:?} {}", r.name, r.decision.describe()));
                (
                    vec![Finding::warning(
                        MANIFEST,
                        format!(
                            "the manifest {}: no digest is verified",
                            what.unwrap_or_default()
                        ),
                    )],
                    Value::Null,
                )
            }
            None => {
                let mf = self.manifest.as_ref().and_then(|(_, m)| m.as_ref());
                let mut files: Vec<(String, Arc<dyn Layer>)> = Vec::new();
                let own = self.lower.path().and_then(Path::file_name);
                if let Some(n) = own.and_then(|n| n.to_str()) {
                    files.push((n.to_string(), self.lower.clone()));
                }
                for d in &self.package.disks {
                    if let (Some(f), Some(l)) = (&d.file, &d.opened.layer) {
                        if !files.iter().any(|(n, _)| *n == f.href) {
                            files.push((f.href.clone(), base_file(l)));
                        }
                    }
                }
                crate::manifest::verify(mf, &files, &[])
            }
        })
    }

    fn summary(&self, full: bool) -> Value {
        let d = &self.package.descriptor;
        let mut v = json!({
            "format": self.name,
            "data": "the file's bytes; each disk is a layer: --layer disk:<bus><n>:<unit>",
            "ovf_version": d.version,
            "ovf_major": d.major,
            "systems": self.package.systems_json(),
            "disks": self.package.disks_json(),
        });
        if let (Some(o), Some((r, m))) = (v.as_object_mut(), &self.manifest) {
            o.insert(
                "manifest".into(),
                json!({
                    "file": r.name,
                    "status": r.decision.describe(),
                    "results": self.verification().1,
                    "entries": if full { m.as_ref().map(|(_, m)| m.to_json()) } else { None },
                }),
            );
        }
        if let (Some(o), Some(a)) = (v.as_object_mut(), &self.archive) {
            let mut aj = a.to_json();
            if let Some(m) = aj.as_object_mut() {
                m.insert("manifest_results".into(), self.verification().1.clone());
            }
            o.insert("archive".into(), aj);
            if full {
                o.insert(
                    "manifest".into(),
                    json!(a.manifest.as_ref().map(|(_, m)| m.to_json())),
                );
            }
        }
        if let (Some(o), true) = (v.as_object_mut(), full) {
            o.insert("descriptor".into(), d.to_json());
        }
        v
    }
}

impl Ovf {
    /// The references the package makes itself: its disk files (and a `.ovf`'s manifest).
    fn own_refs(&self) -> Vec<ExternalRef> {
        let mut v = self.package.refs();
        v.extend(self.manifest.iter().map(|(r, _)| r.clone()));
        v
    }
}

/// The bottom of a disk's layers (the file its `href` names: a VMDK descriptor, not its
/// extents; the file itself for raw bytes).
fn base_file(disk: &Arc<dyn Layer>) -> Arc<dyn Layer> {
    let mut l = disk.clone();
    for _ in 0..MAX_CHAIN_WALK {
        match l.lower().into_iter().next() {
            Some(below) => l = below,
            None => break,
        }
    }
    l
}

/// `<stem>.mf` beside the descriptor, through the resolver. Its absence is normal (then it
/// is not a reference); a manifest that cannot be read is a failed reference.
fn open_manifest(
    from: Option<&Path>,
    ctx: &OpenCtx<'_>,
) -> Option<(ExternalRef, Option<(String, Manifest)>)> {
    let name = format!("{}.mf", from?.file_stem()?.to_str()?);
    let f = ctx.follow_file(RefKind::Companion, from, &name);
    if matches!(f.reference.decision, RefDecision::Failed { .. }) {
        return None;
    }
    let mut reference = f.reference;
    let m = f.layer.and_then(
        |l| match l.read_vec(0, l.len(), MAX_MANIFEST, "OVF manifest") {
            Ok(b) => Some((name.clone(), Manifest::parse(&b))),
            Err(e) => {
                reference.decision = RefDecision::Failed {
                    reason: e.to_string(),
                };
                None
            }
        },
    );
    Some((reference, m))
}

impl Layer for Ovf {
    vmsnap_core::metadata_layer!(self => self.name);
    fn describe(&self) -> Value {
        self.summary(false)
    }
    fn meta(&self) -> Value {
        self.summary(true)
    }
    fn findings(&self) -> Vec<Finding> {
        let mut v = self.package.findings.clone();
        if let Some(a) = &self.archive {
            v.extend(a.findings.iter().cloned());
        }
        v.extend(self.verification().0.iter().cloned());
        let what = match self.name {
            NAME => "an OVF descriptor",
            _ => "an OVA package",
        };
        v.extend(vmsnap_core::references_finding(what, &self.own_refs()));
        // Each file, opened or not, is reported through its reference (`external_refs`).
        v
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        let mut v = self.own_refs();
        v.extend(self.package.disk_refs());
        v
    }
    fn children(&self) -> Vec<NamedLayer> {
        self.package.children()
    }
    fn extract(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(a) = &self.archive else {
            return Ok(None);
        };
        match a.member(name) {
            Some(m) if m.size <= MAX_XML_LEN => self
                .lower
                .read_vec(m.offset, m.size, MAX_XML_LEN, "OVA member")
                .map(Some),
            _ => Ok(None),
        }
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

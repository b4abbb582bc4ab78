//! What OVF and OVA share: the descriptor's drives, each with the disk opened for it
//! (by the caller: through the resolver for a `.ovf`, a member of the archive for an
//! `.ova`), the checks of each disk against the descriptor, and the JSON and children.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::rule::FORMAT_MISMATCH;
use vmsnap_core::{ChildRole, ExternalRef, Finding, Layer, NamedLayer, OpenCtx, RefDecision};

use crate::descriptor::{Descriptor, Drive, FileRef};
use crate::raw::MAX_OPENED_DISKS;
use crate::rule::{CAPACITY, UNSUPPORTED_FILE};

/// What opening a file gave.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The reference, for files outside the package file (every file of a `.ovf`; for
    /// an `.ova`, an `href` that names no member).
    pub reference: Option<ExternalRef>,
    /// The disk, as its format plugin reads it.
    pub layer: Option<Arc<dyn Layer>>,
    /// Where it is, in words (`member x.vmdk at 1536`, `opened /p/x.vmdk`, the reason
    /// it is not).
    pub status: String,
}

/// A drive and its disk.
#[derive(Debug, Clone)]
pub struct DiskLink {
    /// The drive.
    pub drive: Drive,
    /// The file it names, if the descriptor has it.
    pub file: Option<FileRef>,
    /// What became of it.
    pub opened: Opened,
    /// The layer children get: the disk, or the stand-in of a reference not opened.
    pub child: Option<Arc<dyn Layer>>,
}

/// The descriptor with every drive's disk.
#[derive(Debug)]
pub struct Package {
    /// The descriptor.
    pub descriptor: Descriptor,
    /// One per drive.
    pub disks: Vec<DiskLink>,
    /// What the descriptor and the disks have wrong.
    pub findings: Vec<Finding>,
}

/// The plugin a `ovf:format` URI names (VMware's `vmdk.html#…`, QEMU's qcow, VHD), if
/// this reader knows it: the opened disk's format is checked against it.
fn declared_format(uri: &str) -> Option<&'static str> {
    let u = uri.to_ascii_lowercase();
    if u.contains("vmdk") {
        Some("vmdk")
    } else if u.contains("qcow") {
        Some("qcow2")
    } else if u.contains("vhdx") {
        Some("vhdx")
    } else if u.contains("vhd") || u.contains("bb676673") {
        Some("vhd")
    } else if u.contains("vdi") {
        Some("vdi")
    } else {
        None
    }
}

impl Package {
    /// Opens each drive's file with `open` (once per file), and checks each disk against
    /// the descriptor. `referrer` is the layer name stand-ins are recorded for.
    pub fn build(
        descriptor: Descriptor,
        ctx: &OpenCtx<'_>,
        referrer: &str,
        path: Option<&Path>,
        mut open: impl FnMut(&FileRef) -> Opened,
    ) -> Package {
        let mut findings = descriptor.findings.clone();
        let mut cache: Vec<(String, Opened)> = Vec::new();
        let mut disks = Vec::new();
        for drive in descriptor.drives().cloned() {
            let file = drive
                .file_id
                .as_deref()
                .and_then(|id| descriptor.file(id))
                .cloned();
            let def = drive.disk_id.as_deref().and_then(|d| descriptor.disk(d));
            let opened = match &file {
                None => Opened {
                    reference: None,
                    layer: None,
                    status: match &drive.file_id {
                        Some(id) => format!("file id {id:?} is not in References"),
                        None => "a blank disk (no ovf:fileRef): created on import, no data".into(),
                    },
                },
                Some(f) => {
                    if let Some(why) = f.unsupported() {
                        findings.push(Finding::warning(
                            UNSUPPORTED_FILE,
                            format!("{} ({}): {why}; its reads fail", drive.layer, f.href),
                        ));
                        Opened {
                            reference: None,
                            layer: None,
                            status: why,
                        }
                    } else if let Some((_, o)) = cache.iter().find(|(id, _)| id == &f.id) {
                        o.clone()
                    } else if cache.len() >= MAX_OPENED_DISKS {
                        Opened {
                            reference: None,
                            layer: None,
                            status: format!("not opened: more than {MAX_OPENED_DISKS} disks"),
                        }
                    } else {
                        let o = open(f);
                        cache.push((f.id.clone(), o.clone()));
                        o
                    }
                }
            };
            let capacity = def.and_then(|d| d.capacity);
            if let (Some(l), Some(c)) = (&opened.layer, capacity) {
                if l.len() != c {
                    findings.push(Finding::warning(
                        CAPACITY,
                        format!(
                            "{}: the descriptor gives a capacity of {c} bytes, the disk's \
                             virtual size is {}",
                            drive.layer,
                            l.len()
                        ),
                    ));
                }
            }
            let declared = def
                .and_then(|d| d.format.as_deref())
                .and_then(declared_format);
            if let (Some(l), Some(want)) = (&opened.layer, declared) {
                if l.name() != want {
                    findings.push(Finding::warning(
                        FORMAT_MISMATCH,
                        format!(
                            "{}: ovf:format names {want}, the file reads as {}",
                            drive.layer,
                            l.name()
                        ),
                    ));
                }
            }
            let child = match (&opened.layer, &opened.reference, capacity) {
                (Some(l), _, _) => Some(l.clone()),
                (None, Some(r), Some(c)) if !matches!(r.decision, RefDecision::Opened { .. }) => {
                    Some(ctx.resolver.unavailable(r, referrer, path, c) as Arc<dyn Layer>)
                }
                _ => None,
            };
            disks.push(DiskLink {
                drive,
                file,
                opened,
                child,
            });
        }
        Package {
            descriptor,
            disks,
            findings,
        }
    }

    /// The references the package makes (each file once).
    pub fn refs(&self) -> Vec<ExternalRef> {
        let mut v: Vec<ExternalRef> = Vec::new();
        for d in &self.disks {
            if let Some(r) = &d.opened.reference {
                if !v.contains(r) {
                    v.push(r.clone());
                }
            }
        }
        v
    }

    /// The disks' own references (a VMDK's parent, …): the disks are not stacked
    /// entries, so nobody else reports them.
    pub fn disk_refs(&self) -> Vec<ExternalRef> {
        let mut v = Vec::new();
        for d in &self.disks {
            if let Some(l) = &d.opened.layer {
                for r in l.external_refs() {
                    if !v.contains(&r) {
                        v.push(r);
                    }
                }
            }
        }
        v
    }

    /// The disks as JSON.
    pub fn disks_json(&self) -> Vec<Value> {
        self.disks
            .iter()
            .map(|d| {
                let def = d
                    .drive
                    .disk_id
                    .as_deref()
                    .and_then(|i| self.descriptor.disk(i));
                json!({
                    "layer": d.child.as_ref().map(|_| &d.drive.layer),
                    "name": d.drive.layer,
                    "controller": d.drive.controller,
                    "unit": d.drive.unit,
                    "element_name": d.drive.element_name,
                    "host_resource": d.drive.host_resource,
                    "disk_id": d.drive.disk_id,
                    "file": d.file.as_ref().map(|f| &f.href),
                    "file_size": d.file.as_ref().and_then(|f| f.size),
                    "declared_format": def.and_then(|x| x.format.clone()),
                    "capacity": def.and_then(|x| x.capacity),
                    "format": d.opened.layer.as_ref().map(|l| l.name().to_string()),
                    "size": d.opened.layer.as_ref().map(|l| l.len()),
                    "status": d.opened.status,
                    "opened": d.opened.layer.is_some(),
                })
            })
            .collect()
    }

    /// The virtual systems as JSON (their drives are in [`Package::disks_json`]).
    pub fn systems_json(&self) -> Value {
        json!(self
            .descriptor
            .systems
            .iter()
            .map(|s| json!({
                "id": s.id, "name": s.name, "os": s.os, "system_type": s.system_type,
                "memory_mib": s.memory, "cpus": s.cpus,
                "controllers": s.controllers.iter().map(|c| c.name()).collect::<Vec<_>>(),
                "optical_drives": s.optical_drives,
            }))
            .collect::<Vec<_>>())
    }

    /// The inner layers: `disk:*` for each drive with a disk or a stand-in.
    pub fn children(&self) -> Vec<NamedLayer> {
        self.disks
            .iter()
            .filter_map(|d| {
                d.child.as_ref().map(|l| NamedLayer {
                    name: d.drive.layer.clone(),
                    role: ChildRole::Disk,
                    stackable: false,
                    layer: l.clone(),
                })
            })
            .collect()
    }
}

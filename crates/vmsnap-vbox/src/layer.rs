//! The `vbox` layer: the settings file's own bytes (address space `Metadata`), the
//! machine it describes in `describe()`/`meta()`, and every attached disk as a named
//! child: `disk:<bus><port>:<device>` for the current state,
//! `snapshot:<name>/disk:<bus><port>:<device>` for each snapshot's.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    ChildRole, Error, ExternalRef, Finding, Layer, LayerExt, NamedLayer, OpenCtx, RefDecision,
    RefKind, Result, ResultExt,
};

use crate::config::{Attachment, Machine};
use crate::media::Media;
use crate::raw::{MAX_CHILDREN, MAX_CONFIG_BYTES};
use crate::rule;

/// The plugin and layer name.
pub const NAME: &str = "vbox";

/// One attached hard disk of one machine state.
#[derive(Debug, Clone)]
pub struct Disk {
    /// The child name (`disk:sata0:0`, `snapshot:Before update/disk:sata0:0`).
    pub name: String,
    /// The snapshot whose disk it is (index into [`Machine::snapshots`]); `None` for the
    /// current state.
    pub snapshot: Option<usize>,
    /// The attachment as configured.
    pub attachment: Attachment,
    /// The attached medium (index into [`Machine::media`]); `None` when the registry does
    /// not list it.
    pub medium: Option<usize>,
    /// The disk, or the stand-in for one that was not opened.
    pub layer: Option<Arc<dyn Layer>>,
    /// Whether the attached image was opened.
    pub opened: bool,
    /// Why not, when it was not.
    pub missing: Option<String>,
}

/// An open `.vbox` settings file.
#[derive(Debug)]
pub struct Vbox {
    lower: Arc<dyn Layer>,
    machine: Machine,
    /// The child-name prefix of each snapshot (`snapshot:<name>`, made unique).
    snapshot_names: Vec<String>,
    disks: Vec<Disk>,
    /// For each medium: whether it was opened, and the reference's decision.
    media_state: Vec<Option<ExternalRef>>,
    refs: Vec<ExternalRef>,
    findings: Vec<Finding>,
}

/// Unique child names: a repeated name gets ` (2)`, ` (3)` … and a finding.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    fn unique(&mut self, want: String, findings: &mut Vec<Finding>) -> String {
        if self.0.insert(want.clone()) {
            return want;
        }
        let mut n = 2u64;
        loop {
            let alt = format!("{want} ({n})");
            if self.0.insert(alt.clone()) {
                findings.push(Finding::info(
                    rule::CHILD_NAME,
                    format!("two layers would be named {want:?}; the later one is {alt:?}"),
                ));
                return alt;
            }
            n = n.saturating_add(1);
        }
    }
}

impl Vbox {
    /// Parses the settings file in `lower` and opens every attached disk through
    /// `ctx.resolver`.
    pub fn open(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_inner(lower, ctx).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>, ctx: &OpenCtx<'_>) -> Result<Self> {
        let bytes = lower
            .read_vec(0, lower.len(), MAX_CONFIG_BYTES, "VirtualBox settings file")
            .during("reading the settings file")?;
        let machine = Machine::parse(&bytes)?;
        let from = lower.path();
        let mut media = Media::new(ctx, from, &machine);
        let mut findings = Vec::new();
        let mut names = Names::default();
        let mut disks = Vec::new();
        let mut snapshot_names = Vec::new();
        for s in &machine.snapshots {
            snapshot_names.push(names.unique(format!("snapshot:{}", s.name), &mut findings));
        }
        let states = std::iter::once((None, &machine.attachments)).chain(
            machine
                .snapshots
                .iter()
                .enumerate()
                .map(|(i, s)| (Some(i), &s.attachments)),
        );
        let mut disk_names = Names::default();
        for (snapshot, attachments) in states {
            for a in attachments {
                if disks.len() >= MAX_CHILDREN {
                    return Err(Error::limit(
                        "attached disks in all states",
                        disks.len() as u64 + 1,
                        MAX_CHILDREN as u64,
                    ));
                }
                let prefix = match snapshot.and_then(|i| snapshot_names.get(i)) {
                    Some(p) => format!("{p}/"),
                    None => String::new(),
                };
                let name = disk_names.unique(format!("{prefix}{}", a.base_name()), &mut findings);
                let medium = machine.medium(&a.image);
                let mut disk = Disk {
                    name,
                    snapshot,
                    attachment: a.clone(),
                    medium,
                    layer: None,
                    opened: false,
                    missing: None,
                };
                match medium {
                    Some(idx) => {
                        let o = media.open(idx)?;
                        disk.opened = o.opened;
                        if let RefDecision::Denied { reason } | RefDecision::Failed { reason } =
                            &o.reference.decision
                        {
                            disk.missing = Some(reason.clone());
                        } else if !o.opened {
                            disk.missing = Some(o.reference.decision.describe());
                        }
                        disk.layer = Some(o.layer);
                    }
                    None => {
                        let why = format!(
                            "image {} is not in this file's media registry (VirtualBox before \
                             4.0 kept it in the global VirtualBox.xml)",
                            a.image
                        );
                        findings.push(Finding::warning(
                            rule::MISSING_MEDIUM,
                            format!("{}: {why}", disk.name),
                        ));
                        disk.missing = Some(why);
                    }
                }
                disks.push(disk);
            }
        }
        let media_state = media.references();
        let mut refs = std::mem::take(&mut media.refs);
        findings.append(&mut media.findings);
        // Saved states (`.sav`): VirtualBox's own saved-state format, listed, not read.
        let saved = machine.state_file.iter().chain(
            machine
                .snapshots
                .iter()
                .filter_map(|s| s.state_file.as_ref()),
        );
        for f in saved {
            refs.push(ExternalRef {
                kind: RefKind::Configured,
                name: f.clone(),
                decision: RefDecision::Listed,
            });
        }
        let mut all = machine.findings.clone();
        all.append(&mut findings);
        all.extend(vmsnap_core::references_finding(
            "a VirtualBox machine's settings",
            &refs,
        ));
        Ok(Vbox {
            lower,
            machine,
            snapshot_names,
            disks,
            media_state,
            refs,
            findings: all,
        })
    }

    /// The machine as configured.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Every attached disk of every state.
    pub fn disks(&self) -> &[Disk] {
        &self.disks
    }

    fn disk_json(&self, d: &Disk) -> Value {
        let a = &d.attachment;
        let m = d.medium.and_then(|i| self.machine.media.get(i));
        let mut chain = Vec::new();
        let mut at = d.medium;
        while let Some(i) = at {
            let Some(m) = self.machine.media.get(i) else {
                break;
            };
            let mut link = json!({
                "uuid": m.uuid,
                "location": m.location,
                "format": m.format,
            });
            let decision = self
                .media_state
                .get(i)
                .cloned()
                .flatten()
                .map(|r| r.decision);
            if let (Some(o), Some(Value::Object(d))) = (
                link.as_object_mut(),
                decision.map(|d| serde_json::to_value(d).unwrap_or(Value::Null)),
            ) {
                o.extend(d);
            }
            chain.push(link);
            at = m.parent;
            if chain.len() > self.machine.media.len() {
                break;
            }
        }
        json!({
            "child": d.name,
            "controller": a.controller,
            "controller_type": a.controller_type,
            "bus": a.bus,
            "port": a.port,
            "device": a.device,
            "image_uuid": a.image,
            "location": m.map(|m| m.location.clone()),
            "format": m.map(|m| m.format.clone()),
            "encrypted": m.map(|m| m.encrypted),
            "size": d.layer.as_ref().map(|l| l.len()),
            "opened": d.opened,
            "missing": d.missing,
            "chain": chain,
        })
    }

    fn disks_of(&self, snapshot: Option<usize>) -> Vec<Value> {
        self.disks
            .iter()
            .filter(|d| d.snapshot == snapshot)
            .map(|d| self.disk_json(d))
            .collect()
    }

    fn snapshots_json(&self) -> Vec<Value> {
        let m = &self.machine;
        m.snapshots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "id": i + 1,
                    "name": s.name,
                    "layer_prefix": self.snapshot_names.get(i),
                    "uuid": s.uuid,
                    "date_sec": s.time_stamp.as_deref().and_then(crate::time::epoch_seconds),
                    "parent": s.parent.and_then(|p| m.snapshots.get(p)).map(|p| p.uuid.clone()),
                    "time_stamp": s.time_stamp,
                    "current": m.current_snapshot.as_deref() == Some(s.uuid.as_str()),
                    "state_file": s.state_file,
                    "disks": self.disks_of(Some(i)),
                })
            })
            .collect()
    }

    fn machine_json(&self) -> Value {
        let m = &self.machine;
        json!({
            "name": m.name,
            "uuid": m.uuid,
            "os_type": m.os_type,
            "settings_version": m.settings_version,
            "current_snapshot": m.current_snapshot,
            "snapshot_folder": m.snapshot_folder,
            "state_file": m.state_file,
        })
    }

    fn memory_files(&self) -> Vec<Value> {
        let m = &self.machine;
        let current = m.state_file.iter().map(|f| {
            json!({"state": "current", "file": f, "read": false,
                   "note": "VirtualBox saved state (.sav): listed, not read"})
        });
        let snaps = m.snapshots.iter().filter_map(|s| {
            s.state_file.as_ref().map(|f| {
                json!({"state": format!("snapshot:{}", s.name), "file": f, "read": false,
                       "note": "VirtualBox saved state (.sav): listed, not read"})
            })
        });
        current.chain(snaps).collect()
    }
}

impl Layer for Vbox {
    vmsnap_core::metadata_layer!(NAME);
    fn describe(&self) -> Value {
        json!({
            "format": NAME,
            "virtual_size": self.len(),
            "data": "the settings file's own bytes; the disks are the children",
            "vm": self.machine_json(),
            "disks": self.disks_of(None),
            "snapshots": self.snapshots_json(),
            "memory_files": self.memory_files(),
        })
    }
    fn meta(&self) -> Value {
        let media: Vec<Value> = self
            .machine
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| {
                json!({
                    "uuid": m.uuid,
                    "location": m.location,
                    "format": m.format,
                    "type": m.kind,
                    "parent": m.parent.and_then(|p| self.machine.media.get(p))
                        .map(|p| p.uuid.clone()),
                    "encrypted": m.encrypted,
                    "reference": self.media_state.get(i).cloned().flatten(),
                })
            })
            .collect();
        let mut d = self.describe();
        if let Some(o) = d.as_object_mut() {
            o.insert("media_registry".into(), Value::Array(media));
        }
        d
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn external_refs(&self) -> Vec<ExternalRef> {
        self.refs.clone()
    }
    fn children(&self) -> Vec<NamedLayer> {
        self.disks
            .iter()
            .filter_map(|d| {
                d.layer.as_ref().map(|l| NamedLayer {
                    name: d.name.clone(),
                    role: ChildRole::Disk,
                    stackable: false,
                    layer: l.clone(),
                })
            })
            .collect()
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

//! The archive (`vma`): metadata space, reads as the archive file's own bytes; each device
//! is a named child (`disk:<device name>`, and `memory` for `vmstate`).

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{ChildRole, Finding, Layer, NamedLayer, OpenCtx, Result, ResultExt};

use crate::device::VmaDevice;
use crate::header::{uuid_text, Header};
use crate::raw::MAX_CONFIG_TEXT;
use crate::rule;
use crate::scan::scan;

/// The plugin and layer name.
pub const NAME: &str = "vma";

/// The name of a device's child layer: `disk:<device name>`, or `memory` for the VM state.
pub fn child_name(device: &VmaDevice) -> String {
    if device.is_vmstate() {
        "memory".to_string()
    } else {
        format!("disk:{}", device.device().name)
    }
}

/// An open VMA archive: its header, and a map of every device.
#[derive(Debug)]
pub struct Vma {
    lower: Arc<dyn Layer>,
    header: Header,
    devices: Vec<Arc<VmaDevice>>,
    extents: u64,
    findings: Vec<Finding>,
}

impl Vma {
    /// Opens the archive on `lower` (the typed API for embedders).
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_layer(lower)
    }

    /// Opens without a context (nothing outside the file is read).
    pub fn open_layer(lower: Arc<dyn Layer>) -> Result<Self> {
        Self::open_inner(lower).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Self> {
        let header = Header::read(lower.as_ref())?;
        let s = scan(lower.as_ref(), &header).during("scanning the VMA extents")?;
        let mut findings = header.findings.clone();
        findings.extend(s.findings);
        let mut devices = Vec::new();
        for (dev, clusters) in header.devices.iter().zip(&s.clusters) {
            let d = VmaDevice::new(lower.clone(), dev.clone(), clusters)?;
            if d.missing_clusters() > 0 {
                findings.push(Finding::warning(
                    rule::MISSING_CLUSTERS,
                    format!(
                        "device {:?}: {} of its clusters are in no extent (an incomplete \
                         backup); reading them fails",
                        dev.name,
                        d.missing_clusters()
                    ),
                ));
            }
            devices.push(Arc::new(d));
        }
        Ok(Vma {
            lower,
            header,
            devices,
            extents: s.extents,
            findings,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The devices, in id order.
    pub fn devices(&self) -> &[Arc<VmaDevice>] {
        &self.devices
    }

    fn configs_json(&self, with_text: bool) -> Value {
        self.header
            .configs
            .iter()
            .map(|c| {
                let mut v = json!({ "name": c.name, "size": c.data.len() });
                if with_text {
                    let text = std::str::from_utf8(&c.data)
                        .ok()
                        .filter(|t| t.len() <= MAX_CONFIG_TEXT);
                    if let (Some(m), Some(t)) = (v.as_object_mut(), text) {
                        m.insert("text".into(), json!(t));
                    }
                }
                v
            })
            .collect()
    }

    fn summary(&self, with_text: bool) -> Value {
        let h = &self.header;
        json!({
            "format": NAME,
            "virtual_size": self.len(),
            "data": "the archive file's bytes; each device is a layer: --layer disk:<device name>",
            "uuid": uuid_text(&h.uuid),
            "ctime": u64::try_from(h.ctime).ok().map(vmsnap_core::time::iso8601_utc),
            "header_size": h.header_size,
            "header_md5": if h.md5_ok { "ok" } else { "mismatch" },
            "extents": self.extents,
            "configs": self.configs_json(with_text),
            "devices": self.devices.iter().map(|d| {
                let mut v = d.summary();
                if let Some(m) = v.as_object_mut() {
                    m.insert("layer".into(), json!(child_name(d)));
                }
                v
            }).collect::<Vec<_>>(),
        })
    }
}

impl Layer for Vma {
    vmsnap_core::metadata_layer!(NAME);
    fn describe(&self) -> Value {
        self.summary(false)
    }
    fn meta(&self) -> Value {
        self.summary(true)
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn children(&self) -> Vec<NamedLayer> {
        self.devices
            .iter()
            .map(|d| NamedLayer {
                name: child_name(d),
                role: if d.is_vmstate() {
                    ChildRole::Memory
                } else {
                    ChildRole::Disk
                },
                stackable: true,
                layer: d.clone() as Arc<dyn Layer>,
            })
            .collect()
    }
    fn extract(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .header
            .configs
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.data.clone()))
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

//! The devices a `.vmx` configures: `<bus><n>.*` controllers and `<bus><n>:<m>.*` devices
//! on the buses that can hold disks ([`crate::raw::BUSES`]).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use vmsnap_core::Finding;

use crate::dict::Dictionary;
use crate::raw::{BUSES, MAX_DEVICES};
use crate::rule::DICTIONARY;

/// What a device is, from its `deviceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceKind {
    /// A hard disk: `deviceType` absent (VMware's default, and dissect's) or containing
    /// `disk` (`scsi-hardDisk`, `ata-hardDisk`, `disk`, `rawDisk`, `plainDisk`).
    Disk,
    /// A CD-ROM (`cdrom-image`, `cdrom-raw`, `atapi-cdrom`): listed, never opened.
    Cdrom,
    /// Anything else.
    Other,
}

impl DeviceKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Disk => "disk",
            DeviceKind::Cdrom => "cdrom",
            DeviceKind::Other => "other",
        }
    }
}

/// A bus controller (`scsi0`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controller {
    /// `scsi0`.
    pub name: String,
    /// `scsi0.present`.
    pub present: Option<bool>,
    /// `scsi0.virtualDev` (`lsilogic`, `pvscsi`, `ahci` …).
    pub virtual_dev: Option<String>,
}

/// A device on a bus (`scsi0:0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `scsi0:0`, the node name the layer names use (`disk:scsi0:0`).
    pub node: String,
    /// Its `present` (VMware's default is false).
    pub present: bool,
    /// Its `fileName`.
    pub file_name: Option<String>,
    /// Its `deviceType`.
    pub device_type: Option<String>,
    /// Its `mode` (`persistent`, `independent-nonpersistent` …).
    pub mode: Option<String>,
    /// What it is.
    pub kind: DeviceKind,
}

impl Device {
    /// Whether the VM would open it as a disk: present, a disk, with a file.
    pub fn is_attached_disk(&self) -> bool {
        self.present && self.kind == DeviceKind::Disk && self.file_name.is_some()
    }

    /// For describe.
    pub fn to_json(&self) -> Value {
        json!({
            "node": self.node,
            "present": self.present,
            "file": self.file_name,
            "device_type": self.device_type,
            "mode": self.mode,
            "kind": self.kind.as_str(),
        })
    }
}

/// `(bus index, n, m)`: the sort key, and `None` for a key that is not a device's.
fn split(key: &str) -> Option<(usize, &'static str, u32, Option<u32>, &str)> {
    for (i, bus) in BUSES.iter().enumerate() {
        let Some(rest) = key.strip_prefix(bus) else {
            continue;
        };
        let (dev, prop) = rest.split_once('.')?;
        let num = |s: &str| -> Option<u32> {
            if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        return match dev.split_once(':') {
            Some((n, m)) => Some((i, bus, num(n)?, Some(num(m)?), prop)),
            None => Some((i, bus, num(dev)?, None, prop)),
        };
    }
    None
}

/// The controllers and devices `d` configures, in bus order (scsi, sata, ide, nvme),
/// then by number.
pub fn devices(d: &Dictionary, findings: &mut Vec<Finding>) -> (Vec<Controller>, Vec<Device>) {
    type Props = BTreeMap<String, String>;
    let mut ctrls: BTreeMap<(usize, u32), (String, Props)> = BTreeMap::new();
    let mut devs: BTreeMap<(usize, u32, u32), (String, Props)> = BTreeMap::new();
    let mut dropped = 0u64;
    for e in d.entries() {
        let key = e.key.to_ascii_lowercase();
        let Some((bi, bus, n, m, prop)) = split(&key) else {
            continue;
        };
        let props = match m {
            None => {
                let name = format!("{bus}{n}");
                &mut ctrls
                    .entry((bi, n))
                    .or_insert_with(|| (name, Props::new()))
                    .1
            }
            Some(m) => {
                let full = devs.len() as u64 >= MAX_DEVICES;
                if full && !devs.contains_key(&(bi, n, m)) {
                    dropped += 1;
                    continue;
                }
                let name = format!("{bus}{n}:{m}");
                &mut devs
                    .entry((bi, n, m))
                    .or_insert_with(|| (name, Props::new()))
                    .1
            }
        };
        props.insert(prop.to_string(), e.value.clone());
    }
    if dropped > 0 {
        findings.push(Finding::warning(
            DICTIONARY,
            format!("{dropped} device keys past {MAX_DEVICES} devices ignored"),
        ));
    }
    let controllers = ctrls
        .into_values()
        .map(|(name, p)| Controller {
            name,
            present: p.get("present").map(|v| v.eq_ignore_ascii_case("true")),
            virtual_dev: p.get("virtualdev").cloned(),
        })
        .collect();
    let devices = devs
        .into_values()
        .map(|(node, p)| {
            let device_type = p.get("devicetype").cloned();
            let file_name = p.get("filename").cloned();
            let kind = match device_type.as_deref().map(str::to_ascii_lowercase) {
                None => DeviceKind::Disk,
                Some(t) if t.contains("cdrom") => DeviceKind::Cdrom,
                Some(t) if t.contains("disk") => DeviceKind::Disk,
                Some(_) => DeviceKind::Other,
            };
            Device {
                node,
                present: p
                    .get("present")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                file_name,
                device_type,
                mode: p.get("mode").cloned(),
                kind,
            }
        })
        .collect();
    (controllers, devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buses_nodes_and_kinds() {
        let d = Dictionary::parse(
            b"scsi0.present = \"TRUE\"\nscsi0.virtualDev = \"lsilogic\"\n\
              scsi0:1.fileName = \"b.vmdk\"\nscsi0:1.present = \"TRUE\"\n\
              SCSI0:0.fileName = \"a.vmdk\"\nscsi0:0.present = \"true\"\n\
              scsi0:0.deviceType = \"scsi-hardDisk\"\n\
              ide1:0.deviceType = \"cdrom-image\"\nide1:0.fileName = \"x.iso\"\n\
              sata0:0.present = \"FALSE\"\nsata0:0.fileName = \"c.vmdk\"\n\
              scsix:0.fileName = \"no\"\nethernet0.present = \"TRUE\"\n",
        );
        let (c, v) = devices(&d, &mut Vec::new());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].virtual_dev.as_deref(), Some("lsilogic"));
        let nodes: Vec<&str> = v.iter().map(|d| d.node.as_str()).collect();
        assert_eq!(nodes, ["scsi0:0", "scsi0:1", "sata0:0", "ide1:0"]);
        let attached: Vec<bool> = v.iter().map(Device::is_attached_disk).collect();
        assert_eq!(attached, [true, true, false, false]);
        assert_eq!(v[3].kind, DeviceKind::Cdrom);
    }
}

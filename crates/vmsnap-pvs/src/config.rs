//! `config.pvs`: the VM's identity and its `Hdd` devices, each with the bus node it
//! becomes a layer under (`sata0:0`), and whether the VM or a disk is encrypted.

use roxmltree::Node;
use serde_json::{json, Value};
use vmsnap_core::limits::MAX_VIRTUAL_SIZE;
use vmsnap_core::{Error, Finding, Result};
use vmsnap_hdd::{xml, Guid};

use crate::raw::{EMULATED_IMAGE_FILE, INTERFACES, MAX_DISKS, ROOT};
use crate::rule::CONFIG;

/// One `Hdd` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HddDevice {
    /// The `Hdd` element's position among them (0 first).
    pub ordinal: usize,
    /// Its `id` attribute.
    pub id: Option<String>,
    /// `Enabled` (absent counts as enabled).
    pub enabled: bool,
    /// `Connected`.
    pub connected: Option<bool>,
    /// `EmulatedType`: 1 an image file (`.hdd` bundle), 0 a host device, 3 Boot Camp.
    pub emulated_type: Option<u64>,
    /// `SystemName`: the `.hdd` bundle (or the host device) as the host that wrote the
    /// configuration named it.
    pub system_name: Option<String>,
    /// `UserFriendlyName`.
    pub user_friendly_name: Option<String>,
    /// `InterfaceType` (`PRL_MASS_STORAGE_INTERFACE_TYPE`).
    pub interface_type: Option<u64>,
    /// `StackIndex`: the position on its bus.
    pub stack_index: Option<u64>,
    /// `Size`, in MiB (the disk's virtual size as the configuration records it).
    pub size_mib: Option<u64>,
    /// The encryption key id of an encrypted disk (`Encryption/KeyId`).
    pub encryption: Option<String>,
    /// The bus node the layer names use: `<bus>0:<StackIndex>` (`sata0:0`), or
    /// `hdd<ordinal>` when the index is missing, the interface unknown, or the node taken.
    pub node: String,
}

impl HddDevice {
    /// The bus name of `InterfaceType` ([`INTERFACES`]; `if<N>` for others).
    pub fn bus(&self) -> Option<String> {
        let t = self.interface_type?;
        Some(
            INTERFACES
                .iter()
                .find(|(v, _)| *v == t)
                .map_or_else(|| format!("if{t}"), |(_, n)| (*n).to_string()),
        )
    }

    /// Whether the VM would read it as an image: enabled, an image file, with a name.
    pub fn is_image(&self) -> bool {
        self.enabled
            && self.emulated_type.unwrap_or(EMULATED_IMAGE_FILE) == EMULATED_IMAGE_FILE
            && self.system_name.as_deref().is_some_and(|s| !s.is_empty())
    }

    /// `Size` in bytes, when it is within [`MAX_VIRTUAL_SIZE`].
    pub fn size_bytes(&self) -> Option<u64> {
        self.size_mib
            .and_then(|m| m.checked_mul(1 << 20))
            .filter(|b| *b <= MAX_VIRTUAL_SIZE)
    }

    /// For describe.
    pub fn to_json(&self) -> Value {
        json!({
            "node": self.node,
            "id": self.id,
            "enabled": self.enabled,
            "connected": self.connected,
            "emulated_type": self.emulated_type,
            "system_name": self.system_name,
            "user_friendly_name": self.user_friendly_name,
            "interface_type": self.interface_type,
            "interface": self.bus(),
            "stack_index": self.stack_index,
            "size_mib": self.size_mib,
            "encryption_key_id": self.encryption,
        })
    }
}

/// The parsed configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `Identification/VmName`.
    pub vm_name: Option<String>,
    /// `Identification/VmUuid`.
    pub vm_uuid: Option<String>,
    /// `AppVersion`: the Parallels release that wrote it.
    pub app_version: Option<String>,
    /// `Hardware/Memory/RAM`, in MiB.
    pub ram_mib: Option<u64>,
    /// `Hardware/Cpu/Number`.
    pub cpus: Option<u64>,
    /// Every `Hdd` element, in document order.
    pub disks: Vec<HddDevice>,
    /// Where the configuration says encryption is on, outside the disks (a VM-level
    /// `Encryption` element), with its key id or engine.
    pub encryption: Option<String>,
    /// What was odd.
    pub findings: Vec<Finding>,
}

fn flag(t: &str) -> Option<bool> {
    match t.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// The key id (or engine) of an `Encryption` element that says encryption is on:
/// prlxmlmodel's `CVmHddEncryption` writes `KeyId`; an `Engine` other than the null GUID
/// (DiskDescriptor.xml's form) or `Enabled` true count too.
fn encryption_of(e: Node<'_, '_>) -> Option<String> {
    for name in ["KeyId", "Engine", "Plugin"] {
        if let Some(t) = xml::text(e, name).filter(|t| !t.is_empty()) {
            if Guid::parse(t, 0).is_ok_and(|g| g.is_null()) {
                continue;
            }
            return Some(format!("{name} {t}"));
        }
    }
    xml::text(e, "Enabled")
        .and_then(flag)
        .filter(|on| *on)
        .map(|_| "Enabled 1".to_string())
}

fn number(n: Node<'_, '_>, name: &'static str, findings: &mut Vec<Finding>) -> Option<u64> {
    match xml::number(n, name) {
        Ok(v) => v,
        Err(e) => {
            findings.push(Finding::warning(CONFIG, e.to_string()));
            None
        }
    }
}

fn parse_hdd(n: Node<'_, '_>, ordinal: usize, findings: &mut Vec<Finding>) -> HddDevice {
    let text = |name| xml::text(n, name).map(str::to_string);
    let encryption = n
        .descendants()
        .filter(|c| c.is_element() && c.tag_name().name() == "Encryption")
        .find_map(encryption_of);
    HddDevice {
        ordinal,
        id: n.attribute("id").map(str::to_string),
        enabled: xml::text(n, "Enabled").and_then(flag).unwrap_or(true),
        connected: xml::text(n, "Connected").and_then(flag),
        emulated_type: number(n, "EmulatedType", findings),
        system_name: text("SystemName"),
        user_friendly_name: text("UserFriendlyName"),
        interface_type: number(n, "InterfaceType", findings),
        stack_index: number(n, "StackIndex", findings),
        size_mib: number(n, "Size", findings),
        encryption,
        node: String::new(),
    }
}

/// Gives each disk its node: `<bus>0:<StackIndex>` (Parallels has one controller per
/// bus), else `hdd<ordinal>`.
fn name_nodes(disks: &mut [HddDevice], findings: &mut Vec<Finding>) {
    let mut taken: Vec<String> = Vec::new();
    for d in disks.iter_mut() {
        let known = d
            .interface_type
            .and_then(|t| INTERFACES.iter().find(|(v, _)| *v == t));
        let wanted = match (known, d.stack_index) {
            (Some((_, b)), Some(i)) => Some(format!("{b}0:{i}")),
            _ => None,
        };
        let node = match wanted {
            Some(w) if !taken.contains(&w) => w,
            other => {
                let fallback = format!("hdd{}", d.ordinal);
                findings.push(Finding::warning(
                    CONFIG,
                    match other {
                        Some(w) => format!(
                            "Hdd {} is on {w}, which an earlier Hdd has: named {fallback}",
                            d.ordinal
                        ),
                        None => format!(
                            "Hdd {} has no StackIndex or no known InterfaceType ({:?}): named {fallback}",
                            d.ordinal, d.interface_type
                        ),
                    },
                ));
                fallback
            }
        };
        taken.push(node.clone());
        d.node = node;
    }
}

impl Config {
    /// Parses `bytes`, the `config.pvs` file.
    pub fn parse(bytes: &[u8]) -> Result<Config> {
        let doc = xml::parse(bytes)?;
        let root = doc.root_element();
        if root.tag_name().name() != ROOT {
            return Err(Error::declined(format!(
                "the root element is <{}>, not <{ROOT}>",
                root.tag_name().name()
            )));
        }
        let mut findings = Vec::new();
        let ident = xml::child(root, "Identification");
        let hw = xml::child(root, "Hardware");
        let mut disks = Vec::new();
        // dissect's PVS.disks(): every `Hdd` element anywhere (`.//Hdd`).
        for n in root
            .descendants()
            .filter(|c| c.is_element() && c.tag_name().name() == "Hdd")
        {
            if disks.len() >= MAX_DISKS {
                return Err(
                    Error::limit("Hdd devices", disks.len() as u64 + 1, MAX_DISKS as u64)
                        .at(xml::at(n)),
                );
            }
            let d = parse_hdd(n, disks.len(), &mut findings);
            disks.push(d);
        }
        name_nodes(&mut disks, &mut findings);
        let encryption = root
            .descendants()
            .filter(|c| {
                c.is_element()
                    && c.tag_name().name() == "Encryption"
                    && !c
                        .ancestors()
                        .any(|a| a.is_element() && a.tag_name().name() == "Hdd")
            })
            .find_map(|e| {
                let parent = e.parent_element().map(|p| p.tag_name().name().to_string());
                encryption_of(e).map(|k| format!("{}/Encryption: {k}", parent.unwrap_or_default()))
            });
        Ok(Config {
            vm_name: ident
                .and_then(|i| xml::text(i, "VmName"))
                .map(str::to_string),
            vm_uuid: ident
                .and_then(|i| xml::text(i, "VmUuid"))
                .map(str::to_string),
            app_version: xml::text(root, "AppVersion").map(str::to_string),
            ram_mib: hw
                .and_then(|h| xml::child(h, "Memory"))
                .and_then(|m| number(m, "RAM", &mut findings)),
            cpus: hw
                .and_then(|h| xml::child(h, "Cpu"))
                .and_then(|c| number(c, "Number", &mut findings)),
            disks,
            encryption,
            findings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_buses_and_encryption() {
        let c = Config::parse(
            br#"<?xml version="1.0"?><ParallelsVirtualMachine><Hardware>
            <Hdd id="0"><InterfaceType>2</InterfaceType><StackIndex>0</StackIndex>
              <EmulatedType>1</EmulatedType><SystemName>a.hdd</SystemName></Hdd>
            <Hdd id="1"><InterfaceType>2</InterfaceType><StackIndex>0</StackIndex>
              <SystemName>b.hdd</SystemName><Encryption><KeyId>k1</KeyId></Encryption></Hdd>
            <Hdd id="2"><InterfaceType>7</InterfaceType><StackIndex>3</StackIndex>
              <EmulatedType>0</EmulatedType><SystemName>/dev/disk2</SystemName></Hdd>
            <Hdd><Enabled>0</Enabled><SystemName>c.hdd</SystemName></Hdd>
            </Hardware></ParallelsVirtualMachine>"#,
        )
        .unwrap();
        let nodes: Vec<&str> = c.disks.iter().map(|d| d.node.as_str()).collect();
        assert_eq!(nodes, ["sata0:0", "hdd1", "hdd2", "hdd3"]);
        let images: Vec<bool> = c.disks.iter().map(HddDevice::is_image).collect();
        assert_eq!(images, [true, true, false, false]);
        assert_eq!(c.disks[1].encryption.as_deref(), Some("KeyId k1"));
        assert_eq!(c.findings.len(), 3, "{:?}", c.findings);
        assert!(c.encryption.is_none());
        let e = Config::parse(
            b"<ParallelsVirtualMachine><Security><Encryption><Enabled>1</Enabled>\
              </Encryption></Security></ParallelsVirtualMachine>",
        )
        .unwrap();
        assert_eq!(
            e.encryption.as_deref(),
            Some("Security/Encryption: Enabled 1")
        );
        assert!(Config::parse(b"<Parallels_disk_image/>").is_err());
    }
}

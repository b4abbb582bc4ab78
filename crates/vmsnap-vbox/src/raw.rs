//! The VirtualBox settings file as documented, and this crate's limits.
//!
//! The layout is VirtualBox's settings schema (`VirtualBox-settings.xsd` in the VirtualBox
//! sources, `src/VBox/Main/xml/`), as read by `src/VBox/Main/xml/Settings.cpp`:
//!
//! ```text
//! <VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">
//!   <Machine uuid="{…}" name="…" OSType="…" currentSnapshot="{…}"
//!            snapshotFolder="Snapshots" stateFile="…">
//!     <MediaRegistry><HardDisks>
//!       <HardDisk uuid="{…}" location="base.vdi" format="VDI" type="Normal">
//!         <HardDisk uuid="{…}" location="Snapshots/{…}.vdi" format="VDI"/>  (differencing)
//!       </HardDisk>
//!     </HardDisks></MediaRegistry>
//!     <Snapshot uuid="{…}" name="…" timeStamp="…" stateFile="…">
//!       <Hardware>…<StorageControllers>…</StorageControllers></Hardware>
//!       <Snapshots><Snapshot …/>…</Snapshots>
//!     </Snapshot>
//!     <Hardware>
//!       <StorageControllers>
//!         <StorageController name="SATA" type="AHCI">
//!           <AttachedDevice type="HardDisk" port="0" device="0"><Image uuid="{…}"/></AttachedDevice>
//!         </StorageController>
//!       </StorageControllers>
//!     </Hardware>
//!   </Machine>
//! </VirtualBox>
//! ```
//!
//! Settings before version 1.17 keep `StorageControllers` beside `Hardware` (a child of
//! `Machine` or `Snapshot`) instead of inside it; both places are read.

/// The settings namespace every element is in.
pub const NAMESPACE: &str = "http://www.virtualbox.org/";

/// The root element.
pub const ROOT: &str = "VirtualBox";

/// The largest settings file read (real ones are tens of KiB; one with thousands of
/// snapshots a few MiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The most XML nodes parsed (elements, attributes' text, text runs).
pub const MAX_XML_NODES: u32 = 1_000_000;

/// The most media (`HardDisk` elements, nested ones included) read from the registry.
pub const MAX_MEDIA: usize = 4096;

/// The most snapshots read.
pub const MAX_SNAPSHOTS: usize = 4096;

/// The most hard-disk attachments read per machine state (current state or snapshot).
pub const MAX_ATTACHMENTS: usize = 256;

/// The most layers named as children (every state's disks together).
pub const MAX_CHILDREN: usize = 16384;

/// The storage bus a controller `type` is on, as the child names spell it
/// (`StorageControllerType` in the schema). `None` for a type the schema does not list.
pub fn bus_of(controller_type: &str) -> Option<&'static str> {
    Some(match controller_type {
        "PIIX3" | "PIIX4" | "ICH6" => "ide",
        "AHCI" => "sata",
        "LsiLogic" | "BusLogic" => "scsi",
        "LsiLogicSas" => "sas",
        "I82078" => "floppy",
        "USB" => "usb",
        "NVMe" => "nvme",
        "VirtioSCSI" => "virtio",
        _ => return None,
    })
}

/// The plugin a medium's `format` attribute names (VirtualBox's backend names, case as
/// VirtualBox writes them); `None` means probe.
pub fn plugin_of(format: &str) -> Option<&'static str> {
    Some(match format.to_ascii_uppercase().as_str() {
        "VDI" => "vdi",
        "VMDK" => "vmdk",
        "VHD" => "vhd",
        "PARALLELS" => "parallels",
        "QED" => "qed",
        "QCOW" => "qcow",
        "RAW" => "raw",
        _ => return None,
    })
}

/// `HardDisk` properties whose presence means the medium is encrypted (VirtualBox's
/// `CRYPT/KeyId` and `CRYPT/KeyStore`, as dissect.hypervisor also checks).
pub const CRYPT_PROPERTIES: [&str; 2] = ["CRYPT/KeyId", "CRYPT/KeyStore"];

//! The `config.pvs` and `Snapshots.xml` layouts and this crate's limits.
//!
//! Both files are XML written by Parallels Desktop and Virtuozzo (`prl-disp-service`).
//! The element names below are those of the VM configuration as OpenVZ's
//! `prl-disp-service` and `libprlsdk` read and write it (`CVmConfiguration`,
//! `CVmHardDisk`), and as dissect.hypervisor's `descriptor/pvs.py` finds disks
//! (`.//Hdd/SystemName`); `Snapshots.xml` is the `ParallelsSavedStates` tree OpenVZ's
//! `libvzctl` writes and reads (`src/lib/snapshot.c`: `vzctl_store_snapshot_tree`).

/// The root element of `config.pvs`.
pub const ROOT: &str = "ParallelsVirtualMachine";
/// The configuration's file name inside a `.pvm` bundle.
pub const CONFIG_FILE: &str = "config.pvs";
/// The snapshot tree's file, beside `config.pvs`.
pub const SNAPSHOTS_FILE: &str = "Snapshots.xml";
/// The directory, beside `config.pvs`, holding each snapshot's files
/// ([`SNAPSHOT_STATE_FILES`]).
pub const SNAPSHOTS_DIR: &str = "Snapshots";
/// The root element of `Snapshots.xml`.
pub const SNAPSHOTS_ROOT: &str = "ParallelsSavedStates";
/// A snapshot of the tree (its children are the snapshots taken from it).
pub const SAVED_STATE_ITEM: &str = "SavedStateItem";
/// The file a `.hdd` bundle directory is opened by.
pub const DISK_DESCRIPTOR: &str = "DiskDescriptor.xml";
/// The files of a snapshot, `Snapshots/{GUID}<ext>`: the memory dump (`.mem`) and the
/// saved VM state (`.sav`) as Parallels' user guides describe the two ("Virtual Machine
/// Files"), the configuration at the snapshot (`.pvc`) and its screenshot (`.png`). Their
/// layouts are not publicly documented: they are listed, not read.
pub const SNAPSHOT_STATE_FILES: [&str; 4] = [".mem", ".sav", ".pvc", ".png"];

/// `Hdd/EmulatedType`: a host device (`PDT_USE_REAL_DEVICE`, libprlsdk's `PrlEnums.h`).
pub const EMULATED_REAL_DEVICE: u64 = 0;
/// `Hdd/EmulatedType`: an image file (`PDT_USE_IMAGE_FILE`): the only kind opened.
pub const EMULATED_IMAGE_FILE: u64 = 1;
/// `Hdd/EmulatedType`: Boot Camp (`PDT_USE_BOOTCAMP` = `PDT_USE_OTHER`).
pub const EMULATED_BOOTCAMP: u64 = 3;

/// `Hdd/InterfaceType`, `PRL_MASS_STORAGE_INTERFACE_TYPE` in OpenVZ libprlsdk's
/// `Sources/SDK/Include/PrlEnums.h` (`PMS_IDE_DEVICE = 0`, `PMS_SCSI_DEVICE = 1`,
/// `PMS_SATA_DEVICE = 2`, `PMS_VIRTIO_BLOCK_DEVICE = 3`, `PMS_UNKNOWN_DEVICE = 255`),
/// with the bus names prl-disp-service's statistics use (`ide`, `scsi`, `sata`,
/// `virtio`). Parallels Desktop's NVMe interface is not in the public SDK: any other
/// value is the bus `if<N>`.
pub const INTERFACES: [(u64, &str); 4] = [(0, "ide"), (1, "scsi"), (2, "sata"), (3, "virtio")];

/// The largest `config.pvs` or `Snapshots.xml` read (vmsnap-hdd's XML limit, 16 MiB;
/// real ones are tens of KiB).
pub const MAX_CONFIG_BYTES: u64 = vmsnap_hdd::raw::MAX_XML_LEN;
/// The most `Hdd` devices read from one configuration (Parallels allows a few per bus).
pub const MAX_DISKS: usize = 256;
/// The most snapshots read from `Snapshots.xml`.
pub const MAX_SNAPSHOTS: usize = 1024;
/// The deepest snapshot tree walked (each snapshot one level below its parent).
pub const MAX_SNAPSHOT_DEPTH: usize = MAX_SNAPSHOTS;
/// Longest snapshot name used as a layer name (longer ones fall back to the GUID).
pub const MAX_LAYER_NAME_CHARS: usize = 128;

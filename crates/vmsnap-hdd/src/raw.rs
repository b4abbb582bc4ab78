//! The `DiskDescriptor.xml` layout and this crate's limits.
//!
//! The elements are those of QEMU's `docs/interop/prl-xml.txt` (the Parallels disk
//! descriptor as Parallels Desktop and Virtuozzo write it), the same ones
//! dissect.hypervisor's `disk/hdd.py` reads.

/// The root element.
pub const ROOT: &str = "Parallels_disk_image";
/// `Disk_Parameters`: the disk's geometry and identity.
pub const DISK_PARAMETERS: &str = "Disk_Parameters";
/// `StorageData`: the storages, each a run of sectors of the disk.
pub const STORAGE_DATA: &str = "StorageData";
/// `Snapshots`: the snapshot tree (`Shot`s and `TopGUID`).
pub const SNAPSHOTS: &str = "Snapshots";

/// The bytes of a sector: `Disk_size`, `Start`, `End` and `Blocksize` count sectors.
pub const SECTOR_SIZE: u64 = 512;

/// The GUID of the current state when `TopGUID` is absent (prl-xml.txt; dissect's
/// `DEFAULT_TOP_GUID`).
pub const DEFAULT_TOP_GUID: &str = "5fbaabe3-6958-40ff-92a7-860e329aab41";
/// The parent GUID of a snapshot that has none.
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// `Image/Type` of a raw image file.
pub const TYPE_PLAIN: &str = "Plain";
/// `Image/Type` of an expanding Parallels image (`.hds` with a header and a BAT).
pub const TYPE_COMPRESSED: &str = "Compressed";

/// The largest descriptor read (the shared text limit, 16 MiB).
pub const MAX_XML_LEN: u64 = vmsnap_core::limits::MAX_TEXT_BYTES;
/// The most XML nodes parsed (elements, text, attributes): far above any real descriptor.
pub const MAX_XML_NODES: u32 = 1 << 20;
/// The most storages a descriptor may have.
pub const MAX_STORAGES: usize = 4096;
/// The most snapshots (`Shot`s) a descriptor may have.
pub const MAX_SHOTS: usize = 1024;
/// The most images over all storages (each is one file to open).
pub const MAX_IMAGES: usize = 4096;

//! The OVF and OVA constants this crate reads by, each with where it comes from, and the
//! crate's limits.
//!
//! OVF: DMTF DSP0243 (1.1.0 and 2.1.1), "Open Virtualization Format Specification", and
//! the CIM classes it uses (`CIM_ResourceAllocationSettingData`, `rasd:`, and in 2.x
//! `CIM_StorageAllocationSettingData`, `sasd:`). OVA: DSP0243 § 5.3 (a tar archive,
//! the descriptor first), the tar layout is POSIX.1-1988 ustar (IEEE Std 1003.1,
//! `<tar.h>`), GNU tar's extensions (`L` long names, base-256 sizes) and POSIX.1-2001
//! pax extended headers (`x`, `g`).

/// The envelope namespace of OVF 1.x.
pub const NS_OVF1: &str = "http://schemas.dmtf.org/ovf/envelope/1";
/// The envelope namespace of OVF 2.x.
pub const NS_OVF2: &str = "http://schemas.dmtf.org/ovf/envelope/2";
/// What both envelope namespaces start with (the probe looks for it).
pub const NS_OVF_PREFIX: &str = "http://schemas.dmtf.org/ovf/envelope/";

/// `rasd:ResourceType` of an IDE controller (CIM `ResourceType` value map).
pub const RT_IDE: u32 = 5;
/// `rasd:ResourceType` of a parallel SCSI HBA.
pub const RT_SCSI: u32 = 6;
/// `rasd:ResourceType` of a CD drive.
pub const RT_CD: u32 = 15;
/// `rasd:ResourceType` of a DVD drive.
pub const RT_DVD: u32 = 16;
/// `rasd:ResourceType` of a disk drive.
pub const RT_DISK: u32 = 17;
/// `rasd:ResourceType` "Other storage device": SATA (`AHCI`, `vmware.sata.ahci`) and
/// NVMe (`vmware.nvme.controller`) controllers, told apart by `ResourceSubType`.
pub const RT_OTHER_STORAGE: u32 = 20;

/// The `HostResource` prefixes of a disk (`ovf:/disk/<diskId>`) and of a file
/// (`ovf:/file/<fileId>`); VirtualBox's OVF 2.0 writes them without `ovf:`.
pub const HOST_DISK: &str = "/disk/";
/// See [`HOST_DISK`].
pub const HOST_FILE: &str = "/file/";

/// The one `ovf:compression` value DSP0243 defines.
pub const COMPRESSION_GZIP: &str = "gzip";

/// Largest descriptor read (real ones are a few KiB to a few hundred KiB).
pub const MAX_XML_LEN: u64 = 4 * 1024 * 1024;
/// Largest number of XML nodes parsed (entity expansion is off: no DTD).
pub const MAX_XML_NODES: u32 = 200_000;
/// Largest number of `File`, `Disk` or hardware `Item` elements read, each.
pub const MAX_ELEMENTS: usize = 4096;
/// Largest number of virtual systems (a `VirtualSystemCollection` may nest them).
pub const MAX_SYSTEMS: usize = 256;
/// Deepest nesting of `VirtualSystemCollection`s followed.
pub const MAX_COLLECTION_DEPTH: u32 = 8;
/// Largest number of disks opened for one package.
pub const MAX_OPENED_DISKS: usize = 1024;

/// The tar block size.
pub const BLOCK: u64 = 512;
/// Where a ustar header keeps each field (offset, length).
pub mod tar {
    /// `name`.
    pub const NAME: (usize, usize) = (0, 100);
    /// `size` (octal, or GNU base-256 when the first byte has its top bit set).
    pub const SIZE: (usize, usize) = (124, 12);
    /// `chksum`.
    pub const CHKSUM: (usize, usize) = (148, 8);
    /// `typeflag`.
    pub const TYPEFLAG: usize = 156;
    /// `magic`: `ustar\0` (POSIX) or `ustar ` (GNU, followed by version ` \0`).
    pub const MAGIC: (usize, usize) = (257, 5);
    /// `prefix` (POSIX ustar only: the GNU format keeps other fields there).
    pub const PREFIX: (usize, usize) = (345, 155);
    /// `version` `00` of the POSIX format (GNU writes ` \0`).
    pub const VERSION: (usize, usize) = (263, 2);
}
/// Largest number of tar members read.
pub const MAX_MEMBERS: usize = 4096;
/// Largest pax extended header or GNU long name read.
pub const MAX_EXTENDED_HEADER: u64 = 64 * 1024;
/// Most layers walked down from a disk to the file its `href` names.
pub const MAX_CHAIN_WALK: usize = 16;
/// Largest manifest read.
pub const MAX_MANIFEST: u64 = 1024 * 1024;
/// Most member bytes hashed to verify a manifest (beyond it the digests are reported
/// unverified, not guessed): the manifest rule must stay fast on `info` too.
pub const MAX_DIGESTED: u64 = 1024 * 1024 * 1024;

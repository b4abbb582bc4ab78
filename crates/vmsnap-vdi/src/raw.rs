//! On-disk layout of a VDI image (all fields little-endian), and the named limits this
//! reader applies to it.

/// Size of the header this reader parses (the pre-header, the v1.1 header and padding).
pub const HEADER_LEN: usize = 512;
/// Offset of the signature.
pub const OFF_SIGNATURE: usize = 0x40;
/// The signature (`7f 10 da be` on disk).
pub const SIGNATURE: u32 = 0xBEDA_107F;
/// Offset of the version.
pub const OFF_VERSION: usize = 0x44;
/// Version 1.1, the only one QEMU (and this reader) handles.
pub const VERSION_1_1: u32 = 0x0001_0001;
/// Offset of the size of the v1.1 header part.
pub const OFF_HEADER_SIZE: usize = 0x48;
/// Offset of the image type.
pub const OFF_IMAGE_TYPE: usize = 0x4C;
/// Offset of the image flags.
pub const OFF_IMAGE_FLAGS: usize = 0x50;
/// Offset of the 256-byte description.
pub const OFF_DESCRIPTION: usize = 0x54;
/// Length of the description.
pub const DESCRIPTION_LEN: usize = 256;
/// Offset of the block map offset.
pub const OFF_OFFSET_BMAP: usize = 0x154;
/// Offset of the data offset.
pub const OFF_OFFSET_DATA: usize = 0x158;
/// Offset of the legacy geometry (cylinders, heads, sectors).
pub const OFF_GEOMETRY: usize = 0x15C;
/// Offset of the sector size.
pub const OFF_SECTOR_SIZE: usize = 0x168;
/// Offset of the disk size.
pub const OFF_DISK_SIZE: usize = 0x170;
/// Offset of the block size.
pub const OFF_BLOCK_SIZE: usize = 0x178;
/// Offset of the extra bytes in front of each block.
pub const OFF_BLOCK_EXTRA: usize = 0x17C;
/// Offset of the number of blocks.
pub const OFF_BLOCKS_IN_IMAGE: usize = 0x180;
/// Offset of the number of allocated blocks.
pub const OFF_BLOCKS_ALLOCATED: usize = 0x184;
/// Offset of the image UUID.
pub const OFF_UUID_IMAGE: usize = 0x188;
/// Offset of the last-snapshot UUID.
pub const OFF_UUID_LAST_SNAP: usize = 0x198;
/// Offset of the link UUID.
pub const OFF_UUID_LINK: usize = 0x1A8;
/// Offset of the parent UUID.
pub const OFF_UUID_PARENT: usize = 0x1B8;

/// Image type: dynamically allocated.
pub const TYPE_DYNAMIC: u32 = 1;
/// Image type: static (preallocated).
pub const TYPE_STATIC: u32 = 2;
/// Image type: undo (VirtualBox).
pub const TYPE_UNDO: u32 = 3;
/// Image type: differencing (VirtualBox).
pub const TYPE_DIFF: u32 = 4;

/// The only sector size the format defines.
pub const SECTOR_SIZE: u32 = 512;
/// The block size QEMU and VirtualBox write.
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
/// Block map entry: never allocated (reads as zeros, or from the parent).
pub const BMAP_UNALLOCATED: u32 = 0xFFFF_FFFF;
/// Block map entry: discarded (reads as zeros).
pub const BMAP_DISCARDED: u32 = 0xFFFF_FFFE;

/// Most blocks a VDI may have (QEMU's `VDI_BLOCKS_IN_IMAGE_MAX`).
pub const MAX_BLOCKS_IN_IMAGE: u32 = 0x3FFF_FFFF;
/// Smallest block size accepted.
pub const MIN_BLOCK_SIZE: u32 = 512;
/// Largest block size accepted (VirtualBox and QEMU only write 1 MiB).
pub const MAX_BLOCK_SIZE: u32 = 64 << 20;
/// Largest `block_extra` accepted.
pub const MAX_BLOCK_EXTRA: u32 = 64 << 20;

//! The VDI header: parsing and the structural checks QEMU applies (plus a few more).

use vmsnap_core::limits::{MAX_TABLE_BYTES, MAX_TABLE_ENTRIES, MAX_VIRTUAL_SIZE};
use vmsnap_core::{Bytes, Error, ErrorKind, Finding, Result};

use crate::raw::*;
use crate::uuid::Uuid;

/// The parsed VDI header.
#[derive(Debug, Clone)]
pub struct Header {
    /// The free-text pre-header (`<<< … >>>`), up to its first NUL.
    pub text: String,
    /// Format version (0x00010001).
    pub version: u32,
    /// Size of the v1.1 header part.
    pub header_size: u32,
    /// Image type (1 dynamic, 2 static, 3 undo, 4 differencing).
    pub image_type: u32,
    /// Image flags.
    pub image_flags: u32,
    /// Description, up to its first NUL.
    pub description: String,
    /// File offset of the block map.
    pub offset_bmap: u32,
    /// File offset of the first block.
    pub offset_data: u32,
    /// Legacy geometry: cylinders, heads, sectors.
    pub geometry: [u32; 3],
    /// Sector size (512).
    pub sector_size: u32,
    /// Disk size as stored.
    pub disk_size: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Bytes of per-block metadata in front of each block.
    pub block_extra: u32,
    /// Number of blocks (block map entries).
    pub blocks_in_image: u32,
    /// Number of blocks allocated, as stored.
    pub blocks_allocated: u32,
    /// This image's UUID.
    pub uuid_image: Uuid,
    /// UUID of the last snapshot.
    pub uuid_last_snap: Uuid,
    /// UUID of the linked image.
    pub uuid_link: Uuid,
    /// UUID of the parent image (differencing images).
    pub uuid_parent: Uuid,
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

impl Header {
    /// Parses the first 512 bytes of a file. Checks only what every use needs (signature,
    /// version); [`Header::validate`] checks the rest against the file.
    pub fn parse(b: &[u8]) -> Result<Header> {
        let b = Bytes::new(b, 0);
        if b.len() < HEADER_LEN {
            return Err(Error::truncated(
                0,
                format!(
                    "VDI header needs {HEADER_LEN} bytes, the file has {}",
                    b.len()
                ),
            ));
        }
        let sig = b.u32_le(OFF_SIGNATURE)?;
        if sig != SIGNATURE {
            return Err(Error::malformed(
                OFF_SIGNATURE as u64,
                format!("VDI signature is {sig:#010x}, expected {SIGNATURE:#010x}"),
            ));
        }
        let version = b.u32_le(OFF_VERSION)?;
        if version != VERSION_1_1 {
            return Err(Error::unsupported(format!(
                "VDI version {}.{} (only 1.1 is supported)",
                version >> 16,
                version & 0xffff
            ))
            .at(OFF_VERSION as u64));
        }
        let uuid = |o| b.array::<16>(o).map(Uuid);
        Ok(Header {
            text: c_string(b.slice(0, OFF_SIGNATURE)?),
            version,
            header_size: b.u32_le(OFF_HEADER_SIZE)?,
            image_type: b.u32_le(OFF_IMAGE_TYPE)?,
            image_flags: b.u32_le(OFF_IMAGE_FLAGS)?,
            description: c_string(b.slice(OFF_DESCRIPTION, DESCRIPTION_LEN)?),
            offset_bmap: b.u32_le(OFF_OFFSET_BMAP)?,
            offset_data: b.u32_le(OFF_OFFSET_DATA)?,
            geometry: [
                b.u32_le(OFF_GEOMETRY)?,
                b.u32_le(OFF_GEOMETRY + 4)?,
                b.u32_le(OFF_GEOMETRY + 8)?,
            ],
            sector_size: b.u32_le(OFF_SECTOR_SIZE)?,
            disk_size: b.u64_le(OFF_DISK_SIZE)?,
            block_size: b.u32_le(OFF_BLOCK_SIZE)?,
            block_extra: b.u32_le(OFF_BLOCK_EXTRA)?,
            blocks_in_image: b.u32_le(OFF_BLOCKS_IN_IMAGE)?,
            blocks_allocated: b.u32_le(OFF_BLOCKS_ALLOCATED)?,
            uuid_image: uuid(OFF_UUID_IMAGE)?,
            uuid_last_snap: uuid(OFF_UUID_LAST_SNAP)?,
            uuid_link: uuid(OFF_UUID_LINK)?,
            uuid_parent: uuid(OFF_UUID_PARENT)?,
        })
    }

    /// The virtual size: the disk size rounded up to a sector, as QEMU does for images
    /// `VBoxManage convert` wrote with odd sizes.
    pub fn virtual_size(&self) -> u64 {
        self.disk_size.div_ceil(512).saturating_mul(512)
    }

    /// The image type's name.
    pub fn type_name(&self) -> &'static str {
        match self.image_type {
            TYPE_DYNAMIC => "dynamic",
            TYPE_STATIC => "static",
            TYPE_UNDO => "undo",
            TYPE_DIFF => "differencing",
            _ => "unknown",
        }
    }

    /// Whether it is a differencing image (its parent is the image whose `uuid_image` is
    /// this one's `uuid_link`).
    pub fn is_differencing(&self) -> bool {
        self.image_type == TYPE_DIFF
    }

    /// Distance in the file between the starts of consecutive blocks.
    pub fn block_stride(&self) -> u64 {
        u64::from(self.block_size) + u64::from(self.block_extra)
    }

    /// Checks every field against the limits and the file size (`file_len`); pushes
    /// findings for what is unusual but readable.
    pub fn validate(&self, file_len: u64, findings: &mut Vec<Finding>) -> Result<()> {
        if !matches!(
            self.image_type,
            TYPE_DYNAMIC | TYPE_STATIC | TYPE_UNDO | TYPE_DIFF
        ) {
            return Err(Error::unsupported(format!(
                "VDI image type {} (known: 1 dynamic, 2 static, 3 undo, 4 differencing)",
                self.image_type
            ))
            .at(OFF_IMAGE_TYPE as u64));
        }
        if matches!(self.image_type, TYPE_UNDO | TYPE_DIFF) {
            findings.push(
                Finding::warning(
                    crate::rule::IMAGE_TYPE,
                    format!(
                        "VDI image type {} ({}) is VirtualBox-only; QEMU refuses it",
                        self.image_type,
                        self.type_name()
                    ),
                )
                .at(OFF_IMAGE_TYPE as u64),
            );
        }
        if self.sector_size != SECTOR_SIZE {
            return Err(Error::malformed(
                OFF_SECTOR_SIZE as u64,
                format!("VDI sector size is {}, must be 512", self.sector_size),
            ));
        }
        let bs = self.block_size;
        if bs == 0 {
            return Err(Error::malformed(
                OFF_BLOCK_SIZE as u64,
                "VDI block size is 0",
            ));
        }
        if bs > MAX_BLOCK_SIZE {
            return Err(
                Error::limit("VDI block size", u64::from(bs), u64::from(MAX_BLOCK_SIZE))
                    .at(OFF_BLOCK_SIZE as u64),
            );
        }
        if bs < MIN_BLOCK_SIZE || !bs.is_power_of_two() {
            return Err(Error::malformed(
                OFF_BLOCK_SIZE as u64,
                format!("VDI block size {bs} is not a power of two of at least 512"),
            ));
        }
        if bs != DEFAULT_BLOCK_SIZE {
            findings.push(
                Finding::warning(
                    crate::rule::BLOCK_SIZE,
                    format!("VDI block size is {bs}; QEMU only opens 1 MiB blocks"),
                )
                .at(OFF_BLOCK_SIZE as u64),
            );
        }
        if self.block_extra > MAX_BLOCK_EXTRA {
            return Err(Error::limit(
                "VDI block_extra",
                u64::from(self.block_extra),
                u64::from(MAX_BLOCK_EXTRA),
            )
            .at(OFF_BLOCK_EXTRA as u64));
        }
        if self.block_extra != 0 {
            findings.push(
                Finding::warning(
                    crate::rule::BLOCK_EXTRA,
                    format!(
                        "VDI block_extra is {}; QEMU refuses such images, this reader skips \
                         the extra bytes in front of each block (VirtualBox layout)",
                        self.block_extra
                    ),
                )
                .at(OFF_BLOCK_EXTRA as u64),
            );
        }
        if self.blocks_in_image > MAX_BLOCKS_IN_IMAGE {
            return Err(Error::limit(
                "VDI blocks_in_image",
                u64::from(self.blocks_in_image),
                u64::from(MAX_BLOCKS_IN_IMAGE),
            )
            .at(OFF_BLOCKS_IN_IMAGE as u64));
        }
        if u64::from(self.blocks_in_image) > MAX_TABLE_ENTRIES {
            return Err(Error::limit(
                "VDI block map entries",
                u64::from(self.blocks_in_image),
                MAX_TABLE_ENTRIES,
            )
            .at(OFF_BLOCKS_IN_IMAGE as u64));
        }
        let vsize = self.virtual_size();
        if vsize > MAX_VIRTUAL_SIZE {
            return Err(
                Error::limit("VDI disk size", vsize, MAX_VIRTUAL_SIZE).at(OFF_DISK_SIZE as u64)
            );
        }
        let covered = u64::from(self.blocks_in_image) * u64::from(bs);
        if covered < vsize {
            return Err(Error::malformed(
                OFF_DISK_SIZE as u64,
                format!(
                    "VDI disk size {vsize} is larger than {} blocks of {bs} bytes",
                    self.blocks_in_image
                ),
            ));
        }
        for (what, off, v) in [
            ("block map", OFF_OFFSET_BMAP, self.offset_bmap),
            ("data", OFF_OFFSET_DATA, self.offset_data),
        ] {
            if v % SECTOR_SIZE != 0 {
                return Err(Error::malformed(
                    off as u64,
                    format!("VDI {what} offset {v:#x} is not a multiple of 512"),
                ));
            }
            if u64::from(v) < HEADER_LEN as u64 {
                return Err(Error::malformed(
                    off as u64,
                    format!("VDI {what} offset {v:#x} lies inside the header"),
                ));
            }
        }
        let bmap_bytes = u64::from(self.blocks_in_image) * 4;
        if bmap_bytes > MAX_TABLE_BYTES {
            return Err(
                Error::limit("VDI block map bytes", bmap_bytes, MAX_TABLE_BYTES)
                    .at(OFF_BLOCKS_IN_IMAGE as u64),
            );
        }
        let bmap_end = u64::from(self.offset_bmap) + bmap_bytes;
        if bmap_end > file_len {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "VDI block map of {} entries at {:#x} ends at {bmap_end:#x}, past the end \
                     of the file ({file_len:#x})",
                    self.blocks_in_image, self.offset_bmap
                ),
            )
            .at(OFF_OFFSET_BMAP as u64));
        }
        if bmap_end > u64::from(self.offset_data) {
            return Err(Error::malformed(
                OFF_OFFSET_DATA as u64,
                format!(
                    "VDI block map ({:#x}..{bmap_end:#x}) overlaps the data area at {:#x}",
                    self.offset_bmap, self.offset_data
                ),
            ));
        }
        if self.blocks_allocated > self.blocks_in_image {
            findings.push(
                Finding::warning(
                    crate::rule::BLOCK_MAP,
                    format!(
                        "VDI header says {} blocks are allocated, more than the {} blocks of \
                         the image",
                        self.blocks_allocated, self.blocks_in_image
                    ),
                )
                .at(OFF_BLOCKS_ALLOCATED as u64),
            );
        }
        Ok(())
    }
}

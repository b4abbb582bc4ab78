//! The QED header: parsing and the checks QEMU applies when opening.

use vmsnap_core::limits::{MAX_TABLE_BYTES, MAX_VIRTUAL_SIZE};
use vmsnap_core::{Bytes, Error, Result};

use crate::raw::*;

/// The parsed QED header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Cluster size in bytes.
    pub cluster_size: u32,
    /// Clusters per L1/L2 table.
    pub table_size: u32,
    /// Header size in clusters.
    pub header_size: u32,
    /// Feature bits (must all be known).
    pub features: u64,
    /// Compatible feature bits.
    pub compat_features: u64,
    /// Auto-clear feature bits.
    pub autoclear_features: u64,
    /// File offset of the L1 table.
    pub l1_table_offset: u64,
    /// Virtual size in bytes.
    pub image_size: u64,
    /// Byte offset of the backing file name.
    pub backing_filename_offset: u32,
    /// Length of the backing file name.
    pub backing_filename_size: u32,
}

impl Header {
    /// Parses and checks the header at the start of a file of `file_len` bytes.
    pub fn parse(b: &[u8], file_len: u64) -> Result<Header> {
        let b = Bytes::new(b, 0);
        if b.slice(0, 4)? != MAGIC {
            return Err(Error::malformed(0, "no QED magic"));
        }
        let h = Header {
            cluster_size: b.u32_le(4)?,
            table_size: b.u32_le(8)?,
            header_size: b.u32_le(12)?,
            features: b.u64_le(16)?,
            compat_features: b.u64_le(24)?,
            autoclear_features: b.u64_le(32)?,
            l1_table_offset: b.u64_le(40)?,
            image_size: b.u64_le(48)?,
            backing_filename_offset: b.u32_le(56)?,
            backing_filename_size: b.u32_le(60)?,
        };
        h.validate(file_len)?;
        Ok(h)
    }

    fn validate(&self, file_len: u64) -> Result<()> {
        let cs = self.cluster_size;
        if cs > MAX_CLUSTER_SIZE {
            return Err(Error::limit(
                "QED cluster size",
                u64::from(cs),
                u64::from(MAX_CLUSTER_SIZE),
            )
            .at(4));
        }
        if cs < MIN_CLUSTER_SIZE || !cs.is_power_of_two() {
            return Err(Error::malformed(
                4,
                format!("QED cluster size {cs} is not a power of two from 4 KiB to 64 MiB"),
            ));
        }
        let ts = self.table_size;
        if ts > MAX_TABLE_SIZE {
            return Err(Error::limit(
                "QED table size (clusters)",
                u64::from(ts),
                u64::from(MAX_TABLE_SIZE),
            )
            .at(8));
        }
        if ts == 0 || !ts.is_power_of_two() {
            return Err(Error::malformed(
                8,
                format!("QED table size {ts} is not a power of two from 1 to 16"),
            ));
        }
        let unknown = self.features & !KNOWN_FEATURES;
        if unknown != 0 {
            return Err(
                Error::unsupported(format!("unknown QED feature bits {unknown:#x}")).at(16),
            );
        }
        if self.header_size == 0 {
            return Err(Error::malformed(12, "QED header size is 0 clusters"));
        }
        let header_bytes = self.header_bytes();
        if header_bytes > file_len {
            return Err(Error::truncated(
                12,
                format!(
                    "QED header of {} clusters ({header_bytes} bytes) is longer than the file \
                     ({file_len} bytes)",
                    self.header_size
                ),
            ));
        }
        if !self.image_size.is_multiple_of(512) {
            return Err(Error::malformed(
                48,
                format!(
                    "QED image size {} is not a multiple of 512",
                    self.image_size
                ),
            ));
        }
        if self.image_size > self.max_image_size() {
            return Err(Error::malformed(
                48,
                format!(
                    "QED image size {} exceeds what the tables can map ({})",
                    self.image_size,
                    self.max_image_size()
                ),
            ));
        }
        if self.image_size > MAX_VIRTUAL_SIZE {
            return Err(Error::limit("QED image size", self.image_size, MAX_VIRTUAL_SIZE).at(48));
        }
        self.check_table_offset(self.l1_table_offset, file_len)
            .map_err(|e| e.at(40).during("checking the L1 table offset"))?;
        if self.l1_bytes_used() > MAX_TABLE_BYTES {
            return Err(Error::limit(
                "QED L1 table bytes",
                self.l1_bytes_used(),
                MAX_TABLE_BYTES,
            ));
        }
        if self.has_backing() {
            let n = self.backing_filename_size;
            if n > MAX_BACKING_NAME {
                return Err(Error::limit(
                    "QED backing file name length",
                    u64::from(n),
                    u64::from(MAX_BACKING_NAME),
                )
                .at(60));
            }
            let end = u64::from(self.backing_filename_offset) + u64::from(n);
            if u64::from(self.backing_filename_offset) < HEADER_LEN as u64 || end > header_bytes {
                return Err(Error::malformed(
                    56,
                    format!(
                        "QED backing file name ({:#x}..{end:#x}) is not inside the header \
                         (64..{header_bytes:#x})",
                        self.backing_filename_offset
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Bytes of the header area (header_size clusters).
    pub fn header_bytes(&self) -> u64 {
        u64::from(self.header_size) * u64::from(self.cluster_size)
    }

    /// Bytes of one L1 or L2 table.
    pub fn table_bytes(&self) -> u64 {
        u64::from(self.table_size) * u64::from(self.cluster_size)
    }

    /// Entries of one table.
    pub fn table_entries(&self) -> u64 {
        self.table_bytes() / 8
    }

    /// Guest bytes one L2 table maps.
    pub fn l2_coverage(&self) -> u64 {
        self.table_entries() * u64::from(self.cluster_size)
    }

    /// Largest image the tables can map (`entries² × cluster_size`, saturating).
    pub fn max_image_size(&self) -> u64 {
        self.table_entries()
            .saturating_mul(self.table_entries())
            .saturating_mul(u64::from(self.cluster_size))
    }

    /// L1 entries the image size needs.
    pub fn l1_entries_used(&self) -> u64 {
        self.image_size.div_ceil(self.l2_coverage())
    }

    /// Bytes of the L1 table the image size needs.
    pub fn l1_bytes_used(&self) -> u64 {
        self.l1_entries_used() * 8
    }

    /// Whether the image names a backing file.
    pub fn has_backing(&self) -> bool {
        self.features & F_BACKING_FILE != 0
    }

    /// Whether the image needs a consistency check (not closed cleanly).
    pub fn need_check(&self) -> bool {
        self.features & F_NEED_CHECK != 0
    }

    /// The backing format, when the header fixes it (only raw can be fixed).
    pub fn backing_format(&self) -> Option<&'static str> {
        (self.features & F_BACKING_FORMAT_NO_PROBE != 0).then_some("raw")
    }

    /// Checks that a table at `offset` is cluster aligned, after the header, and inside
    /// a file of `file_len` bytes.
    pub fn check_table_offset(&self, offset: u64, file_len: u64) -> Result<()> {
        let cs = u64::from(self.cluster_size);
        if !offset.is_multiple_of(cs) {
            return Err(Error::malformed(
                offset,
                format!("QED table offset {offset:#x} is not cluster aligned"),
            ));
        }
        if offset < self.header_bytes() {
            return Err(Error::malformed(
                offset,
                format!("QED table offset {offset:#x} lies inside the header"),
            ));
        }
        let end = offset.checked_add(self.table_bytes());
        if end.is_none_or(|e| e > file_len) {
            return Err(Error::malformed(
                offset,
                format!(
                    "QED table at {offset:#x} of {} bytes ends past the end of the file \
                     ({file_len:#x})",
                    self.table_bytes()
                ),
            ));
        }
        Ok(())
    }

    /// Names of the feature bits set.
    pub fn feature_names(&self) -> Vec<&'static str> {
        [
            (F_BACKING_FILE, "backing_file"),
            (F_NEED_CHECK, "need_check"),
            (F_BACKING_FORMAT_NO_PROBE, "backing_format_no_probe"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.features & bit != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

//! The 64-byte Parallels header: parsing and the checks QEMU applies (and a few more).

use vmsnap_core::limits::{MAX_TABLE_ENTRIES, MAX_VIRTUAL_SIZE};
use vmsnap_core::{Bytes, Error, Finding, Result};

use crate::raw::*;

/// Which of the two signatures the image has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Variant {
    /// `WithoutFreeSpace`: BAT entries in sectors, 32-bit sector count.
    Old,
    /// `WithouFreSpacExt`: BAT entries in clusters.
    Ext,
}

impl Variant {
    /// The signature text.
    pub fn magic(self) -> &'static str {
        match self {
            Variant::Old => "WithoutFreeSpace",
            Variant::Ext => "WithouFreSpacExt",
        }
    }
}

/// The parsed header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Signature variant.
    pub variant: Variant,
    /// Version (2).
    pub version: u32,
    /// Legacy geometry: heads.
    pub heads: u32,
    /// Legacy geometry: cylinders.
    pub cylinders: u32,
    /// Cluster size in sectors.
    pub tracks: u32,
    /// BAT entries.
    pub bat_entries: u32,
    /// Virtual size in sectors, as stored (all 64 bits).
    pub nb_sectors_raw: u64,
    /// Open/closed marker.
    pub in_use: u32,
    /// First data sector (0 = right after the BAT).
    pub data_off: u32,
    /// Flags (bit 0: empty image).
    pub flags: u32,
    /// Sector of the format extension cluster (0 = none).
    pub ext_off: u64,
}

impl Header {
    /// Parses and checks the header of a file of `file_len` bytes.
    pub fn parse(b: &[u8], file_len: u64, findings: &mut Vec<Finding>) -> Result<Header> {
        let b = Bytes::new(b, 0);
        let variant = match b.array::<16>(0)? {
            MAGIC_OLD => Variant::Old,
            MAGIC_EXT => Variant::Ext,
            _ => return Err(Error::malformed(0, "no Parallels signature")),
        };
        let h = Header {
            variant,
            version: b.u32_le(16)?,
            heads: b.u32_le(20)?,
            cylinders: b.u32_le(24)?,
            tracks: b.u32_le(28)?,
            bat_entries: b.u32_le(32)?,
            nb_sectors_raw: b.u64_le(36)?,
            in_use: b.u32_le(44)?,
            data_off: b.u32_le(48)?,
            flags: b.u32_le(52)?,
            ext_off: b.u64_le(56)?,
        };
        h.validate(file_len, findings)?;
        Ok(h)
    }

    fn validate(&self, file_len: u64, findings: &mut Vec<Finding>) -> Result<()> {
        if self.version != VERSION {
            return Err(Error::unsupported(format!(
                "Parallels version {} (only 2 is defined)",
                self.version
            ))
            .at(16));
        }
        // CVE-2014-0142: a zero cluster size divided by.
        if self.tracks == 0 {
            return Err(Error::malformed(28, "Parallels cluster size (tracks) is 0"));
        }
        if self.cluster_size() > MAX_CLUSTER_SIZE {
            return Err(Error::limit(
                "Parallels cluster size",
                self.cluster_size(),
                MAX_CLUSTER_SIZE,
            )
            .at(28));
        }
        // CVE-2014-0143: the BAT size is checked before anything is allocated for it.
        let n = u64::from(self.bat_entries);
        if n > MAX_TABLE_ENTRIES {
            return Err(Error::limit("Parallels BAT entries", n, MAX_TABLE_ENTRIES).at(32));
        }
        if self.bat_end() > file_len {
            return Err(Error::truncated(
                32,
                format!(
                    "Parallels BAT of {n} entries ends at {:#x}, past the end of the file \
                     ({file_len:#x})",
                    self.bat_end()
                ),
            ));
        }
        let vsize = self.nb_sectors().saturating_mul(SECTOR);
        if vsize > MAX_VIRTUAL_SIZE {
            return Err(Error::limit("Parallels virtual size", vsize, MAX_VIRTUAL_SIZE).at(36));
        }
        if n * self.cluster_size() < vsize {
            findings.push(
                Finding::warning(
                    crate::rule::BAT,
                    format!(
                        "Parallels BAT of {n} clusters covers less than the virtual size \
                         ({vsize} bytes); the rest reads as zeros"
                    ),
                )
                .at(32),
            );
        }
        if self.data_off != 0 && u64::from(self.data_off) * SECTOR < self.bat_end() {
            findings.push(
                Finding::warning(
                    crate::rule::DATA_OFF,
                    format!(
                        "Parallels data_off ({} sectors) lies inside the header and BAT",
                        self.data_off
                    ),
                )
                .at(48),
            );
        }
        match self.in_use {
            0 | IN_USE_CLOSED => {}
            IN_USE_OPEN => findings.push(
                Finding::warning(
                    crate::rule::DIRTY,
                    "Parallels image is marked in use: it was not closed cleanly",
                )
                .at(44),
            ),
            v => findings.push(
                Finding::warning(
                    crate::rule::DIRTY,
                    format!("unknown Parallels in_use marker {v:#x}"),
                )
                .at(44),
            ),
        }
        Ok(())
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        u64::from(self.tracks) * SECTOR
    }

    /// Virtual size in sectors (the old format only uses the low 32 bits, as QEMU).
    pub fn nb_sectors(&self) -> u64 {
        match self.variant {
            Variant::Old => self.nb_sectors_raw & 0xFFFF_FFFF,
            Variant::Ext => self.nb_sectors_raw,
        }
    }

    /// Virtual size in bytes.
    pub fn virtual_size(&self) -> u64 {
        self.nb_sectors().saturating_mul(SECTOR)
    }

    /// File offset just past the BAT.
    pub fn bat_end(&self) -> u64 {
        HEADER_LEN as u64 + 4 * u64::from(self.bat_entries)
    }

    /// Bytes one BAT unit stands for (a cluster for Ext, a sector for the old format).
    pub fn bat_unit(&self) -> u64 {
        match self.variant {
            Variant::Old => SECTOR,
            Variant::Ext => self.cluster_size(),
        }
    }

    /// The in-use marker's meaning.
    pub fn in_use_name(&self) -> &'static str {
        match self.in_use {
            0 => "none",
            IN_USE_OPEN => "open",
            IN_USE_CLOSED => "closed",
            _ => "unknown",
        }
    }
}

//! The VMA header: uuid, time, the blob buffer, configuration files and the device table.

use std::collections::BTreeMap;

use vmsnap_core::{Bytes, Error, Finding, Layer, LayerExt, Result, ResultExt};

use crate::md5;
use crate::raw::{
    BLOB_OFFSET_AT, BLOB_SIZE_AT, CONFIG_DATA_AT, CONFIG_NAMES_AT, CTIME_AT, DEV_INFO_AT,
    DEV_INFO_SIZE, FIXED_HEADER_SIZE, HEADER_SIZE_AT, MAGIC, MAX_CONFIGS, MAX_DEVICE_SIZE,
    MAX_DEV_ID, MAX_HEADER_SIZE, MD5_AT, UUID_AT, VERSION, VERSION_AT,
};
use crate::rule;

/// One configuration file stored in the header (`qemu-server.conf`, `qemu-server.fw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Its name.
    pub name: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// One device (a disk, or `vmstate`) of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its id: the index in the device table, the `dev_id` of its clusters (1 to 255).
    pub id: u8,
    /// Its name (`drive-scsi0`).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A checked header.
#[derive(Debug, Clone)]
pub struct Header {
    /// The archive's uuid, repeated in every extent header.
    pub uuid: [u8; 16],
    /// Backup time, seconds since the epoch.
    pub ctime: i64,
    /// Size of the whole header: the first extent starts here.
    pub header_size: u64,
    /// Whether the stored MD5 matches the header's bytes.
    pub md5_ok: bool,
    /// The configuration files, in table order.
    pub configs: Vec<Config>,
    /// The devices, by id.
    pub devices: Vec<Device>,
    /// Findings made while parsing.
    pub findings: Vec<Finding>,
}

/// The blobs of the blob buffer by their offset in it, as vma-reader.c indexes them: from
/// offset 1, each a little-endian u16 length and that many bytes; a blob that would run
/// past the buffer is skipped, and the walk goes on after it.
fn blobs(buf: &[u8]) -> BTreeMap<u32, &[u8]> {
    let mut out = BTreeMap::new();
    let mut pos: usize = 1;
    while let Some(len) = buf.get(pos..pos + 2) {
        let len = usize::from(u16::from_le_bytes([
            len.first().copied().unwrap_or(0),
            len.get(1).copied().unwrap_or(0),
        ]));
        if let (Some(data), Ok(at)) = (buf.get(pos + 2..pos + 2 + len), u32::try_from(pos)) {
            out.insert(at, data);
        }
        pos += 2 + len;
    }
    out
}

/// A blob as a C string (vma-reader.c's `get_header_str`: it must end with a NUL; the
/// string ends at the first one).
fn string(blobs: &BTreeMap<u32, &[u8]>, ptr: u32) -> Option<String> {
    let b = blobs.get(&ptr)?;
    if b.last() != Some(&0) {
        return None;
    }
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    Some(String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned())
}

impl Header {
    /// Reads and checks the header of `file`.
    pub fn read(file: &dyn Layer) -> Result<Header> {
        let len = file.len();
        if len < FIXED_HEADER_SIZE {
            return Err(Error::truncated(
                0,
                format!("{len} bytes are too short for the {FIXED_HEADER_SIZE}-byte VMA header"),
            ));
        }
        let fixed = file.read_vec(0, FIXED_HEADER_SIZE, FIXED_HEADER_SIZE, "VMA header")?;
        let b = Bytes::new(&fixed, 0);
        if b.slice(0, 4)? != MAGIC {
            return Err(Error::malformed(0, "no VMA magic"));
        }
        let version = b.u32_be(VERSION_AT)?;
        if version != VERSION {
            return Err(Error::unsupported(format!(
                "VMA version {version} (vma-reader reads version {VERSION} only)"
            ))
            .at(VERSION_AT as u64));
        }
        let header_size = u64::from(b.u32_be(HEADER_SIZE_AT)?);
        if header_size <= FIXED_HEADER_SIZE {
            return Err(Error::malformed(
                HEADER_SIZE_AT as u64,
                format!("header size {header_size} leaves no room for the blob buffer"),
            ));
        }
        if header_size > MAX_HEADER_SIZE {
            return Err(
                Error::limit("VMA header size", header_size, MAX_HEADER_SIZE)
                    .at(HEADER_SIZE_AT as u64),
            );
        }
        if header_size > len {
            return Err(Error::truncated(
                HEADER_SIZE_AT as u64,
                format!(
                    "the {header_size}-byte header runs past the end of the file ({len} bytes)"
                ),
            ));
        }
        let head = file
            .read_vec(0, header_size, MAX_HEADER_SIZE, "VMA header")
            .during("reading the VMA header")?;
        let b = Bytes::new(&head, 0);
        let mut findings = Vec::new();
        let md5_ok = md5::verify(&head, MD5_AT);
        if !md5_ok {
            findings.push(
                Finding::warning(
                    rule::HEADER_MD5,
                    "the VMA header's MD5 does not match its bytes (vma-reader refuses the archive)",
                )
                .at(MD5_AT as u64),
            );
        }
        let blob_offset = u64::from(b.u32_be(BLOB_OFFSET_AT)?);
        let blob_size = u64::from(b.u32_be(BLOB_SIZE_AT)?);
        let blob_end = blob_offset.saturating_add(blob_size);
        if blob_offset < FIXED_HEADER_SIZE || blob_end > header_size {
            return Err(Error::malformed(
                BLOB_OFFSET_AT as u64,
                format!(
                    "blob buffer {blob_offset:#x}+{blob_size:#x} lies outside the header's blob \
                     area {FIXED_HEADER_SIZE:#x}..{header_size:#x}"
                ),
            ));
        }
        let buf = head
            .get(blob_offset as usize..blob_end as usize)
            .unwrap_or_default();
        let blobs = blobs(buf);
        let mut configs = Vec::new();
        for i in 0..MAX_CONFIGS {
            let name_ptr = b.u32_be(CONFIG_NAMES_AT + 4 * i)?;
            let data_ptr = b.u32_be(CONFIG_DATA_AT + 4 * i)?;
            if name_ptr == 0 || data_ptr == 0 {
                continue;
            }
            let (Some(name), Some(data)) = (string(&blobs, name_ptr), blobs.get(&data_ptr)) else {
                return Err(Error::malformed(
                    (CONFIG_NAMES_AT + 4 * i) as u64,
                    format!(
                        "configuration {i}: name {name_ptr:#x} or data {data_ptr:#x} is not a \
                         blob of the blob buffer"
                    ),
                ));
            };
            configs.push(Config {
                name,
                data: data.to_vec(),
            });
        }
        let mut devices: Vec<Device> = Vec::new();
        for id in 1..=MAX_DEV_ID {
            let at = DEV_INFO_AT + DEV_INFO_SIZE * usize::from(id);
            let name_ptr = b.u32_be(at)?;
            let size = b.u64_be(at + 8)?;
            if name_ptr == 0 && size == 0 {
                continue;
            }
            let Some(name) = string(&blobs, name_ptr) else {
                findings.push(
                    Finding::warning(
                        rule::DEVICE_NAME,
                        format!(
                            "device {id}: name pointer {name_ptr:#x} is not a string of the blob \
                             buffer; the device is skipped (as vma-reader does)"
                        ),
                    )
                    .at(at as u64),
                );
                continue;
            };
            if size == 0 {
                continue; // vma-reader skips empty devices
            }
            if size > MAX_DEVICE_SIZE {
                return Err(
                    Error::limit("VMA device size", size, MAX_DEVICE_SIZE).at(at as u64 + 8)
                );
            }
            if devices.iter().any(|d| d.name == name) {
                return Err(Error::malformed(
                    at as u64,
                    format!("two devices are named {name:?}"),
                ));
            }
            devices.push(Device { id, name, size });
        }
        Ok(Header {
            uuid: b.array(UUID_AT)?,
            ctime: i64::from_be_bytes(b.array(CTIME_AT)?),
            header_size,
            md5_ok,
            configs,
            devices,
            findings,
        })
    }

    /// The device with id `id`.
    pub fn device(&self, id: u8) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }
}

/// The uuid in its usual text form.
pub fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default().to_string();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_walk_as_vma_reader_does() {
        // Position 0 unused; "ab\0" at 1; a blob claiming 9 bytes that do not fit.
        let buf = [0u8, 3, 0, b'a', b'b', 0, 9, 0, 1];
        let m = blobs(&buf);
        assert_eq!(m.len(), 1);
        assert_eq!(string(&m, 1).as_deref(), Some("ab"));
        assert_eq!(string(&m, 6), None);
    }

    #[test]
    fn uuid_text_groups() {
        let u = [
            0x6a, 0x1e, 0x7b, 0x2c, 0x3d, 0x4f, 0x4a, 0x5b, 0x8c, 0x6d, 0x7e, 0x8f, 0x9a, 0x0b,
            0x1c, 0x2d,
        ];
        assert_eq!(uuid_text(&u), "6a1e7b2c-3d4f-4a5b-8c6d-7e8f9a0b1c2d");
    }
}

//! Recognising kdump-compressed dumps (makedumpfile's format, also what QEMU's
//! `dump-guest-memory -z/-l/-s` writes), plain or flattened. The `kdump` plugin
//! (vmsnap-kdump) reads them; the ELF reader declines them, and opening one as an ELF
//! core fails with an `Unsupported` error naming the compression and that plugin.

use vmsnap_core::{Bytes, Error, Result};

// The layout's constants, for the crate that reads these dumps (vmsnap-kdump).
pub use crate::raw::{
    DISKDUMP_SIGNATURE, DUMP_DH_COMPRESSED_INCOMPLETE, DUMP_DH_COMPRESSED_LZO,
    DUMP_DH_COMPRESSED_SNAPPY, DUMP_DH_COMPRESSED_ZLIB, DUMP_DH_COMPRESSED_ZSTD, FLAT_HEADER_SIZE,
    FLAT_SIGNATURE, KDUMP_SIGNATURE, KDUMP_STATUS_OFFSET_32, KDUMP_STATUS_OFFSET_64,
};

/// What the head of a kdump-compressed file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdumpInfo {
    /// `KDUMP   ` or `DISKDUMP`.
    pub signature: &'static str,
    /// Wrapped in makedumpfile's flattened format (QEMU's default for `-z/-l/-s`).
    pub flattened: bool,
    /// `header_version`, when the header was found.
    pub header_version: Option<u32>,
    /// `status` flags, when the header was found.
    pub status: Option<u32>,
    /// `block_size` (page size), when the header was found.
    pub block_size: Option<u32>,
}

/// The compressions whose flags are set in a kdump header's `status` (`zlib+lzo`), `None`
/// when none is; the `kdump` plugin names them with this too.
pub fn compression_names(status: u32) -> Option<String> {
    let names: Vec<&str> = [
        (DUMP_DH_COMPRESSED_ZLIB, "zlib"),
        (DUMP_DH_COMPRESSED_LZO, "lzo"),
        (DUMP_DH_COMPRESSED_SNAPPY, "snappy"),
        (DUMP_DH_COMPRESSED_ZSTD, "zstd"),
    ]
    .into_iter()
    .filter(|(bit, _)| status & bit != 0)
    .map(|(_, name)| name)
    .collect();
    (!names.is_empty()).then(|| names.join("+"))
}

impl KdumpInfo {
    /// The compression named by the status flags.
    pub fn compression(&self) -> String {
        let Some(s) = self.status else {
            return "unknown compression (disk_dump_header not in the first flattened record)"
                .to_string();
        };
        compression_names(s).unwrap_or_else(|| "no compression flag".to_string())
    }

    /// Whether the header says the dump is incomplete.
    pub fn incomplete(&self) -> bool {
        self.status
            .is_some_and(|s| s & DUMP_DH_COMPRESSED_INCOMPLETE != 0)
    }

    /// The error `open` returns.
    pub fn unsupported(&self) -> Error {
        Error::unsupported(format!(
            "kdump-compressed dump ({} signature{}, {} pages{}) is not an ELF core; \
             the kdump plugin reads it (--format kdump)",
            self.signature.trim_end(),
            if self.flattened {
                ", makedumpfile flattened format"
            } else {
                ""
            },
            self.compression(),
            if self.incomplete() {
                ", marked incomplete"
            } else {
                ""
            }
        ))
        .at(0)
    }
}

fn signature(b: &[u8]) -> Option<&'static str> {
    match b.get(..8)? {
        s if s == KDUMP_SIGNATURE => Some("KDUMP   "),
        s if s == DISKDUMP_SIGNATURE => Some("DISKDUMP"),
        _ => None,
    }
}

/// Parses what it can of a `disk_dump_header` at the start of `b`.
fn header(b: &[u8], sig: &'static str, flattened: bool) -> KdumpInfo {
    let bytes = Bytes::new(b, 0);
    let version = bytes.u32_le(8).ok();
    // `struct timeval` is 16 bytes on 64-bit writers and 8 on 32-bit ones; take the
    // layout whose block size is a plausible page size.
    let mut status = None;
    let mut block_size = None;
    for at in [KDUMP_STATUS_OFFSET_64, KDUMP_STATUS_OFFSET_32] {
        if let (Ok(s), Ok(bs)) = (bytes.u32_le(at), bytes.u32_le(at + 4)) {
            if bs.is_power_of_two() && (512..=(1 << 20)).contains(&bs) {
                status = Some(s);
                block_size = Some(bs);
                break;
            }
        }
    }
    KdumpInfo {
        signature: sig,
        flattened,
        header_version: version,
        status,
        block_size,
    }
}

/// Recognises a kdump-compressed file from its first bytes.
pub fn detect(head: &[u8]) -> Option<KdumpInfo> {
    if let Some(sig) = signature(head) {
        return Some(header(head, sig, false));
    }
    if head.get(..16)? != FLAT_SIGNATURE {
        return None;
    }
    // Flattened: 4096-byte header, then records of (offset, size) big-endian + data.
    // The first record normally carries the disk_dump_header at offset 0.
    let rec = head.get(FLAT_HEADER_SIZE..);
    let info = rec.and_then(|r| {
        let b = Bytes::new(r, FLAT_HEADER_SIZE as u64);
        let off = b.u64_be(0).ok()?;
        let data = r.get(16..)?;
        let sig = signature(data)?;
        (off == 0).then(|| header(data, sig, true))
    });
    Some(info.unwrap_or(KdumpInfo {
        signature: "KDUMP   ",
        flattened: true,
        header_version: None,
        status: None,
        block_size: None,
    }))
}

/// Fails with the Unsupported error when `head` is a kdump-compressed file.
pub fn refuse(head: &[u8]) -> Result<()> {
    match detect(head) {
        Some(k) => Err(k.unsupported()),
        None => Ok(()),
    }
}

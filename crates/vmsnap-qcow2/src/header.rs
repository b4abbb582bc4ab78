//! The qcow2 header (versions 2 and 3) and its extensions, validated the way QEMU's
//! `qcow2_do_open` and `qcow2_read_extensions` validate them.

use serde_json::{json, Value};
use vmsnap_core::{Bytes, Error, ErrorKind, Result};

use crate::limits::*;
use crate::raw::{self, off};

/// One header extension as found in cluster 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Extension type.
    pub kind: u32,
    /// File offset of its data.
    pub offset: u64,
    /// Length of its data.
    pub len: u32,
}

/// One entry of the feature name table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureName {
    /// 0 incompatible, 1 compatible, 2 autoclear.
    pub kind: u8,
    /// Bit number.
    pub bit: u8,
    /// Name (NUL padding removed).
    pub name: String,
}

/// The bitmaps extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapsExt {
    /// Number of bitmaps.
    pub nb_bitmaps: u32,
    /// Reserved (must be 0).
    pub reserved: u32,
    /// Size of the bitmap directory.
    pub directory_size: u64,
    /// Offset of the bitmap directory.
    pub directory_offset: u64,
}

/// The full-disk-encryption header pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoExt {
    /// Offset of the LUKS header.
    pub offset: u64,
    /// Length of the LUKS header area.
    pub length: u64,
}

/// A parsed, validated qcow2 header.
#[derive(Debug, Clone)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// Offset of the backing file name (0 = none).
    pub backing_file_offset: u64,
    /// Length of the backing file name.
    pub backing_file_size: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// Virtual size.
    pub size: u64,
    /// 0 none, 1 AES, 2 LUKS.
    pub crypt_method: u32,
    /// Active L1 entries.
    pub l1_size: u32,
    /// Active L1 offset.
    pub l1_table_offset: u64,
    /// Refcount table offset.
    pub refcount_table_offset: u64,
    /// Refcount table length in clusters.
    pub refcount_table_clusters: u32,
    /// Number of internal snapshots.
    pub nb_snapshots: u32,
    /// Snapshot table offset.
    pub snapshots_offset: u64,
    /// Incompatible features (0 for v2).
    pub incompatible: u64,
    /// Compatible features (0 for v2).
    pub compatible: u64,
    /// Autoclear features (0 for v2).
    pub autoclear: u64,
    /// log2 of the refcount width (4 for v2).
    pub refcount_order: u32,
    /// Header length (72 for v2).
    pub header_length: u32,
    /// 0 deflate, 1 zstd.
    pub compression_type: u8,
    /// Bytes 72..80 read as a u64 whatever the version (OpenStack's Q2 reads them on v2).
    pub raw_bytes_72: u64,
    /// Backing file name bytes, as stored.
    pub backing_file: Option<Vec<u8>>,
    /// Extensions in file order (the end marker excluded).
    pub extensions: Vec<Extension>,
    /// Backing format name.
    pub backing_format: Option<String>,
    /// Feature name table.
    pub feature_names: Vec<FeatureName>,
    /// Bitmaps extension.
    pub bitmaps: Option<BitmapsExt>,
    /// FDE header pointer.
    pub crypto: Option<CryptoExt>,
    /// External data file name.
    pub data_file: Option<Vec<u8>>,
    /// Non-fatal oddities seen while parsing: (rule, message, offset).
    pub notes: Vec<(&'static str, String, u64)>,
}

/// A qcow (version 1) header, detected so it can be reported as such.
#[derive(Debug, Clone)]
pub struct QcowV1 {
    /// Virtual size.
    pub size: u64,
    /// log2 of the cluster size.
    pub cluster_bits: u8,
    /// log2 of L2 entries.
    pub l2_bits: u8,
    /// Encryption method.
    pub crypt_method: u32,
    /// Backing file offset.
    pub backing_file_offset: u64,
}

fn bad(offset: u64, msg: impl Into<String>) -> Error {
    Error::malformed(offset, msg)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Header {
    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits
    }

    /// Whether L2 entries are 128-bit with subclusters.
    pub fn extended_l2(&self) -> bool {
        self.incompatible & raw::INCOMPAT_EXTL2 != 0
    }

    /// Whether guest data lives in an external data file.
    pub fn has_data_file(&self) -> bool {
        self.incompatible & raw::INCOMPAT_DATA_FILE != 0
    }

    /// log2 of L2 entries per table.
    pub fn l2_bits(&self) -> u32 {
        if self.extended_l2() {
            self.cluster_bits - 4
        } else {
            self.cluster_bits - 3
        }
    }

    /// Bytes of guest space one L1 entry covers, as a shift.
    pub fn l1_shift(&self) -> u32 {
        self.cluster_bits + self.l2_bits()
    }

    /// L1 entries needed for `size` bytes (`qcow2_size_to_l1`).
    pub fn size_to_l1(&self, size: u64) -> u64 {
        let shift = self.l1_shift();
        (size >> shift) + u64::from(size & ((1u64 << shift) - 1) != 0)
    }

    /// Backing file name as text.
    pub fn backing_name(&self) -> Option<String> {
        self.backing_file.as_deref().map(lossy)
    }

    /// External data file name as text.
    pub fn data_file_name(&self) -> Option<String> {
        self.data_file.as_deref().map(lossy)
    }

    /// Name of feature `bit` of table `kind` from the feature name table.
    pub fn feature_name(&self, kind: u8, bit: u8) -> Option<&str> {
        self.feature_names
            .iter()
            .find(|f| f.kind == kind && f.bit == bit)
            .map(|f| f.name.as_str())
    }

    /// Parses the fixed header from its first bytes. `file_len` is the image size.
    /// Returns `Err` with kind `Unsupported` for qcow v1 and unknown versions.
    pub fn parse_fixed(b: &[u8], file_len: u64) -> Result<Header> {
        let b = Bytes::new(b, 0);
        if b.slice(0, 4)? != raw::MAGIC {
            return Err(bad(0, "not a qcow2 image (bad magic)"));
        }
        let version = b.u32_be(off::VERSION)?;
        if version == 1 {
            let v1 = QcowV1::parse(b.as_slice())?;
            return Err(Error::unsupported(format!(
                "this is a qcow (version 1) image, QEMU format `qcow`, not qcow2: virtual size \
                 {}, cluster_bits {}, l2_bits {}, crypt_method {}{}; qcow v1 is detected but \
                 not read",
                v1.size,
                v1.cluster_bits,
                v1.l2_bits,
                v1.crypt_method,
                if v1.backing_file_offset != 0 {
                    ", with a backing file"
                } else {
                    ""
                }
            ))
            .at(off::VERSION as u64));
        }
        if version != 2 && version != 3 {
            return Err(Error::unsupported(format!(
                "unsupported qcow2 version {version} (QEMU reads versions 2 and 3)"
            ))
            .at(off::VERSION as u64));
        }
        let cluster_bits = b.u32_be(off::CLUSTER_BITS)?;
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "cluster_bits {cluster_bits} outside {MIN_CLUSTER_BITS}..={MAX_CLUSTER_BITS} \
                     (512 B to 2 MiB clusters)"
                ),
            )
            .at(off::CLUSTER_BITS as u64));
        }
        let cluster_size = 1u64 << cluster_bits;
        let mut h = Header {
            version,
            backing_file_offset: b.u64_be(off::BACKING_OFFSET)?,
            backing_file_size: b.u32_be(off::BACKING_SIZE)?,
            cluster_bits,
            size: b.u64_be(off::SIZE)?,
            crypt_method: b.u32_be(off::CRYPT)?,
            l1_size: b.u32_be(off::L1_SIZE)?,
            l1_table_offset: b.u64_be(off::L1_OFFSET)?,
            refcount_table_offset: b.u64_be(off::REFCOUNT_OFFSET)?,
            refcount_table_clusters: b.u32_be(off::REFCOUNT_CLUSTERS)?,
            nb_snapshots: b.u32_be(off::NB_SNAPSHOTS)?,
            snapshots_offset: b.u64_be(off::SNAPSHOTS_OFFSET)?,
            incompatible: 0,
            compatible: 0,
            autoclear: 0,
            refcount_order: 4,
            header_length: raw::V2_HEADER_LEN,
            compression_type: raw::COMPRESSION_ZLIB,
            raw_bytes_72: b.u64_be(off::INCOMPAT).unwrap_or(0),
            backing_file: None,
            extensions: Vec::new(),
            backing_format: None,
            feature_names: Vec::new(),
            bitmaps: None,
            crypto: None,
            data_file: None,
            notes: Vec::new(),
        };
        if version == 3 {
            h.incompatible = b.u64_be(off::INCOMPAT)?;
            h.compatible = b.u64_be(off::COMPAT)?;
            h.autoclear = b.u64_be(off::AUTOCLEAR)?;
            h.refcount_order = b.u32_be(off::REFCOUNT_ORDER)?;
            h.header_length = b.u32_be(off::HEADER_LENGTH)?;
            if h.header_length < raw::V3_MIN_HEADER_LEN {
                return Err(bad(
                    off::HEADER_LENGTH as u64,
                    format!("header_length {} is below 104", h.header_length),
                ));
            }
            if !h.header_length.is_multiple_of(8) {
                return Err(bad(
                    off::HEADER_LENGTH as u64,
                    format!("header_length {} is not a multiple of 8", h.header_length),
                ));
            }
            if u64::from(h.header_length) > cluster_size {
                return Err(bad(
                    off::HEADER_LENGTH as u64,
                    format!(
                        "header_length {} is larger than the cluster ({cluster_size})",
                        h.header_length
                    ),
                ));
            }
            if h.header_length > raw::V3_MIN_HEADER_LEN {
                h.compression_type = b.u8(off::COMPRESSION_TYPE)?;
            }
        }
        if h.refcount_order > MAX_REFCOUNT_ORDER {
            return Err(bad(
                off::REFCOUNT_ORDER as u64,
                format!(
                    "refcount_order {} is above {MAX_REFCOUNT_ORDER}",
                    h.refcount_order
                ),
            ));
        }
        if h.extended_l2() && cluster_bits < MIN_CLUSTER_BITS_EXTL2 {
            return Err(bad(
                off::CLUSTER_BITS as u64,
                format!(
                    "extended L2 entries need clusters of at least 16 KiB (cluster_bits \
                     {cluster_bits})"
                ),
            ));
        }
        if h.size > vmsnap_core::limits::MAX_VIRTUAL_SIZE {
            return Err(Error::limit(
                "virtual size",
                h.size,
                vmsnap_core::limits::MAX_VIRTUAL_SIZE,
            )
            .at(off::SIZE as u64));
        }
        // Compression type must agree with incompatible bit 3 (`validate_compression_type`).
        match h.compression_type {
            raw::COMPRESSION_ZLIB | raw::COMPRESSION_ZSTD => {}
            t => {
                return Err(Error::unsupported(format!("unknown compression type {t}"))
                    .at(off::COMPRESSION_TYPE as u64))
            }
        }
        let bit3 = h.incompatible & raw::INCOMPAT_COMPRESSION != 0;
        if bit3 != (h.compression_type != raw::COMPRESSION_ZLIB) {
            return Err(bad(
                off::COMPRESSION_TYPE as u64,
                format!(
                    "compression type {} disagrees with incompatible bit 3 ({}); the \
                     compressed clusters cannot be decoded reliably",
                    h.compression_type,
                    if bit3 { "set" } else { "clear" }
                ),
            ));
        }
        // Backing file name: inside cluster 0, at most 1023 bytes.
        if h.backing_file_offset != 0 {
            if h.backing_file_offset > cluster_size
                || u64::from(h.backing_file_size) > MAX_BACKING_NAME.into()
                || h.backing_file_offset
                    .checked_add(h.backing_file_size.into())
                    .is_none_or(|e| e > cluster_size)
            {
                return Err(bad(
                    off::BACKING_OFFSET as u64,
                    format!(
                        "backing file name ({} bytes at {:#x}) is longer than 1023 bytes or \
                         leaves cluster 0",
                        h.backing_file_size, h.backing_file_offset
                    ),
                ));
            }
            if h.backing_file_size > 0 {
                let name = b
                    .slice(h.backing_file_offset as usize, h.backing_file_size as usize)
                    .unwrap_or(&[]);
                if name.len() != h.backing_file_size as usize {
                    return Err(Error::truncated(
                        h.backing_file_offset,
                        "backing file name runs past the end of the file",
                    ));
                }
                h.backing_file = Some(name.to_vec());
            }
        }
        let _ = file_len;
        Ok(h)
    }

    /// Reads the header extensions from the bytes of cluster 0 (`b`, shorter when the file
    /// is shorter; missing bytes read as zeros, as in QEMU).
    pub fn parse_extensions(&mut self, b: &[u8]) -> Result<()> {
        let bytes = Bytes::new(b, 0);
        let ext_end = if self.backing_file_offset != 0 {
            self.backing_file_offset
        } else {
            self.cluster_size()
        };
        let mut pos = u64::from(self.header_length);
        while pos < ext_end {
            if pos.checked_add(8).is_none_or(|e| e > ext_end) {
                return Err(bad(
                    pos,
                    "header extension header runs past the extension area",
                ));
            }
            let p = pos as usize;
            let kind = bytes.u32_be(p).unwrap_or(0);
            let len = bytes.u32_be(p + 4).unwrap_or(0);
            if kind == raw::EXT_END {
                break;
            }
            let data_off = pos + 8;
            if data_off
                .checked_add(u64::from(len))
                .is_none_or(|e| e > ext_end)
            {
                return Err(bad(
                    pos,
                    format!("header extension {kind:#010x} of {len} bytes is too large"),
                ));
            }
            if self.extensions.len() >= MAX_EXTENSIONS {
                return Err(Error::limit(
                    "header extensions",
                    self.extensions.len() as u64 + 1,
                    MAX_EXTENSIONS as u64,
                )
                .at(pos));
            }
            let data_start = data_off as usize;
            let data = zero_padded(b, data_start, len as usize);
            self.extensions.push(Extension {
                kind,
                offset: data_off,
                len,
            });
            let d = Bytes::new(&data, data_off);
            match kind {
                raw::EXT_BACKING_FORMAT => {
                    if len >= MAX_BACKING_FORMAT {
                        return Err(bad(
                            pos,
                            format!("backing format name of {len} bytes (at most 15)"),
                        ));
                    }
                    self.backing_format = Some(lossy(&data));
                }
                raw::EXT_FEATURE_TABLE => {
                    for e in data.chunks_exact(raw::FEATURE_ENTRY_LEN) {
                        let name = e.get(2..).unwrap_or(&[]);
                        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                        self.feature_names.push(FeatureName {
                            kind: e.first().copied().unwrap_or(0),
                            bit: e.get(1).copied().unwrap_or(0),
                            name: lossy(name.get(..end).unwrap_or(&[])),
                        });
                    }
                }
                raw::EXT_BITMAPS => {
                    if len < 24 {
                        return Err(bad(pos, format!("bitmaps extension of {len} bytes")));
                    }
                    let ext = BitmapsExt {
                        nb_bitmaps: d.u32_be(0)?,
                        reserved: d.u32_be(4)?,
                        directory_size: d.u64_be(8)?,
                        directory_offset: d.u64_be(16)?,
                    };
                    if self.autoclear & raw::AUTOCLEAR_BITMAPS == 0 {
                        self.notes.push((
                            crate::rule::BITMAPS,
                            "bitmaps extension present but the autoclear bit is clear: a \
                             program without bitmap support modified the image, the bitmaps \
                             are inconsistent"
                                .into(),
                            pos,
                        ));
                    } else {
                        if ext.reserved != 0 {
                            return Err(bad(pos, "bitmaps extension: reserved field not zero"));
                        }
                        if ext.nb_bitmaps == 0 {
                            return Err(bad(pos, "bitmaps extension lists no bitmaps"));
                        }
                        if ext.nb_bitmaps > MAX_BITMAPS {
                            return Err(Error::limit(
                                "bitmaps",
                                ext.nb_bitmaps.into(),
                                MAX_BITMAPS.into(),
                            )
                            .at(pos));
                        }
                        if ext.directory_size > MAX_BITMAP_DIRECTORY_BYTES {
                            return Err(Error::limit(
                                "bitmap directory size",
                                ext.directory_size,
                                MAX_BITMAP_DIRECTORY_BYTES,
                            )
                            .at(pos));
                        }
                        if !ext.directory_offset.is_multiple_of(self.cluster_size()) {
                            return Err(bad(pos, "bitmap directory offset is not aligned"));
                        }
                    }
                    self.bitmaps = Some(ext);
                }
                raw::EXT_CRYPTO => {
                    if len != 16 {
                        return Err(bad(
                            pos,
                            format!("encryption header pointer of {len} bytes (want 16)"),
                        ));
                    }
                    if self.crypt_method != raw::CRYPT_LUKS {
                        return Err(bad(
                            pos,
                            "encryption header extension without LUKS encryption",
                        ));
                    }
                    self.crypto = Some(CryptoExt {
                        offset: d.u64_be(0)?,
                        length: d.u64_be(8)?,
                    });
                }
                raw::EXT_DATA_FILE => {
                    if u64::from(len) > MAX_DATA_FILE_NAME {
                        return Err(Error::limit(
                            "external data file name",
                            len.into(),
                            MAX_DATA_FILE_NAME,
                        )
                        .at(pos));
                    }
                    self.data_file = Some(data.clone());
                }
                _ => {}
            }
            let padded = u64::from(len).div_ceil(8) * 8;
            pos = data_off.saturating_add(padded);
        }
        Ok(())
    }

    /// Refuses unknown incompatible features, naming them from the feature name table
    /// (call after [`Header::parse_extensions`]).
    pub fn check_unknown_features(&self) -> Result<()> {
        let unknown = self.incompatible & !raw::INCOMPAT_KNOWN;
        if unknown != 0 {
            let names: Vec<String> = (0..64u8)
                .filter(|bit| unknown & (1u64 << bit) != 0)
                .map(|bit| match self.feature_name(0, bit) {
                    Some(n) => format!("bit {bit} ({n})"),
                    None => format!("bit {bit}"),
                })
                .collect();
            return Err(Error::unsupported(format!(
                "unknown incompatible qcow2 feature(s): {}",
                names.join(", ")
            ))
            .for_rule(crate::rule::UNKNOWN_FEATURES)
            .at(off::INCOMPAT as u64));
        }
        Ok(())
    }

    /// Every header field, for `meta()`.
    pub fn to_json(&self) -> Value {
        json!({
            "version": self.version,
            "backing_file_offset": self.backing_file_offset,
            "backing_file_size": self.backing_file_size,
            "cluster_bits": self.cluster_bits,
            "size": self.size,
            "crypt_method": self.crypt_method,
            "l1_size": self.l1_size,
            "l1_table_offset": self.l1_table_offset,
            "refcount_table_offset": self.refcount_table_offset,
            "refcount_table_clusters": self.refcount_table_clusters,
            "nb_snapshots": self.nb_snapshots,
            "snapshots_offset": self.snapshots_offset,
            "incompatible_features": self.incompatible,
            "compatible_features": self.compatible,
            "autoclear_features": self.autoclear,
            "refcount_order": self.refcount_order,
            "header_length": self.header_length,
            "compression_type": self.compression_type,
            "backing_file": self.backing_name(),
            "extensions": self.extensions.iter().map(|e| json!({
                "type": format!("{:#010x}", e.kind),
                "name": ext_name(e.kind),
                "offset": e.offset,
                "length": e.len,
            })).collect::<Vec<_>>(),
            "backing_format": self.backing_format,
            "feature_names": self.feature_names.iter().map(|f| json!({
                "type": match f.kind { 0 => "incompatible", 1 => "compatible", 2 => "autoclear", _ => "unknown" },
                "bit": f.bit,
                "name": f.name,
            })).collect::<Vec<_>>(),
            "bitmaps_extension": self.bitmaps.map(|b| json!({
                "nb_bitmaps": b.nb_bitmaps,
                "reserved": b.reserved,
                "bitmap_directory_size": b.directory_size,
                "bitmap_directory_offset": b.directory_offset,
            })),
            "crypto_header": self.crypto.map(|c| json!({"offset": c.offset, "length": c.length})),
            "data_file": self.data_file_name(),
        })
    }
}

/// A human name for an extension type.
pub fn ext_name(kind: u32) -> &'static str {
    match kind {
        raw::EXT_BACKING_FORMAT => "backing_format",
        raw::EXT_FEATURE_TABLE => "feature_name_table",
        raw::EXT_BITMAPS => "bitmaps",
        raw::EXT_CRYPTO => "crypto_header",
        raw::EXT_DATA_FILE => "data_file",
        _ => "unknown",
    }
}

/// `len` bytes of `b` from `start`, zero-padded where `b` ends early.
fn zero_padded(b: &[u8], start: usize, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    if let Some(src) = b.get(start..) {
        let n = src.len().min(len);
        if let (Some(d), Some(s)) = (v.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
    }
    v
}

impl QcowV1 {
    /// Parses a qcow v1 header.
    pub fn parse(b: &[u8]) -> Result<QcowV1> {
        let b = Bytes::new(b, 0);
        Ok(QcowV1 {
            backing_file_offset: b.u64_be(8)?,
            size: b.u64_be(24)?,
            cluster_bits: b.u8(32)?,
            l2_bits: b.u8(33)?,
            crypt_method: b.u32_be(36)?,
        })
    }
}

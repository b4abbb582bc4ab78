//! The rule ids of the findings only qcow2 and qcow v1 images report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// An incompatible feature bit: unknown, or known but refused by some readers.
pub const UNKNOWN_FEATURES: &str = "unknown_features";
/// The corrupt bit is set: QEMU found the metadata inconsistent.
pub const CORRUPT: &str = "corrupt";
/// The dirty bit is set: refcounts may be stale.
pub const DIRTY: &str = "dirty";
/// Encrypted data (legacy AES-CBC or LUKS).
pub const ENCRYPTION: &str = "encryption";
/// The raw-external-data bit is set without an external data file.
pub const DATA_FILE_RAW: &str = "data_file_raw";
/// A metadata table lying past the end of the file.
pub const TABLE_OUTSIDE_FILE: &str = "table_outside_file";
/// Two metadata structures overlap.
pub const METADATA_OVERLAP: &str = "metadata_overlap";
/// The image holds internal snapshots.
pub const SNAPSHOTS: &str = "snapshots";
/// A snapshot's L1 table above the size limit.
pub const TABLE_SIZE: &str = "table_size";
/// A bitmaps extension that is inconsistent or unreadable.
pub const BITMAPS: &str = "bitmaps";

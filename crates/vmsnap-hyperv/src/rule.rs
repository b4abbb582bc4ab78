//! The rule ids of the findings only Hyper-V saved states (`.vmrs`) report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// The container holds no keys.
pub const KEYS: &str = "keys";
/// The `partition_state` value is shorter than its descriptor says.
pub const PARTITION_STATE: &str = "partition_state";
/// A file header copy whose checksum does not verify.
pub const HEADER_CHECKSUM: &str = "header_checksum";
/// Both file header copies have the same sequence number.
pub const HEADER_SEQUENCE: &str = "header_sequence";
/// Only one file header copy is valid.
pub const HEADER: &str = "header";
/// The data alignment is not a power of two up to 0x10000.
pub const ALIGNMENT: &str = "alignment";
/// A format version other than 4.0, read with the 4.0 structures.
pub const FORMAT_VERSION: &str = "format_version";
/// A key table lying outside the file; skipped.
pub const KEY_TABLE: &str = "key_table";
/// A key table header whose checksum does not verify.
pub const KEY_TABLE_CHECKSUM: &str = "key_table_checksum";
/// File-object strings past the decoding budget, not decoded at open.
pub const FILE_OBJECT_STRINGS: &str = "file_object_strings";
/// A key entry that does not fit in its table; the rest of the table is skipped.
pub const KEY_ENTRY: &str = "key_entry";
/// A key whose value does not decode.
pub const KEY_VALUE: &str = "key_value";
/// A key of unknown type.
pub const KEY_TYPE: &str = "key_type";
/// A key whose checksum does not verify; its value is shown, marked.
pub const KEY_CHECKSUM: &str = "key_checksum";
/// Keys whose parent links form a cycle.
pub const KEY_PARENT_CYCLE: &str = "key_parent_cycle";
/// A key nested deeper than the key-depth limit.
pub const KEY_DEPTH: &str = "key_depth";
/// A key one of whose ancestors is not in the tree.
pub const KEY_PARENT: &str = "key_parent";
/// A value that is not inside a file object of the object table.
pub const FILE_OBJECT: &str = "file_object";
/// Guest RAM keys are present but not readable.
pub const GUEST_RAM: &str = "guest_ram";
/// A replay log that does not fit in the file; not read.
pub const REPLAY_LOG: &str = "replay_log";
/// A replay log header whose checksum does not verify; its entries are not applied.
pub const REPLAY_LOG_CHECKSUM: &str = "replay_log_checksum";
/// An object table chained twice.
pub const OBJECT_TABLE: &str = "object_table";
/// An object table entry whose checksum does not verify.
pub const OBJECT_CHECKSUM: &str = "object_checksum";
/// The RAM key names do not match the `VmVersion` layout.
pub const RAM_KEYS: &str = "ram_keys";
/// Guest pages with no `RamBlock` data, read as zeros.
pub const RAM_BLOCK_MISSING: &str = "ram_block_missing";

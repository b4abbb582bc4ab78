//! On-disk layout of the Hyper-V storage format (`.vmcx`, `.vmrs`, `.vsv`): signatures,
//! offsets and sizes, all little-endian and packed (reference §2).

/// File header signature (both copies).
pub const FILE_SIGNATURE: u32 = 0x0128_2014;
/// Offsets of the two file-header copies.
pub const HEADER_OFFSETS: [u64; 2] = [0, 0x1000];
/// Bytes of a file header covered by its CRC-32.
pub const HEADER_LEN: usize = 0x2E;
/// Offset of the header checksum.
pub const HEADER_CRC_AT: usize = 4;

/// The current format version, 4.0 ("stable array ordering").
pub const VERSION_4_0: u16 = 0x400;
/// 3.1: fixed object-table entry checksum.
pub const VERSION_3_1: u16 = 0x301;
/// 3.0: updated key table indexes.
pub const VERSION_3_0: u16 = 0x300;
/// 2.0: optimized layout.
pub const VERSION_2_0: u16 = 0x200;

/// Replay log header signature.
pub const LOG_SIGNATURE: u32 = 0x0111_0003;
/// Bytes of the replay log header (CRC-32 over all of them, field @4 zeroed).
pub const LOG_HEADER_LEN: usize = 0x22;
/// Bytes of one replay log entry.
pub const LOG_ENTRY_LEN: usize = 0x1C;
/// Offset of the entry checksum inside a log entry.
pub const LOG_ENTRY_CRC_AT: usize = 0x14;

/// Offset of the first object table (fixed by the format).
pub const OBJECT_TABLE_OFFSET: u64 = 0x2000;
/// Object table signature.
pub const OBJECT_TABLE_SIGNATURE: u32 = 0x0111_0001;
/// Bytes of the object table header.
pub const OBJECT_TABLE_HEADER_LEN: usize = 8;
/// Bytes of one object table entry.
pub const OBJECT_ENTRY_LEN: usize = 0x12;
/// Offset of the checksum inside an object table entry.
pub const OBJECT_ENTRY_CRC_AT: usize = 1;
/// Size of the object table region in the observed files and the openvmm writer.
pub const OBJECT_TABLE_SIZE: u64 = 0x1000;

/// Object type: empty slot.
pub const OBJ_EMPTY: u8 = 0;
/// Object type: another object table (chaining).
pub const OBJ_OBJECT_TABLE: u8 = 1;
/// Object type: key table.
pub const OBJ_KEY_TABLE: u8 = 2;
/// Object type: file object (large value).
pub const OBJ_FILE: u8 = 3;
/// Object type: free space.
pub const OBJ_FREE: u8 = 4;

/// Key table signature.
pub const KEY_TABLE_SIGNATURE: u16 = 0x0002;
/// Bytes of the key table header (the only bytes its CRC covers).
pub const KEY_TABLE_HEADER_LEN: usize = 0x0A;
/// Offset of the checksum in the key table header.
pub const KEY_TABLE_CRC_AT: usize = 6;

/// Bytes of a key entry header.
pub const KEY_ENTRY_HEADER_LEN: usize = 0x15;
/// Offset of the checksum in a key entry header.
pub const KEY_ENTRY_CRC_AT: usize = 0x0C;
/// Key entry flag: the value is stored in a file object.
pub const KEY_FLAG_FILE_OBJECT: u8 = 0x01;
/// Bytes of a file-object pointer value `{u32 size; u64 offset}`.
pub const FILE_POINTER_LEN: usize = 12;

/// Key types (`KeyDataType`).
pub mod key_type {
    /// Free space.
    pub const FREE: u8 = 1;
    /// Listed by dissect only; never seen.
    pub const UNKNOWN: u8 = 2;
    /// Signed 64-bit integer.
    pub const INT: u8 = 3;
    /// Unsigned 64-bit integer.
    pub const UINT: u8 = 4;
    /// IEEE double.
    pub const DOUBLE: u8 = 5;
    /// UTF-16LE string with a u32 byte length.
    pub const STRING: u8 = 6;
    /// Byte array with a u32 byte length.
    pub const ARRAY: u8 = 7;
    /// Boolean stored as u32.
    pub const BOOL: u8 = 8;
    /// Node: `{u64 change_tracking_sequence; u32 next_insertion_sequence}`.
    pub const NODE: u8 = 9;
}

/// Bytes of a Node value.
pub const NODE_VALUE_LEN: usize = 12;

/// Computes the CRC-32 (zlib) of `data` with the 4 bytes at `field` taken as zero.
pub fn crc_with_zeroed(data: &[u8], field: usize) -> u32 {
    // Small structures (most key entries): one pass over a zeroed copy on the stack.
    let mut buf = [0u8; 256];
    if let Some(copy) = buf.get_mut(..data.len()) {
        copy.copy_from_slice(data);
        if let Some(f) = copy.get_mut(field..) {
            let z = f.len().min(4);
            if let Some(f) = f.get_mut(..z) {
                f.fill(0);
            }
        }
        return crc32fast::hash(copy);
    }
    let mut h = crc32fast::Hasher::new();
    let (a, rest) = data.split_at(field.min(data.len()));
    h.update(a);
    let z = rest.len().min(4);
    h.update([0u8; 4].get(..z).unwrap_or(&[]));
    h.update(rest.get(z..).unwrap_or(&[]));
    h.finalize()
}

/// Whether sequence `a` is newer than `b` in 16-bit serial arithmetic (wrap-around).
pub fn seq_newer(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 0x8000
}

//! Key values of every type, and how they appear in JSON.

use serde_json::{json, Value as Json};

/// Where a String or Array value's bytes are, when they live in a file object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Absolute file offset of the data.
    pub offset: u64,
    /// Size in bytes.
    pub size: u32,
}

/// A key's value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// Signed integer (type 3).
    Int(i64),
    /// Unsigned integer (type 4).
    UInt(u64),
    /// Double (type 5).
    Double(f64),
    /// UTF-16LE string (type 6), decoded; `stored` when it came from a file object.
    String {
        /// The text (trailing NULs trimmed).
        text: String,
        /// Whether the bytes were not valid UTF-16 (decoded lossily).
        lossy: bool,
    },
    /// UTF-16LE string (type 6) in a file object, not decoded at open: it is larger
    /// than [`MAX_STRING_BYTES`](crate::limits::MAX_STRING_BYTES), or the container's
    /// budget for decoded file-object strings
    /// ([`MAX_STRING_BYTES_TOTAL`](crate::limits::MAX_STRING_BYTES_TOTAL), at most the
    /// file's size) was spent. [`Container::read_string`](crate::Container::read_string)
    /// decodes it on demand.
    DeferredString(Stored),
    /// Byte array (type 7): inline bytes, or a file object read on demand.
    Array(ArrayData),
    /// Boolean (type 8).
    Bool(bool),
    /// Node (type 9).
    Node {
        /// Change-tracking sequence.
        change_sequence: u64,
        /// Next insertion sequence among its children.
        next_insertion: u32,
    },
    /// A type this reader does not know, with its value bytes.
    Unknown {
        /// The type byte.
        kind: u8,
        /// The bytes after the name.
        raw: Vec<u8>,
    },
    /// The value could not be read (truncated, out of range); why.
    Unreadable(String),
}

/// An Array value's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArrayData {
    /// Stored inline in the key entry.
    Inline(Vec<u8>),
    /// Stored in a file object (not loaded at open).
    File(Stored),
}

impl ArrayData {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            ArrayData::Inline(v) => v.len() as u64,
            ArrayData::File(s) => u64::from(s.size),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Value {
    /// The type name used in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::UInt(_) => "uint",
            Value::Double(_) => "double",
            Value::String { .. } | Value::DeferredString(_) => "string",
            Value::Array(_) => "array",
            Value::Bool(_) => "bool",
            Value::Node { .. } => "node",
            Value::Unknown { .. } => "unknown",
            Value::Unreadable(_) => "unreadable",
        }
    }

    /// Whether it is a node.
    pub fn is_node(&self) -> bool {
        matches!(self, Value::Node { .. })
    }

    /// The integer value of Int/UInt/Bool keys.
    pub fn as_i128(&self) -> Option<i128> {
        match self {
            Value::Int(v) => Some(i128::from(*v)),
            Value::UInt(v) => Some(i128::from(*v)),
            Value::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }

    /// The text of a String key (`None` for a [`Value::DeferredString`]).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value as JSON (`array_bytes` supplies the bytes of file-object arrays when
    /// they are small enough to show; a [`Value::DeferredString`] is `null`).
    pub fn to_json(&self, array_bytes: impl Fn(Stored) -> Option<Vec<u8>>) -> Json {
        match self {
            Value::Int(v) => json!(v),
            Value::UInt(v) => json!(v),
            Value::Double(v) => {
                if v.is_finite() {
                    json!(v)
                } else {
                    json!(v.to_string())
                }
            }
            Value::String { text, .. } => json!(text),
            Value::DeferredString(_) => Json::Null,
            Value::Array(ArrayData::Inline(v)) => json!(hex(v)),
            Value::Array(ArrayData::File(s)) => match array_bytes(*s) {
                Some(v) => json!(hex(&v)),
                None => Json::Null,
            },
            Value::Bool(b) => json!(b),
            Value::Node {
                change_sequence,
                next_insertion,
            } => json!({"change_sequence": change_sequence, "next_insertion": next_insertion}),
            Value::Unknown { raw, .. } => json!(hex(raw)),
            Value::Unreadable(why) => json!(why),
        }
    }
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        for n in [x >> 4, x & 15] {
            s.push(char::from(D.get(usize::from(n)).copied().unwrap_or(b'0')));
        }
    }
    s
}

/// Decodes UTF-16LE bytes, trimming trailing NULs; reports whether decoding was lossy
/// (odd length or unpaired surrogates).
pub fn utf16(bytes: &[u8]) -> (String, bool) {
    let odd = !bytes.len().is_multiple_of(2);
    let mut units = bytes.len() / 2;
    // Trailing NUL units are trimmed.
    while units > 0 && bytes.get(2 * units - 2..2 * units) == Some(&[0u8, 0u8][..]) {
        units -= 1;
    }
    let mut lossy = odd;
    let mut s = String::with_capacity(units);
    s.extend(
        char::decode_utf16(bytes.chunks_exact(2).take(units).map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        }))
        .map(|r| {
            r.unwrap_or_else(|_| {
                lossy = true;
                char::REPLACEMENT_CHARACTER
            })
        }),
    );
    (s, lossy)
}

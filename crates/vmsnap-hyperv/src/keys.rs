//! Key tables (active copy by sequence) and key entries of every type, each checksum
//! verified.

use std::collections::{BTreeMap, HashSet};

use vmsnap_core::{Bytes, Error, Finding, Findings, Layer, LayerExt, Result};

use crate::limits::{
    MAX_KEYS, MAX_KEY_BYTES_TOTAL, MAX_KEY_TABLE_BYTES, MAX_STRING_BYTES, MAX_STRING_BYTES_TOTAL,
};
use crate::objects::Object;
use crate::raw::{
    crc_with_zeroed, key_type, seq_newer, FILE_POINTER_LEN, KEY_ENTRY_CRC_AT, KEY_ENTRY_HEADER_LEN,
    KEY_FLAG_FILE_OBJECT, KEY_TABLE_CRC_AT, KEY_TABLE_HEADER_LEN, KEY_TABLE_SIGNATURE,
    NODE_VALUE_LEN, OBJ_FILE, OBJ_KEY_TABLE,
};
use crate::value::{utf16, ArrayData, Stored, Value};

/// One key entry.
#[derive(Debug, Clone)]
pub struct Key {
    /// Index of the key table holding it (1-based).
    pub table: u16,
    /// Byte offset of the entry inside its table.
    pub offset: u32,
    /// Absolute file offset of the entry.
    pub file_offset: u64,
    /// Type byte.
    pub kind: u8,
    /// Flags byte.
    pub flags: u8,
    /// Parent table index (0 = root).
    pub parent_table: u16,
    /// Parent entry offset inside its table.
    pub parent_offset: u32,
    /// Insertion sequence among siblings.
    pub insertion: u32,
    /// Key name.
    pub name: String,
    /// Value.
    pub value: Value,
    /// Where the value's bytes live when in a file object.
    pub stored: Option<Stored>,
    /// Whether the entry checksum verified.
    pub checksum_ok: bool,
}

/// A key table copy as read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyTableInfo {
    /// Table index.
    pub index: u16,
    /// Sequence.
    pub sequence: u16,
    /// File offset.
    pub offset: u64,
    /// Size.
    pub size: u32,
    /// Whether its header checksum verified.
    pub checksum_ok: bool,
    /// Whether it is the active copy of its index.
    pub active: bool,
    /// Live entries.
    pub keys: usize,
}

/// File-object String values: how many were decoded at open, against what budget, and
/// how many were left [`Value::DeferredString`].
///
/// Keys may all point at the same file object, so decoding each one's string would make
/// memory grow with the number of keys, not the file's size. The stored bytes decoded
/// are counted against a budget of the file's size (at most [`MAX_STRING_BYTES_TOTAL`]);
/// a sound file never reaches it, since its file objects do not overlap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileStrings {
    /// Stored (UTF-16LE) bytes that may be decoded at open.
    pub budget: u64,
    /// Strings decoded.
    pub decoded: u64,
    /// Their stored bytes, counted against the budget.
    pub decoded_bytes: u64,
    /// Strings left deferred (over the budget, or larger than [`MAX_STRING_BYTES`]).
    pub deferred: u64,
    /// Their stored bytes.
    pub deferred_bytes: u64,
}

/// What reading file-object values needs: the file objects of the object table (sorted),
/// the string budget, and where the first deferred string's key is.
#[derive(Debug)]
struct FileValues {
    objects: Vec<(u64, u64)>,
    stats: FileStrings,
    first_deferred: Option<u64>,
}

/// All key tables and the keys of the active copies, tables by index, entries in
/// physical order.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyTables {
    /// Every copy read.
    pub(crate) tables: Vec<KeyTableInfo>,
    /// Keys of the active copies, sorted by (table, offset).
    pub(crate) keys: Vec<Key>,
    /// File-object strings decoded and deferred.
    pub(crate) strings: FileStrings,
}

/// Reads every key table named in `objects`, picks the active copy of each index and
/// parses its entries.
///
/// The key table bytes read in total are at most the file's size (and
/// [`MAX_KEY_BYTES_TOTAL`]): key tables do not overlap in a sound file, and object
/// entries all naming the same bytes must not multiply them. An object listed twice is
/// read once.
pub(crate) fn read_keys(
    image: &dyn Layer,
    objects: &[Object],
    findings: &mut Findings,
) -> Result<KeyTables> {
    let mut copies: BTreeMap<u16, Vec<(KeyTableInfo, Vec<u8>)>> = BTreeMap::new();
    let mut total = 0u64;
    let key_budget = image.len().min(MAX_KEY_BYTES_TOTAL);
    let mut seen: HashSet<u64> = HashSet::new();
    for obj in objects.iter().filter(|o| o.kind == OBJ_KEY_TABLE) {
        let size = u64::from(obj.size);
        if obj.end().is_none_or(|e| e > image.len()) || size < KEY_TABLE_HEADER_LEN as u64 {
            findings.push(
                Finding::warning(
                    crate::rule::KEY_TABLE,
                    format!(
                        "key table {:#x}+{:#x} lies outside the file; skipped",
                        obj.offset, size
                    ),
                )
                .at(obj.entry_at),
            );
            continue;
        }
        if !seen.insert(obj.offset) {
            findings.push(
                Finding::warning(
                    crate::rule::KEY_TABLE,
                    format!(
                        "key table at {:#x} is listed more than once; read once",
                        obj.offset
                    ),
                )
                .at(obj.entry_at),
            );
            continue;
        }
        total = total.saturating_add(size);
        if total > key_budget {
            return Err(Error::limit(
                "key table bytes (at most the file's size)",
                total,
                key_budget,
            )
            .at(obj.entry_at));
        }
        let raw = image.read_vec(obj.offset, size, MAX_KEY_TABLE_BYTES, "key table")?;
        let b = Bytes::new(&raw, obj.offset);
        if b.u16_le(0)? != KEY_TABLE_SIGNATURE {
            findings.push(
                Finding::warning(
                    crate::rule::KEY_TABLE,
                    "key table signature 0x0002 not found; skipped",
                )
                .at(obj.offset),
            );
            continue;
        }
        let index = b.u16_le(2)?;
        let sequence = b.u16_le(4)?;
        let stored = b.u32_le(6)?;
        let checksum_ok =
            crc_with_zeroed(b.slice(0, KEY_TABLE_HEADER_LEN)?, KEY_TABLE_CRC_AT) == stored;
        if !checksum_ok {
            findings.push(
                Finding::warning(
                    crate::rule::KEY_TABLE_CHECKSUM,
                    format!("key table {index} (sequence {sequence}) header checksum {stored:#010x} does not verify"),
                )
                .at(obj.offset + 6),
            );
        }
        if index == 0 {
            findings.push(
                Finding::warning(
                    crate::rule::KEY_TABLE,
                    "key table with index 0 (reserved for the root); skipped",
                )
                .at(obj.offset + 2),
            );
            continue;
        }
        copies.entry(index).or_default().push((
            KeyTableInfo {
                index,
                sequence,
                offset: obj.offset,
                size: obj.size,
                checksum_ok,
                active: false,
                keys: 0,
            },
            raw,
        ));
    }
    let mut out = KeyTables::default();
    let mut files = FileValues {
        objects: {
            let mut v: Vec<(u64, u64)> = objects
                .iter()
                .filter(|o| o.kind == OBJ_FILE)
                .map(|o| (o.offset, u64::from(o.size)))
                .collect();
            v.sort_unstable();
            v
        },
        stats: FileStrings {
            budget: image.len().min(MAX_STRING_BYTES_TOTAL),
            ..FileStrings::default()
        },
        first_deferred: None,
    };
    for (index, list) in copies {
        // Newest verified copy; a copy whose header fails only when none verifies.
        let mut best: Option<usize> = None;
        for (i, (info, _)) in list.iter().enumerate() {
            let better = match best.and_then(|b| list.get(b)) {
                None => true,
                Some((cur, _)) => match (info.checksum_ok, cur.checksum_ok) {
                    (true, false) => true,
                    (false, true) => false,
                    _ => seq_newer(info.sequence, cur.sequence),
                },
            };
            if better {
                best = Some(i);
            }
        }
        if list.len() > 1 {
            findings.push(Finding::info(
                crate::rule::KEY_TABLE,
                format!(
                    "key table {index} has {} copies; the newest by sequence is used",
                    list.len()
                ),
            ));
        }
        for (i, (mut info, raw)) in list.into_iter().enumerate() {
            if Some(i) == best {
                info.active = true;
                let before = out.keys.len();
                parse_entries(image, &info, &raw, &mut files, &mut out.keys, findings)?;
                info.keys = out.keys.len() - before;
            }
            out.tables.push(info);
        }
    }
    let s = files.stats;
    if s.deferred > 0 {
        // Unsafe: a host path in a string not decoded is not listed as a reference.
        let mut f = Finding::unsafe_(
            crate::rule::FILE_OBJECT_STRINGS,
            format!(
                "{} file-object strings ({} bytes) were not decoded at open: past the \
                 budget of {} bytes decoded in all (the file's size, at most \
                 {MAX_STRING_BYTES_TOTAL}; {} decoded) or larger than {MAX_STRING_BYTES} \
                 bytes each. They are kept by reference, and host paths in them are not \
                 listed as external references",
                s.deferred, s.deferred_bytes, s.budget, s.decoded_bytes
            ),
        );
        if let Some(at) = files.first_deferred {
            f = f.at(at);
        }
        findings.push(f);
    }
    out.strings = s;
    Ok(out)
}

fn parse_entries(
    image: &dyn Layer,
    info: &KeyTableInfo,
    raw: &[u8],
    files: &mut FileValues,
    keys: &mut Vec<Key>,
    findings: &mut Findings,
) -> Result<()> {
    let b = Bytes::new(raw, info.offset);
    let mut pos = KEY_TABLE_HEADER_LEN;
    while pos + KEY_ENTRY_HEADER_LEN <= raw.len() {
        let at = b.file_offset(pos);
        let kind = b.u8(pos)?;
        let size = b.u32_le(pos + 2)? as usize;
        if size == 0 {
            break;
        }
        let Some(entry) = raw
            .get(pos..pos.saturating_add(size))
            .filter(|_| size >= KEY_ENTRY_HEADER_LEN)
        else {
            findings.push(
                Finding::warning(
                    crate::rule::KEY_ENTRY,
                    format!(
                        "key entry of {size} bytes at table {} offset {pos:#x} does not fit; rest of the table skipped",
                        info.index
                    ),
                )
                .at(at),
            );
            break;
        };
        if kind == key_type::FREE {
            pos += size;
            continue;
        }
        if keys.len() >= MAX_KEYS {
            return Err(Error::limit("keys", keys.len() as u64 + 1, MAX_KEYS as u64));
        }
        keys.push(parse_entry(image, info, pos, at, entry, files, findings));
        pos += size;
    }
    Ok(())
}

fn parse_entry(
    image: &dyn Layer,
    info: &KeyTableInfo,
    pos: usize,
    at: u64,
    entry: &[u8],
    files: &mut FileValues,
    findings: &mut Findings,
) -> Key {
    // Header fields (the caller checked the entry holds the whole header; a field
    // that does not fit reads as 0).
    let rd8 = |o: usize| entry.get(o).copied().unwrap_or(0);
    let rd16 = |o: usize| {
        entry
            .get(o..o + 2)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u16::from_le_bytes)
    };
    let rd32 = |o: usize| {
        entry
            .get(o..o + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let kind = rd8(0);
    let flags = rd8(1);
    let parent_table = rd16(6);
    let parent_offset = rd32(8);
    let stored_crc = rd32(0x0C);
    let insertion = rd32(0x10);
    let name_len = usize::from(rd8(0x14));
    let mut key = Key {
        table: info.index,
        offset: pos as u32,
        file_offset: at,
        kind,
        flags,
        parent_table,
        parent_offset,
        insertion,
        name: String::new(),
        value: Value::Unreadable(String::new()),
        stored: None,
        checksum_ok: false,
    };
    let name_end = KEY_ENTRY_HEADER_LEN + name_len;
    let Some(name_raw) = entry.get(KEY_ENTRY_HEADER_LEN..name_end) else {
        key.value = Value::Unreadable(format!("name of {name_len} bytes runs past the entry"));
        findings
            .push(Finding::warning(crate::rule::KEY_ENTRY, "key name runs past its entry").at(at));
        return key;
    };
    let name_bytes = match name_raw.split_last() {
        Some((0, rest)) => rest,
        Some(_) => {
            findings.push(
                Finding::warning(crate::rule::KEY_ENTRY, "key name is not NUL-terminated").at(at),
            );
            name_raw
        }
        None => name_raw,
    };
    key.name = match std::str::from_utf8(name_bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(name_bytes).into_owned(),
    };
    let area = entry.get(name_end..).unwrap_or(&[]);
    let v = Bytes::new(area, at + name_end as u64);
    let file_ptr = flags & KEY_FLAG_FILE_OBJECT != 0;
    // Meaningful value bytes (what the checksum covers after the name).
    let (value, meaningful) = if file_ptr && matches!(kind, key_type::STRING | key_type::ARRAY) {
        match (v.u32_le(0), v.u64_le(4)) {
            (Ok(size), Ok(offset)) => {
                let s = Stored { offset, size };
                key.stored = Some(s);
                (
                    file_value(image, kind, s, at, files, findings),
                    FILE_POINTER_LEN,
                )
            }
            _ => (
                Value::Unreadable("file-object pointer truncated".into()),
                area.len(),
            ),
        }
    } else {
        match kind {
            key_type::INT => fixed(&v, 8, |v| v.i64_le(0).map(Value::Int)),
            key_type::UINT => fixed(&v, 8, |v| v.u64_le(0).map(Value::UInt)),
            key_type::DOUBLE => fixed(&v, 8, |v| {
                v.u64_le(0).map(|x| Value::Double(f64::from_bits(x)))
            }),
            key_type::BOOL => fixed(&v, 4, |v| v.u32_le(0).map(|x| Value::Bool(x != 0))),
            key_type::NODE => fixed(&v, NODE_VALUE_LEN, |v| {
                Ok(Value::Node {
                    change_sequence: v.u64_le(0)?,
                    next_insertion: v.u32_le(8)?,
                })
            }),
            key_type::STRING | key_type::ARRAY => match v.u32_le(0) {
                Ok(n) => match v.slice(4, n as usize) {
                    Ok(data) => {
                        let val = if kind == key_type::STRING {
                            let (text, lossy) = utf16(data);
                            Value::String { text, lossy }
                        } else {
                            Value::Array(ArrayData::Inline(data.to_vec()))
                        };
                        (val, 4 + n as usize)
                    }
                    Err(_) => (
                        Value::Unreadable(format!("value of {n} bytes runs past the entry")),
                        area.len(),
                    ),
                },
                Err(_) => (
                    Value::Unreadable("value length truncated".into()),
                    area.len(),
                ),
            },
            _ => (
                Value::Unknown {
                    kind,
                    raw: area.to_vec(),
                },
                area.len(),
            ),
        }
    };
    if let Value::Unreadable(why) = &value {
        findings.push(
            Finding::warning(crate::rule::KEY_VALUE, format!("key {:?}: {why}", key.name)).at(at),
        );
    }
    if matches!(value, Value::Unknown { .. }) {
        findings.push(
            Finding::warning(
                crate::rule::KEY_TYPE,
                format!("key {:?} has unknown type {kind}", key.name),
            )
            .at(at),
        );
    }
    let covered = entry
        .get(..name_end.saturating_add(meaningful))
        .unwrap_or(entry);
    key.checksum_ok = crc_with_zeroed(covered, KEY_ENTRY_CRC_AT) == stored_crc;
    if !key.checksum_ok {
        findings.push(
            Finding::warning(
                crate::rule::KEY_CHECKSUM,
                format!(
                    "key {:?} checksum {stored_crc:#010x} does not verify; value shown, marked",
                    key.name
                ),
            )
            .at(at + KEY_ENTRY_CRC_AT as u64),
        );
    }
    key.value = value;
    key
}

fn fixed(v: &Bytes<'_>, n: usize, f: impl FnOnce(&Bytes<'_>) -> Result<Value>) -> (Value, usize) {
    match f(v) {
        Ok(val) => (val, n),
        Err(_) => (
            Value::Unreadable(format!("value needs {n} bytes, entry has {}", v.len())),
            v.len(),
        ),
    }
}

fn file_value(
    image: &dyn Layer,
    kind: u8,
    s: Stored,
    at: u64,
    files: &mut FileValues,
    findings: &mut Findings,
) -> Value {
    let size = u64::from(s.size);
    if s.offset.checked_add(size).is_none_or(|e| e > image.len()) {
        return Value::Unreadable(format!(
            "file object {:#x}+{size:#x} lies past the end of the file ({:#x} bytes)",
            s.offset,
            image.len()
        ));
    }
    // The object table should list an object covering the data (dissect requires it).
    let i = files.objects.partition_point(|&(o, _)| o <= s.offset);
    let covered = i
        .checked_sub(1)
        .and_then(|j| files.objects.get(j))
        .is_some_and(|&(o, n)| s.offset - o + size <= n);
    if !covered {
        findings.push(
            Finding::warning(
                crate::rule::FILE_OBJECT,
                format!(
                    "value at {:#x}+{size:#x} is not inside a file object of the object table",
                    s.offset
                ),
            )
            .at(at),
        );
    }
    if kind == key_type::STRING {
        // Checked before reading: decoded bytes stay within the budget, however many
        // keys name the same (or overlapping) file objects.
        let b = &mut files.stats;
        let within = b
            .decoded_bytes
            .checked_add(size)
            .is_some_and(|n| n <= b.budget);
        if size > MAX_STRING_BYTES || !within {
            b.deferred = b.deferred.saturating_add(1);
            b.deferred_bytes = b.deferred_bytes.saturating_add(size);
            files.first_deferred.get_or_insert(at);
            return Value::DeferredString(s);
        }
        match image.read_vec(s.offset, size, MAX_STRING_BYTES, "file-object string") {
            Ok(data) => {
                b.decoded = b.decoded.saturating_add(1);
                b.decoded_bytes = b.decoded_bytes.saturating_add(size);
                let (text, lossy) = utf16(&data);
                Value::String { text, lossy }
            }
            Err(e) => Value::Unreadable(e.to_string()),
        }
    } else {
        Value::Array(ArrayData::File(s))
    }
}

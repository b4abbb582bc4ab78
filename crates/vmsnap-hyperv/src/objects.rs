//! The object table and its chaining: where the key tables and file objects are.

use std::collections::HashSet;

use serde::Serialize;
use vmsnap_core::{Bytes, Error, Finding, Findings, Layer, LayerExt, Result};

use crate::limits::{MAX_OBJECTS, MAX_OBJECT_TABLES};
use crate::raw::{
    crc_with_zeroed, OBJECT_ENTRY_CRC_AT, OBJECT_ENTRY_LEN, OBJECT_TABLE_HEADER_LEN,
    OBJECT_TABLE_OFFSET, OBJECT_TABLE_SIGNATURE, OBJECT_TABLE_SIZE, OBJ_EMPTY, OBJ_OBJECT_TABLE,
};

/// One object-table entry.
#[derive(Debug, Clone, Serialize)]
pub struct Object {
    /// `ObjectType` (1 object table, 2 key table, 3 file, 4 free …).
    pub kind: u8,
    /// Absolute file offset.
    pub offset: u64,
    /// Size (aligned).
    pub size: u32,
    /// Flags (0x01 = required).
    pub flags: u8,
    /// Whether the entry checksum verified (always true when not checked).
    pub checksum_ok: bool,
    /// File offset of the entry itself.
    pub entry_at: u64,
}

impl Object {
    /// End offset of the object, if it does not overflow.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(u64::from(self.size))
    }
}

/// Every non-empty object of every chained table, in table order.
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectTables {
    /// File offsets of the object tables read.
    pub(crate) tables: Vec<u64>,
    /// Non-empty entries.
    pub(crate) objects: Vec<Object>,
}

/// Reads the object table at 0x2000 and every table it chains to.
pub(crate) fn read_objects(
    image: &dyn Layer,
    verify_crc: bool,
    findings: &mut Findings,
) -> Result<ObjectTables> {
    let mut out = ObjectTables::default();
    let mut queue = vec![(OBJECT_TABLE_OFFSET, OBJECT_TABLE_SIZE)];
    let mut seen = HashSet::new();
    while let Some((at, size)) = queue.pop() {
        if !seen.insert(at) {
            findings.push(
                Finding::warning(
                    crate::rule::OBJECT_TABLE,
                    format!("object table at {at:#x} is chained twice"),
                )
                .at(at),
            );
            continue;
        }
        if out.tables.len() >= MAX_OBJECT_TABLES {
            return Err(Error::limit(
                "object tables",
                out.tables.len() as u64 + 1,
                MAX_OBJECT_TABLES as u64,
            ));
        }
        let fits = at.checked_add(size).is_some_and(|e| e <= image.len());
        if !fits || size < OBJECT_TABLE_HEADER_LEN as u64 {
            let msg = format!("object table {at:#x}+{size:#x} lies outside the file");
            if out.tables.is_empty() {
                return Err(Error::truncated(at, msg));
            }
            findings.push(Finding::warning(crate::rule::OBJECT_TABLE, msg).at(at));
            continue;
        }
        let raw = image.read_vec(at, size, u64::from(u32::MAX), "object table")?;
        let b = Bytes::new(&raw, at);
        if b.u32_le(0)? != OBJECT_TABLE_SIGNATURE {
            let msg = format!("no object table signature {OBJECT_TABLE_SIGNATURE:#010x}");
            if out.tables.is_empty() {
                return Err(Error::malformed(at, msg));
            }
            findings.push(Finding::warning(crate::rule::OBJECT_TABLE, msg).at(at));
            continue;
        }
        out.tables.push(at);
        let n = b.u32_le(4)?;
        let room = (size - OBJECT_TABLE_HEADER_LEN as u64) / OBJECT_ENTRY_LEN as u64;
        let n = if u64::from(n) > room {
            findings.push(
                Finding::warning(
                    crate::rule::OBJECT_TABLE,
                    format!("object table claims {n} entries, room for {room}; reading {room}"),
                )
                .at(at + 4),
            );
            room
        } else {
            u64::from(n)
        };
        for i in 0..n {
            let off = OBJECT_TABLE_HEADER_LEN + (i as usize) * OBJECT_ENTRY_LEN;
            let e = b.sub(off, OBJECT_ENTRY_LEN)?;
            let entry_at = e.file_offset(0);
            let checksum_ok =
                !verify_crc || crc_with_zeroed(e.as_slice(), OBJECT_ENTRY_CRC_AT) == e.u32_le(1)?;
            if !checksum_ok {
                findings.push(
                    Finding::warning(
                        crate::rule::OBJECT_CHECKSUM,
                        format!("object table entry {i} checksum does not verify"),
                    )
                    .at(entry_at),
                );
            }
            let obj = Object {
                kind: e.u8(0)?,
                offset: e.u64_le(5)?,
                size: e.u32_le(0x0D)?,
                flags: e.u8(0x11)?,
                checksum_ok,
                entry_at,
            };
            if obj.kind == OBJ_EMPTY {
                continue;
            }
            if obj.kind == OBJ_OBJECT_TABLE {
                queue.push((obj.offset, u64::from(obj.size)));
            }
            if out.objects.len() >= MAX_OBJECTS {
                return Err(Error::limit(
                    "objects",
                    out.objects.len() as u64 + 1,
                    MAX_OBJECTS as u64,
                ));
            }
            if obj.end().is_none_or(|e| e > image.len()) {
                findings.push(
                    Finding::warning(
                        crate::rule::OBJECT_TABLE,
                        format!(
                            "object of type {} at {:#x}+{:#x} lies outside the file",
                            obj.kind, obj.offset, obj.size
                        ),
                    )
                    .at(entry_at),
                );
            }
            out.objects.push(obj);
        }
    }
    Ok(out)
}

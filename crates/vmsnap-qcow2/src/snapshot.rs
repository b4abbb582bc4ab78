//! The internal snapshot table (`qcow2_read_snapshots`).

use serde_json::{json, Value};
use vmsnap_core::{Bytes, Error, Layer, LayerExt, Result};

use crate::header::Header;
use crate::limits::{MAX_SNAPSHOTS, MAX_SNAPSHOT_EXTRA, MAX_SNAPSHOT_TABLE_BYTES};
use crate::raw::SNAPSHOT_HEADER_LEN;

/// One internal snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// File offset of the table entry.
    pub entry_offset: u64,
    /// Offset of the snapshot's L1 table.
    pub l1_table_offset: u64,
    /// Entries in the snapshot's L1 table.
    pub l1_size: u32,
    /// Unique id string.
    pub id: String,
    /// Name.
    pub name: String,
    /// Creation time, seconds since the epoch.
    pub date_sec: u32,
    /// Creation time, nanoseconds.
    pub date_nsec: u32,
    /// Guest clock at creation, nanoseconds.
    pub vm_clock_nsec: u64,
    /// The 32-bit VM state size field.
    pub vm_state_size_32: u32,
    /// Effective VM state size (the 64-bit one from extra data when present).
    pub vm_state_size: u64,
    /// Size of extra data.
    pub extra_data_size: u32,
    /// Virtual disk size at snapshot time (current size when extra data lacks it).
    pub disk_size: u64,
    /// Whether `disk_size` came from the extra data.
    pub disk_size_recorded: bool,
    /// Instruction count (-1 when not recorded).
    pub icount: i64,
    /// Extra data beyond the fields known here.
    pub unknown_extra: Vec<u8>,
    /// Bytes of the table entry, padding included.
    pub entry_len: u64,
}

impl Snapshot {
    /// For `describe()`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "date": vmsnap_core::time::iso8601_utc(u64::from(self.date_sec)),
            "date_sec": self.date_sec,
            "date_nsec": self.date_nsec,
            "vm_clock_nsec": self.vm_clock_nsec,
            "vm_state_size": self.vm_state_size,
            "disk_size": self.disk_size,
            "icount": self.icount,
            "l1_table_offset": self.l1_table_offset,
            "l1_size": self.l1_size,
        })
    }

    /// For `meta()`: every field.
    pub fn to_meta(&self) -> Value {
        let mut v = self.to_json();
        if let Some(o) = v.as_object_mut() {
            o.insert("entry_offset".into(), json!(self.entry_offset));
            o.insert("vm_state_size_32".into(), json!(self.vm_state_size_32));
            o.insert("extra_data_size".into(), json!(self.extra_data_size));
            o.insert("disk_size_recorded".into(), json!(self.disk_size_recorded));
            o.insert(
                "unknown_extra_data".into(),
                json!(self
                    .unknown_extra
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()),
            );
        }
        v
    }
}

/// Reads the snapshot table described by `h` from `file`.
pub fn read_table(file: &dyn Layer, h: &Header) -> Result<Vec<Snapshot>> {
    let n = u64::from(h.nb_snapshots);
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > MAX_SNAPSHOTS {
        return Err(Error::limit("snapshots", n, MAX_SNAPSHOTS).at(60));
    }
    if !h.snapshots_offset.is_multiple_of(h.cluster_size()) {
        return Err(Error::malformed(
            64,
            format!(
                "snapshot table offset {:#x} is not cluster aligned",
                h.snapshots_offset
            ),
        ));
    }
    if h.snapshots_offset == 0 {
        return Err(Error::malformed(
            64,
            "snapshot table at offset 0 overlaps the header",
        ));
    }
    // Read the whole table at once: at most 64 MiB and never past the end of the file.
    let avail = file.len().saturating_sub(h.snapshots_offset);
    if avail == 0 {
        return Err(Error::truncated(
            h.snapshots_offset,
            "snapshot table starts past the end of the file",
        ));
    }
    let want = avail.min(MAX_SNAPSHOT_TABLE_BYTES);
    let buf = file.read_vec(
        h.snapshots_offset,
        want,
        MAX_SNAPSHOT_TABLE_BYTES,
        "snapshot table",
    )?;
    let b = Bytes::new(&buf, h.snapshots_offset);
    let mut out = Vec::with_capacity(n.min(1024) as usize);
    let mut pos: usize = 0;
    for i in 0..n {
        let entry_offset = b.file_offset(pos);
        let trunc = |e: Error| {
            if (buf.len() as u64) < MAX_SNAPSHOT_TABLE_BYTES {
                e
            } else {
                Error::limit(
                    "snapshot table size",
                    MAX_SNAPSHOT_TABLE_BYTES + 1,
                    MAX_SNAPSHOT_TABLE_BYTES,
                )
                .at(entry_offset)
            }
        };
        let e = b.sub(pos, SNAPSHOT_HEADER_LEN as usize).map_err(trunc)?;
        let id_len = usize::from(e.u16_be(12)?);
        let name_len = usize::from(e.u16_be(14)?);
        let extra_len = e.u32_be(36)?;
        if extra_len > MAX_SNAPSHOT_EXTRA {
            return Err(Error::limit(
                "snapshot extra data size",
                extra_len.into(),
                MAX_SNAPSHOT_EXTRA.into(),
            )
            .at(entry_offset));
        }
        let extra_len_us = extra_len as usize;
        let mut p = pos + SNAPSHOT_HEADER_LEN as usize;
        let extra = b.sub(p, extra_len_us).map_err(trunc)?;
        p += extra_len_us;
        let id = b.slice(p, id_len).map_err(trunc)?;
        p += id_len;
        let name = b.slice(p, name_len).map_err(trunc)?;
        p += name_len;
        p = p.div_ceil(8) * 8;
        if p as u64 > MAX_SNAPSHOT_TABLE_BYTES {
            return Err(
                Error::limit("snapshot table size", p as u64, MAX_SNAPSHOT_TABLE_BYTES)
                    .at(entry_offset),
            );
        }
        let vm32 = e.u32_be(32)?;
        let vm_state_size = if extra_len >= 8 {
            extra.u64_be(0)?
        } else {
            u64::from(vm32)
        };
        let (disk_size, recorded) = if extra_len >= 16 {
            (extra.u64_be(8)?, true)
        } else {
            (h.size, false)
        };
        let icount = if extra_len >= 24 {
            extra.u64_be(16)? as i64
        } else {
            -1
        };
        let unknown_extra = extra.as_slice().get(24..).unwrap_or(&[]).to_vec();
        let _ = i;
        out.push(Snapshot {
            entry_offset,
            l1_table_offset: e.u64_be(0)?,
            l1_size: e.u32_be(8)?,
            id: String::from_utf8_lossy(id).into_owned(),
            name: String::from_utf8_lossy(name).into_owned(),
            date_sec: e.u32_be(16)?,
            date_nsec: e.u32_be(20)?,
            vm_clock_nsec: e.u64_be(24)?,
            vm_state_size_32: vm32,
            vm_state_size,
            extra_data_size: extra_len,
            disk_size,
            disk_size_recorded: recorded,
            icount,
            unknown_extra,
            entry_len: (p - pos) as u64,
        });
        pos = p;
    }
    Ok(out)
}

/// The table's byte length (for overlap checks).
pub fn table_len(snaps: &[Snapshot], h: &Header) -> u64 {
    snaps
        .last()
        .map(|s| (s.entry_offset + s.entry_len).saturating_sub(h.snapshots_offset))
        .unwrap_or(0)
}

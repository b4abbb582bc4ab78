//! The replay log: header and entries verified, pending entries (`num_entries > 0`)
//! turned into in-memory patches applied in index order. Stale entries past
//! `num_entries` are counted, never applied.

use serde::Serialize;
use vmsnap_core::{Bytes, Finding, Findings, Layer, LayerExt, Result};

use crate::header::FileHeader;
use crate::image::Patch;
use crate::limits::{MAX_LOG_BYTES, MAX_LOG_ENTRIES};
use crate::raw::{crc_with_zeroed, LOG_ENTRY_CRC_AT, LOG_ENTRY_LEN, LOG_HEADER_LEN, LOG_SIGNATURE};

/// One replay log entry.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// Index in the log.
    pub index: u32,
    /// Destination file offset.
    pub dest: u64,
    /// Bytes to copy.
    pub size: u32,
    /// Offset of the data relative to the log start.
    pub offset_in_log: u64,
    /// Whether the entry checksum verified.
    pub entry_checksum_ok: bool,
    /// Whether the data checksum verified (false when the data is out of range).
    pub data_checksum_ok: bool,
    /// Whether the entry was applied in memory.
    pub applied: bool,
}

/// What the replay log holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayLog {
    /// Log offset in the file (0 when there is none).
    pub offset: u64,
    /// Log size.
    pub size: u64,
    /// Whether the header was found and verified.
    pub header_ok: bool,
    /// Pending entries (`current_entries_count`).
    pub pending: u32,
    /// Capacity (`maximum_number_of_entries`).
    pub max_entries: u32,
    /// The pending entries.
    pub entries: Vec<LogEntry>,
}

/// Reads the replay log named by `h` and returns it with the patches to apply.
pub(crate) fn read_log(
    file: &dyn Layer,
    h: &FileHeader,
    findings: &mut Findings,
) -> Result<(ReplayLog, Vec<Patch>)> {
    let mut log = ReplayLog {
        offset: h.log_offset,
        size: h.log_size,
        ..ReplayLog::default()
    };
    if h.log_offset == 0 || h.log_size == 0 {
        return Ok((log, Vec::new()));
    }
    let log_end = h.log_offset.checked_add(h.log_size);
    if log_end.is_none_or(|e| e > file.len()) || h.log_size < LOG_HEADER_LEN as u64 {
        findings.push(
            Finding::warning(
                crate::rule::REPLAY_LOG,
                format!(
                    "replay log {:#x}+{:#x} does not fit in the file ({:#x} bytes); not read",
                    h.log_offset,
                    h.log_size,
                    file.len()
                ),
            )
            .at(h.offset + 0x1A),
        );
        return Ok((log, Vec::new()));
    }
    let raw = file.read_vec(
        h.log_offset,
        LOG_HEADER_LEN as u64,
        LOG_HEADER_LEN as u64,
        "replay log header",
    )?;
    let b = Bytes::new(&raw, h.log_offset);
    let stored = b.u32_le(4)?;
    if b.u32_le(0)? != LOG_SIGNATURE {
        findings.push(
            Finding::warning(
                crate::rule::REPLAY_LOG,
                "replay log signature not found; log not read",
            )
            .at(h.log_offset),
        );
        return Ok((log, Vec::new()));
    }
    let header_ok = crc_with_zeroed(&raw, 4) == stored;
    log.pending = b.u32_le(8)?;
    log.max_entries = b.u32_le(0x0D)?;
    if !header_ok {
        findings.push(
            Finding::warning(
                crate::rule::REPLAY_LOG_CHECKSUM,
                format!(
                    "replay log header checksum {stored:#010x} does not verify; {} pending entries not applied",
                    log.pending
                ),
            )
            .at(h.log_offset + 4),
        );
        return Ok((log, Vec::new()));
    }
    log.header_ok = true;
    if log.pending == 0 {
        return Ok((log, Vec::new()));
    }
    // Entries must fit between the log header and the log's data area.
    let room = (u64::from(h.log_header_size).min(h.log_size)).saturating_sub(LOG_HEADER_LEN as u64)
        / LOG_ENTRY_LEN as u64;
    let count = u64::from(log.pending);
    if count > room || count > MAX_LOG_ENTRIES {
        findings.push(
            Finding::unsafe_(
                crate::rule::REPLAY_LOG,
                format!(
                    "replay log claims {count} pending entries, room for {room} (limit {MAX_LOG_ENTRIES}); not applied"
                ),
            )
            .at(h.log_offset + 8),
        );
        return Ok((log, Vec::new()));
    }
    let table_at = h.log_offset + LOG_HEADER_LEN as u64;
    let table_len = count * LOG_ENTRY_LEN as u64;
    let table = file.read_vec(table_at, table_len, table_len, "replay log entries")?;
    let mut patches = Vec::new();
    let mut total = 0u64;
    for (i, raw) in table.chunks_exact(LOG_ENTRY_LEN).enumerate() {
        let at = table_at + (i * LOG_ENTRY_LEN) as u64;
        let e = Bytes::new(raw, at);
        let mut entry = LogEntry {
            index: i as u32,
            dest: e.u64_le(0)?,
            size: e.u32_le(8)?,
            offset_in_log: e.u64_le(0x0C)?,
            entry_checksum_ok: crc_with_zeroed(raw, LOG_ENTRY_CRC_AT) == e.u32_le(0x14)?,
            data_checksum_ok: false,
            applied: false,
        };
        let data_crc = e.u32_le(0x18)?;
        let size = u64::from(entry.size);
        let src_ok = entry
            .offset_in_log
            .checked_add(size)
            .is_some_and(|end| end <= h.log_size && entry.offset_in_log >= LOG_HEADER_LEN as u64);
        let dest_ok = entry
            .dest
            .checked_add(size)
            .is_some_and(|end| end <= file.len());
        let why = if !entry.entry_checksum_ok {
            Some("its entry checksum does not verify".to_string())
        } else if !src_ok {
            Some(format!(
                "its data {:#x}+{:#x} lies outside the log ({:#x} bytes)",
                entry.offset_in_log, size, h.log_size
            ))
        } else if !dest_ok {
            Some(format!(
                "its destination {:#x}+{:#x} lies outside the file",
                entry.dest, size
            ))
        } else if total.saturating_add(size) > MAX_LOG_BYTES {
            Some(format!(
                "the pending data exceeds the limit of {MAX_LOG_BYTES} bytes"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            findings.push(
                Finding::warning(
                    crate::rule::REPLAY_LOG,
                    format!("pending replay log entry {i} not applied: {why}"),
                )
                .at(at),
            );
            log.entries.push(entry);
            continue;
        }
        let data = file.read_vec(
            h.log_offset + entry.offset_in_log,
            size,
            MAX_LOG_BYTES,
            "replay log data",
        )?;
        entry.data_checksum_ok = crc32fast::hash(&data) == data_crc;
        if !entry.data_checksum_ok {
            findings.push(
                Finding::warning(
                    crate::rule::REPLAY_LOG_CHECKSUM,
                    format!(
                        "pending replay log entry {i}: data checksum does not verify; not applied"
                    ),
                )
                .at(at + 0x18),
            );
            log.entries.push(entry);
            continue;
        }
        total += size;
        entry.applied = true;
        patches.push(Patch {
            dest: entry.dest,
            data,
        });
        log.entries.push(entry);
    }
    findings.push(
        Finding::warning(
            crate::rule::REPLAY_LOG,
            format!(
                "the file is dirty: {} of {} pending replay log entries applied in memory (the file is not modified)",
                patches.len(),
                log.pending
            ),
        )
        .at(h.log_offset),
    );
    Ok((log, patches))
}

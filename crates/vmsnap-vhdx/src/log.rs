//! The VHDX log, replayed without writing: find the active sequence (the valid, contiguous
//! run of entries with the highest sequence number), apply its data and zero descriptors
//! to an in-memory overlay of the file, and read everything else through that overlay.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use vmsnap_core::{check_read, AddressSpace, Bytes, Error, Extent, Layer, Result};

use crate::raw::{
    crc_with_zeroed, Guid, LOG_DATA_SIGNATURE, LOG_DESC_SIGNATURE, LOG_ENTRY_SIGNATURE,
    LOG_SCAN_BUDGET_FACTOR, LOG_SECTOR, LOG_ZERO_SIGNATURE, MAX_LOG_BYTES,
};

/// One write recorded in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// 4 KiB of data at a file offset.
    Data {
        /// File offset (4 KiB aligned).
        offset: u64,
        /// The sector.
        data: Arc<[u8]>,
    },
    /// Zeros over a range.
    Zero {
        /// File offset.
        offset: u64,
        /// Length.
        length: u64,
    },
}

/// A valid log entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Offset of the entry inside the log.
    pub at: u64,
    /// Its length.
    pub length: u64,
    /// Sequence number.
    pub sequence: u64,
    /// Flushed file offset.
    pub flushed_file_offset: u64,
    /// Last file offset.
    pub last_file_offset: u64,
    /// Its writes, in order.
    pub writes: Vec<Write>,
}

/// The active sequence.
#[derive(Debug, Clone, Default)]
pub struct Sequence {
    /// Entries in order.
    pub entries: Vec<Entry>,
}

struct LogReader<'a> {
    lower: &'a dyn Layer,
    offset: u64,
    length: u64,
    guid: Guid,
    budget: u64,
}

impl LogReader<'_> {
    /// Reads `len` bytes at log position `pos`, wrapping around the circular log.
    fn read(&mut self, pos: u64, len: u64) -> Result<Vec<u8>> {
        if len > self.budget {
            return Err(Error::limit(
                "bytes read while scanning the log",
                len,
                self.budget,
            ));
        }
        self.budget -= len;
        let n = usize::try_from(len).map_err(|_| Error::limit("log entry", len, MAX_LOG_BYTES))?;
        let mut out = vec![0u8; n];
        let mut done = 0usize;
        while done < n {
            let p = (pos + done as u64) % self.length;
            let chunk = ((self.length - p) as usize).min(n - done);
            let dst = out
                .get_mut(done..done + chunk)
                .ok_or_else(|| Error::malformed(self.offset, "internal: log chunk"))?;
            self.lower.read_at(self.offset + p, dst)?;
            done += chunk;
        }
        Ok(out)
    }

    /// The entry at log position `pos`, or `None` when there is no valid one.
    fn entry(&mut self, pos: u64) -> Result<Option<Entry>> {
        let head = self.read(pos, 64)?;
        let h = Bytes::new(&head, self.offset + pos);
        if h.slice(0, 4)? != LOG_ENTRY_SIGNATURE {
            return Ok(None);
        }
        let length = u64::from(h.u32_le(8)?);
        let sequence = h.u64_le(16)?;
        let count = u64::from(h.u32_le(24)?);
        let guid: Guid = h.array(32)?;
        if length == 0
            || length % LOG_SECTOR != 0
            || length > self.length
            || sequence == 0
            || guid != self.guid
        {
            return Ok(None);
        }
        // QEMU GitLab #3860: the descriptor area is computed in 64 bits and must fit.
        let desc_sectors = (64 + count * 32).div_ceil(LOG_SECTOR);
        if desc_sectors * LOG_SECTOR > length {
            return Ok(None);
        }
        let raw = self.read(pos, length)?;
        let stored = h.u32_le(4)?;
        if crc_with_zeroed(&raw, 4) != stored {
            return Ok(None);
        }
        let b = Bytes::new(&raw, self.offset + pos);
        let mut writes = Vec::new();
        let mut data_sector = desc_sectors;
        for i in 0..count as usize {
            let d = b.sub(64 + i * 32, 32)?;
            let sig = d.slice(0, 4)?;
            if d.u64_le(24)? != sequence {
                return Ok(None);
            }
            if sig == LOG_DESC_SIGNATURE {
                let offset = d.u64_le(16)?;
                if offset % LOG_SECTOR != 0 || (data_sector + 1) * LOG_SECTOR > length {
                    return Ok(None);
                }
                let s = b.sub((data_sector * LOG_SECTOR) as usize, LOG_SECTOR as usize)?;
                if s.slice(0, 4)? != LOG_DATA_SIGNATURE
                    || u64::from(s.u32_le(4)?) != sequence >> 32
                    || u64::from(s.u32_le(4092)?) != sequence & 0xFFFF_FFFF
                {
                    return Ok(None);
                }
                let mut sector = Vec::with_capacity(LOG_SECTOR as usize);
                sector.extend_from_slice(d.slice(8, 8)?); // leading bytes
                sector.extend_from_slice(s.slice(8, 4084)?);
                sector.extend_from_slice(d.slice(4, 4)?); // trailing bytes
                writes.push(Write::Data {
                    offset,
                    data: sector.into(),
                });
                data_sector += 1;
            } else if sig == LOG_ZERO_SIGNATURE {
                let length = d.u64_le(8)?;
                let offset = d.u64_le(16)?;
                if offset % LOG_SECTOR != 0 || length % LOG_SECTOR != 0 {
                    return Ok(None);
                }
                writes.push(Write::Zero { offset, length });
            } else {
                return Ok(None);
            }
        }
        Ok(Some(Entry {
            at: pos,
            length,
            sequence,
            flushed_file_offset: h.u64_le(48)?,
            last_file_offset: h.u64_le(56)?,
            writes,
        }))
    }
}

/// Scans the log at `offset`+`length` for the active sequence of entries tagged `guid`.
pub fn find_active(lower: &dyn Layer, offset: u64, length: u64, guid: Guid) -> Result<Sequence> {
    if length > MAX_LOG_BYTES {
        return Err(Error::limit("log length", length, MAX_LOG_BYTES).at(offset));
    }
    let mut r = LogReader {
        lower,
        offset,
        length,
        guid,
        budget: length
            .saturating_mul(LOG_SCAN_BUDGET_FACTOR)
            .saturating_add(1 << 20),
    };
    let mut best = Sequence::default();
    let mut pos = 0u64;
    while pos < length {
        let Some(first) = r.entry(pos)? else {
            pos += LOG_SECTOR;
            continue;
        };
        let mut run = vec![first];
        let mut walked = run.iter().map(|e| e.length).sum::<u64>();
        while let Some(last) = run.last() {
            if walked >= length {
                break;
            }
            let next_pos = (last.at + last.length) % length;
            let want = last.sequence.wrapping_add(1);
            match r.entry(next_pos)? {
                Some(e) if e.sequence == want => {
                    walked += e.length;
                    run.push(e);
                }
                _ => break,
            }
        }
        let end = pos + run.iter().map(|e| e.length).sum::<u64>();
        let last_seq = run.last().map(|e| e.sequence).unwrap_or(0);
        let best_seq = best.entries.last().map(|e| e.sequence).unwrap_or(0);
        if last_seq > best_seq {
            best = Sequence { entries: run };
        }
        pos = end.max(pos + LOG_SECTOR);
    }
    Ok(best)
}

#[derive(Debug, Clone)]
enum Patch {
    Zero,
    /// A data sector; the interval starts `skip` bytes into it.
    Data(Arc<[u8]>, u64),
}

/// The file with the log's writes applied, in memory. Reads outside the patched ranges go
/// to the file; past the file's end (up to the log's last file offset) read zeros.
#[derive(Debug)]
pub struct Overlay {
    lower: Arc<dyn Layer>,
    // start -> (end, patch); intervals never overlap.
    map: BTreeMap<u64, (u64, Patch)>,
    len: u64,
    writes: usize,
}

impl Overlay {
    /// Applies `seq` over `lower`.
    pub fn new(lower: Arc<dyn Layer>, seq: &Sequence) -> Overlay {
        let mut o = Overlay {
            len: lower.len(),
            lower,
            map: BTreeMap::new(),
            writes: 0,
        };
        for e in &seq.entries {
            for w in &e.writes {
                o.writes += 1;
                match w {
                    Write::Data { offset, data } => o.insert(
                        *offset,
                        offset.saturating_add(LOG_SECTOR),
                        Patch::Data(data.clone(), 0),
                    ),
                    Write::Zero { offset, length } => {
                        o.insert(*offset, offset.saturating_add(*length), Patch::Zero)
                    }
                }
            }
            o.len = o.len.max(e.last_file_offset);
        }
        o
    }

    /// Number of writes applied.
    pub fn writes(&self) -> usize {
        self.writes
    }

    fn insert(&mut self, start: u64, end: u64, p: Patch) {
        if start >= end {
            return;
        }
        self.len = self.len.max(end);
        // Trim every interval overlapping [start, end).
        let overlapping: Vec<u64> = self
            .map
            .range(..end)
            .rev()
            .take_while(|(_, (e, _))| *e > start)
            .map(|(s, _)| *s)
            .collect();
        // Intervals are disjoint and sorted, so `take_while` on the reverse iterator finds
        // all that overlap (each earlier one ends before the next starts).
        for s in overlapping {
            if let Some((e, old)) = self.map.remove(&s) {
                if s < start {
                    self.map.insert(s, (start, old.clone()));
                }
                if e > end {
                    let tail = match old {
                        Patch::Zero => Patch::Zero,
                        Patch::Data(d, skip) => Patch::Data(d, skip + (end - s)),
                    };
                    self.map.insert(end, (e, tail));
                }
            }
        }
        self.map.insert(start, (end, p));
    }

    fn read_lower(&self, pos: u64, buf: &mut [u8]) -> Result<()> {
        let avail = self.lower.len().saturating_sub(pos).min(buf.len() as u64) as usize;
        let (head, rest) = buf.split_at_mut(avail);
        if !head.is_empty() {
            self.lower.read_at(pos, head)?;
        }
        rest.fill(0);
        Ok(())
    }
}

impl Layer for Overlay {
    fn name(&self) -> &str {
        "vhdx-log"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::File
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        let end = offset + buf.len() as u64;
        let mut pos = offset;
        // The interval containing `offset`, if any, then the following ones.
        let first = self
            .map
            .range(..=offset)
            .next_back()
            .filter(|(_, (e, _))| *e > offset)
            .map(|(s, _)| *s)
            .unwrap_or(offset);
        for (&s, (e, p)) in self.map.range(first..end) {
            if s > pos {
                let gap = (s - pos) as usize;
                let at = (pos - offset) as usize;
                let dst = buf
                    .get_mut(at..at + gap)
                    .ok_or_else(|| Error::malformed(pos, "internal"))?;
                self.read_lower(pos, dst)?;
                pos = s;
            }
            let stop = (*e).min(end);
            if stop <= pos {
                continue;
            }
            let at = (pos - offset) as usize;
            let n = (stop - pos) as usize;
            let dst = buf
                .get_mut(at..at + n)
                .ok_or_else(|| Error::malformed(pos, "internal"))?;
            match p {
                Patch::Zero => dst.fill(0),
                Patch::Data(d, skip) => {
                    let from = (skip + (pos - s)) as usize;
                    let src = d
                        .get(from..from + n)
                        .ok_or_else(|| Error::malformed(pos, "internal: patch"))?;
                    dst.copy_from_slice(src);
                }
            }
            pos = stop;
        }
        if pos < end {
            let at = (pos - offset) as usize;
            let dst = buf
                .get_mut(at..)
                .ok_or_else(|| Error::malformed(pos, "internal"))?;
            self.read_lower(pos, dst)?;
        }
        Ok(())
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len);
        if range.start >= end {
            return Ok(Vec::new());
        }
        Ok(vec![Extent::data(range.start, end - range.start, None)])
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        json!({ "format": "vhdx-log", "size": self.len, "writes": self.writes })
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

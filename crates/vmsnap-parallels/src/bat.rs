//! The block allocation table: one u32 per cluster, loaded whole at open and checked
//! entry by entry against the file, so reads never meet an unchecked entry.

use vmsnap_core::{Error, Finding, Layer, Result};

use crate::header::Header;
use crate::raw::HEADER_LEN;

/// The checked BAT.
#[derive(Debug, Clone)]
pub struct Bat {
    entries: Vec<u32>,
    unit: u64,
    /// Number of allocated clusters.
    pub allocated: u64,
}

impl Bat {
    /// Reads and checks the BAT: every allocated entry must start inside the file and
    /// after the header and BAT.
    pub fn load(lower: &dyn Layer, h: &Header, findings: &mut Vec<Finding>) -> Result<Bat> {
        // Held once, not as bytes and entries side by side (128 MiB for a 16 TiB disk).
        let entries: Vec<u32> = vmsnap_core::read_table(
            lower,
            HEADER_LEN as u64,
            u64::from(h.bat_entries),
            vmsnap_core::limits::MAX_TABLE_BYTES,
            "Parallels BAT",
            u32::from_le_bytes,
        )
        .map_err(|e| e.during("reading the Parallels BAT"))?;
        let bat = Bat {
            entries,
            unit: h.bat_unit(),
            allocated: 0,
        };
        let file_len = lower.len();
        let cs = h.cluster_size();
        let mut offsets = Vec::new();
        for (i, &e) in bat.entries.iter().enumerate() {
            if e == 0 {
                continue;
            }
            let at = HEADER_LEN as u64 + 4 * i as u64;
            let off = u64::from(e) * bat.unit;
            if off >= file_len {
                return Err(Error::malformed(
                    at,
                    format!(
                        "Parallels BAT entry {i} points at {off:#x}, past the end of the file \
                         ({file_len:#x})"
                    ),
                ));
            }
            if off < h.bat_end() {
                return Err(Error::malformed(
                    at,
                    format!("Parallels BAT entry {i} points at {off:#x}, inside the header or BAT"),
                ));
            }
            offsets.push(off);
        }
        let allocated = offsets.len() as u64;
        offsets.sort_unstable();
        let overlapping = offsets.windows(2).filter(|w| match w {
            [a, b] => b - a < cs,
            _ => false,
        });
        let overlapping = overlapping.count();
        if overlapping > 0 {
            findings.push(Finding::warning(
                crate::rule::BAT,
                format!("{overlapping} Parallels BAT entries overlap another cluster's data"),
            ));
        }
        if let Some(&last) = offsets.last() {
            if last + cs > file_len {
                findings.push(Finding::warning(
                    crate::rule::TRUNCATED,
                    format!(
                        "Parallels cluster at {last:#x} ends past the end of the file; the \
                         missing bytes read as zeros (as QEMU reads them)"
                    ),
                ));
            }
        }
        Ok(Bat { allocated, ..bat })
    }

    /// File offset of cluster `index`, or `None` when unallocated (or beyond the BAT).
    #[inline]
    pub fn get(&self, index: u64) -> Option<u64> {
        let e = *self.entries.get(usize::try_from(index).ok()?)?;
        (e != 0).then(|| u64::from(e) * self.unit)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

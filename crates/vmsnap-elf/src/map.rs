//! PT_LOAD segments → segment maps: the guest-physical one by `p_paddr` and, when the
//! core records virtual addresses, a guest-virtual one by `p_vaddr`.
//!
//! Overlaps: QEMU's paging dumps (`dump-guest-memory -p`) write one PT_LOAD per virtual
//! mapping, so several headers can name the same physical bytes at the same file
//! offset. Overlaps that agree byte for byte (same file offset for the same address) are
//! merged; overlaps that disagree are an error naming both headers. A zero tail
//! (`p_filesz < p_memsz`) overlapped by another header's file data gives way to the data,
//! with a finding.

use vmsnap_core::{Error, Finding, Overlap, Result, Segment, SegmentMap, SegmentMapBuilder};

use crate::header::ProgramHeader;

/// A built map and what building it noticed.
#[derive(Debug)]
pub struct Built {
    /// The map.
    pub map: SegmentMap,
    /// Findings (shadowed zero tails, `p_filesz > p_memsz`).
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Copy)]
struct Piece {
    start: u64,
    end: u64,
    offset: u64,
    index: u32,
}

/// Which address of a program header a map is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// `p_paddr`, capped at `limit` bytes of address space.
    Physical {
        /// Largest end address accepted.
        limit: u64,
    },
    /// `p_vaddr`; a segment ending exactly at 2^64 loses its last byte.
    Virtual,
}

/// Builds the map of `loads` (PT_LOAD headers) over a file of `file_size` bytes.
pub fn build(loads: &[ProgramHeader], file_size: u64, by: By) -> Result<Built> {
    let mut findings = Vec::new();
    let mut data: Vec<Piece> = Vec::new();
    let mut zeros: Vec<Piece> = Vec::new();
    let mut size = 0u64;
    for ph in loads {
        if ph.memsz == 0 {
            continue;
        }
        let (start, mut memsz) = match by {
            By::Physical { .. } => (ph.paddr, ph.memsz),
            By::Virtual => (ph.vaddr, ph.memsz),
        };
        let end = match start.checked_add(memsz) {
            Some(e) => e,
            None if by == By::Virtual && u128::from(start) + u128::from(memsz) == 1u128 << 64 => {
                memsz -= 1;
                u64::MAX
            }
            None => {
                return Err(Error::malformed(
                    ph.at,
                    format!(
                        "PT_LOAD segment {}: address {start:#x} + p_memsz {:#x} overflows",
                        ph.index, ph.memsz
                    ),
                ))
            }
        };
        if let By::Physical { limit } = by {
            if end > limit {
                return Err(Error::limit(
                    &format!(
                        "end of PT_LOAD segment {} (p_paddr {start:#x} + p_memsz {memsz:#x})",
                        ph.index
                    ),
                    end,
                    limit,
                )
                .at(ph.at));
            }
        }
        let mut filesz = ph.filesz;
        if filesz > memsz {
            if by != By::Virtual {
                findings.push(
                    Finding::warning(
                        crate::rule::SEGMENT_SIZES,
                        format!(
                            "PT_LOAD segment {}: p_filesz {:#x} > p_memsz {:#x}; the excess is ignored",
                            ph.index, ph.filesz, ph.memsz
                        ),
                    )
                    .at(ph.at),
                );
            }
            filesz = memsz;
        }
        if filesz > 0 {
            let fits = ph
                .offset
                .checked_add(filesz)
                .is_some_and(|e| e <= file_size);
            if !fits {
                return Err(Error::truncated(
                    ph.at,
                    format!(
                        "PT_LOAD segment {}: data at file offset {:#x} + {filesz:#x} ends past \
                         the end of the file ({file_size:#x} bytes)",
                        ph.index, ph.offset
                    ),
                ));
            }
            data.push(Piece {
                start,
                end: start + filesz,
                offset: ph.offset,
                index: ph.index,
            });
        }
        if filesz < memsz {
            zeros.push(Piece {
                start: start + filesz,
                end,
                offset: 0,
                index: ph.index,
            });
        }
        size = size.max(end);
    }

    // Merge data pieces that agree, refuse those that disagree.
    data.sort_by_key(|p| (p.start, p.index));
    let mut runs: Vec<Piece> = Vec::with_capacity(data.len());
    for p in data {
        match runs.last_mut() {
            Some(cur) if p.start < cur.end => {
                let same = p.offset.wrapping_sub(p.start) == cur.offset.wrapping_sub(cur.start);
                if !same {
                    return Err(Error::malformed(
                        p.start,
                        format!(
                            "PT_LOAD segments {} and {} overlap at {:#x}..{:#x} with different \
                             file data",
                            cur.index,
                            p.index,
                            p.start,
                            p.end.min(cur.end)
                        ),
                    ));
                }
                cur.end = cur.end.max(p.end);
            }
            _ => runs.push(p),
        }
    }

    // Union of zero tails, minus the data runs.
    zeros.sort_by_key(|p| (p.start, p.index));
    let mut zruns: Vec<Piece> = Vec::with_capacity(zeros.len());
    for p in zeros {
        match zruns.last_mut() {
            Some(cur) if p.start <= cur.end => cur.end = cur.end.max(p.end),
            _ => zruns.push(p),
        }
    }
    let mut shadowed = 0u64;
    let mut fills: Vec<(u64, u64)> = Vec::with_capacity(zruns.len());
    let mut di = 0usize;
    for z in &zruns {
        let mut pos = z.start;
        while di < runs.len() && runs.get(di).is_some_and(|d| d.end <= pos) {
            di += 1;
        }
        let mut k = di;
        while pos < z.end {
            match runs.get(k) {
                Some(d) if d.start < z.end => {
                    if d.start > pos {
                        fills.push((pos, d.start));
                    }
                    let cut_to = d.end.min(z.end);
                    shadowed = shadowed.saturating_add(cut_to.saturating_sub(pos.max(d.start)));
                    pos = pos.max(cut_to);
                    k += 1;
                }
                _ => {
                    fills.push((pos, z.end));
                    pos = z.end;
                }
            }
        }
    }
    if shadowed > 0 && by != By::Virtual {
        findings.push(Finding::warning(
            crate::rule::OVERLAPPING_SEGMENTS,
            format!(
                "{shadowed:#x} bytes of zero tails (p_filesz < p_memsz) are covered by other \
                 segments' file data, which is used"
            ),
        ));
    }

    let mut b = SegmentMapBuilder::new(size, Overlap::Reject);
    for r in &runs {
        b.push(Segment::plain(r.start, r.end - r.start, r.offset))?;
    }
    for &(s, e) in &fills {
        b.push(Segment::fill(s, e - s, 0))?;
    }
    Ok(Built {
        map: b.build()?,
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmsnap_core::{Extent, ExtentKind};

    fn ph(index: u32, paddr: u64, offset: u64, filesz: u64, memsz: u64) -> ProgramHeader {
        ProgramHeader {
            index,
            at: 0,
            p_type: 1,
            flags: 0,
            offset,
            vaddr: paddr,
            paddr,
            filesz,
            memsz,
        }
    }

    const PHYS: By = By::Physical { limit: 1 << 52 };

    #[test]
    fn unsorted_with_zero_tail() {
        let b = build(
            &[
                ph(0, 0x2000, 0x1000, 0x1000, 0x3000),
                ph(1, 0, 0, 0x1000, 0x1000),
            ],
            0x2000,
            PHYS,
        )
        .unwrap();
        assert_eq!(b.map.size(), 0x5000);
        assert_eq!(
            b.map.extents(0..0x5000),
            vec![
                Extent::data(0, 0x1000, Some(0)),
                Extent::of(ExtentKind::Unallocated, 0x1000, 0x1000),
                Extent::data(0x2000, 0x1000, Some(0x1000)),
                Extent::of(ExtentKind::Zero, 0x3000, 0x2000),
            ]
        );
    }

    #[test]
    fn consistent_overlaps_merge_and_data_beats_zero_tails() {
        let b = build(
            &[
                ph(0, 0, 0, 0x2000, 0x2000),
                ph(1, 0x1000, 0x1000, 0x1000, 0x1000),
                ph(2, 0x1800, 0x1800, 0, 0x1000),
            ],
            0x2000,
            PHYS,
        )
        .unwrap();
        assert_eq!(
            b.map.extents(0..0x2800),
            vec![
                Extent::data(0, 0x2000, Some(0)),
                Extent::of(ExtentKind::Zero, 0x2000, 0x800),
            ]
        );
        assert_eq!(b.findings.len(), 1);
        assert_eq!(b.findings[0].rule, crate::rule::OVERLAPPING_SEGMENTS);
    }

    #[test]
    fn conflicting_overlap_names_both() {
        let e = build(
            &[
                ph(3, 0, 0, 0x2000, 0x2000),
                ph(7, 0x1000, 0x5000, 0x1000, 0x1000),
            ],
            0x10000,
            PHYS,
        )
        .unwrap_err();
        assert_eq!(e.kind(), vmsnap_core::ErrorKind::Malformed);
        assert!(e.message().contains("segments 3 and 7"), "{e}");
    }

    #[test]
    fn virtual_segment_may_end_at_top_of_address_space() {
        let mut p = ph(0, 0, 0, 0x1000, 0x1000);
        p.vaddr = u64::MAX - 0xfff;
        let b = build(&[p], 0x1000, By::Virtual).unwrap();
        assert_eq!(b.map.size(), u64::MAX);
        assert_eq!(b.map.segments()[0].len, 0xfff);
    }
}

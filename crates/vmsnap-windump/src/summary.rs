//! The summary header of bitmap dumps (`_SUMMARY_DUMP`, `FDMP`/`SDMP`) and the walk of its
//! bitmap into segments.

use serde_json::{json, Value};
use vmsnap_core::{Bytes, Error, Layer, LayerExt, Result, ResultExt, Segment, SegmentMapBuilder};

use crate::raw::summary::*;
use crate::raw::{BITMAP_CHUNK, MAX_PHYS_END, PAGE};

/// A checked summary header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// File offset of the summary header (right after the dump header).
    pub offset: u64,
    /// `FDMP` or `SDMP`.
    pub signature: String,
    /// `DumpOptions`.
    pub dump_options: u32,
    /// `HeaderSize`: file offset of the first present page.
    pub header_size: u64,
    /// `Pages`: pages present, as the header says.
    pub pages: u64,
    /// `BitmapSize`: bits in the bitmap (page frames covered).
    pub bitmap_size: u64,
}

impl Summary {
    /// Reads and checks the summary header at `offset` of `file`.
    pub fn read(file: &dyn Layer, offset: u64) -> Result<Summary> {
        let file_size = file.len();
        if offset.checked_add(BITMAP).is_none_or(|e| e > file_size) {
            return Err(Error::truncated(
                offset,
                format!(
                    "a bitmap dump needs its {BITMAP}-byte summary header at {offset:#x}, past \
                     the end of the file ({file_size:#x} bytes)"
                ),
            ));
        }
        let raw: [u8; BITMAP as usize] = file.read_array(offset)?;
        let b = Bytes::new(&raw, offset);
        let sig = b.array::<4>(0)?;
        if (&sig != FULL && &sig != KERNEL) || &b.array::<4>(4)? != VALID_DUMP {
            return Err(Error::malformed(
                offset,
                "no FDMPDUMP or SDMPDUMP summary header after the dump header",
            ));
        }
        let s = Summary {
            offset,
            signature: String::from_utf8_lossy(&sig).into_owned(),
            dump_options: b.u32_le(DUMP_OPTIONS as usize)?,
            header_size: b.u64_le(HEADER_SIZE as usize)?,
            pages: b.u64_le(PAGES as usize)?,
            bitmap_size: b.u64_le(BITMAP_SIZE as usize)?,
        };
        let max_bits = MAX_PHYS_END / PAGE;
        if s.bitmap_size > max_bits {
            return Err(
                Error::limit("BitmapSize (page frames)", s.bitmap_size, max_bits)
                    .at(offset + BITMAP_SIZE),
            );
        }
        // Checked above: the bitmap's bytes and end cannot overflow.
        let bitmap_end = offset + BITMAP + s.bitmap_bytes();
        if bitmap_end > file_size {
            return Err(Error::truncated(
                offset + BITMAP_SIZE,
                format!(
                    "a bitmap of {} bits ends at {bitmap_end:#x}, past the end of the file \
                     ({file_size:#x} bytes)",
                    s.bitmap_size
                ),
            ));
        }
        if s.header_size < bitmap_end || s.header_size > file_size {
            return Err(Error::malformed(
                offset + HEADER_SIZE,
                format!(
                    "HeaderSize {:#x} (where the pages start) is not between the end of the \
                     bitmap ({bitmap_end:#x}) and the end of the file ({file_size:#x})",
                    s.header_size
                ),
            ));
        }
        if s.pages > s.bitmap_size {
            return Err(Error::malformed(
                offset + PAGES,
                format!(
                    "Pages {} is more than the {} page frames of the bitmap",
                    s.pages, s.bitmap_size
                ),
            ));
        }
        Ok(s)
    }

    /// Bytes of the bitmap.
    pub fn bitmap_bytes(&self) -> u64 {
        self.bitmap_size.div_ceil(8)
    }

    /// Walks the bitmap a chunk at a time and pushes one segment per run of set bits, the
    /// pages of each stored one after another from `header_size`; returns the pages present.
    /// A page whose data would lie past the end of the file is an error.
    pub fn map(&self, file: &dyn Layer, b: &mut SegmentMapBuilder) -> Result<u64> {
        let mut walk = Walk {
            data: self.header_size,
            file_size: file.len(),
            run: None,
            present: 0,
        };
        let total = self.bitmap_bytes();
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min(BITMAP_CHUNK);
            let at = self.offset + BITMAP + done;
            let bytes = file
                .read_vec(at, n, BITMAP_CHUNK, "bitmap")
                .during("reading the page bitmap")?;
            let first = done * 8;
            for (i, &byte) in bytes.iter().enumerate() {
                let pfn = first + i as u64 * 8;
                let bits = 8.min(self.bitmap_size - pfn);
                let byte = if bits < 8 {
                    byte & ((1u8 << bits) - 1)
                } else {
                    byte
                };
                match byte {
                    0 => walk.end(b, pfn)?,
                    0xff => walk.set(pfn, 8),
                    _ => {
                        for bit in 0..bits {
                            if byte & (1 << bit) != 0 {
                                walk.set(pfn + bit, 1);
                            } else {
                                walk.end(b, pfn + bit)?;
                            }
                        }
                    }
                }
            }
            done += n;
        }
        walk.end(b, self.bitmap_size)?;
        Ok(walk.present)
    }

    /// The summary header as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "offset": self.offset,
            "signature": self.signature,
            "dump_options": self.dump_options,
            "header_size": self.header_size,
            "pages": self.pages,
            "bitmap_size": self.bitmap_size,
        })
    }
}

/// The state of the bitmap walk: the run of set bits being gathered.
struct Walk {
    /// File offset of the next present page.
    data: u64,
    file_size: u64,
    /// (first page frame, file offset) of the current run of set bits.
    run: Option<(u64, u64)>,
    present: u64,
}

impl Walk {
    /// `count` set bits from page frame `pfn` (continuing the current run, or starting one).
    fn set(&mut self, pfn: u64, count: u64) {
        if self.run.is_none() {
            self.run = Some((pfn, self.data));
        }
        // At most BitmapSize pages of 4 KiB: below 2^52, cannot overflow.
        self.data += count * PAGE;
        self.present += count;
    }

    /// Ends the current run (if any) before page frame `pfn`.
    fn end(&mut self, b: &mut SegmentMapBuilder, pfn: u64) -> Result<()> {
        let Some((first, at)) = self.run.take() else {
            return Ok(());
        };
        let len = (pfn - first) * PAGE;
        if self.data > self.file_size {
            return Err(Error::truncated(
                at,
                format!(
                    "the {} pages from page frame {first:#x} lie at {at:#x}..{:#x}, past the \
                     end of the file ({:#x} bytes)",
                    pfn - first,
                    self.data,
                    self.file_size
                ),
            ));
        }
        b.push(Segment::plain(first * PAGE, len, at))
    }
}

//! Sector bitmaps (VHD differencing blocks, VHDX partially present blocks): one bit per
//! sector says whether the image file holds the sector or the parent disk does. A read
//! walks a block in runs of sectors with the same bit, reading the bitmap 512 bytes
//! (4096 sectors) at a time.

use crate::error::Result;
use crate::layer::Layer;

/// Bytes of a bitmap read at once.
const CHUNK_BYTES: u64 = 512;
/// Sectors a chunk covers.
const CHUNK_BITS: u64 = CHUNK_BYTES * 8;

/// Which bit of a bitmap byte stands for the first of its eight sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BitOrder {
    /// The most significant bit (VHD).
    MsbFirst,
    /// The least significant bit (VHDX).
    LsbFirst,
}

/// Where the sector bitmap of one block lies.
#[derive(Debug, Clone, Copy)]
pub struct SectorBitmap {
    /// File offset of the bitmap's first byte.
    pub at: u64,
    /// The bit of the block's first sector (a VHDX bitmap serves several blocks).
    pub first_bit: u64,
    /// Sector size in bytes.
    pub sector: u64,
    /// Bit order within a byte.
    pub order: BitOrder,
}

/// The chunk of a bitmap read last, kept between the runs of one read.
#[derive(Debug, Default)]
pub struct BitmapCache {
    /// The file offset of the chunk held (`None` while none is) and its bytes.
    chunk: Option<(Option<u64>, [u8; CHUNK_BYTES as usize])>,
}

impl BitmapCache {
    /// The 512 bytes at `at` of `file`, read unless they are the ones kept.
    fn load(&mut self, file: &dyn Layer, at: u64) -> Result<&[u8; CHUNK_BYTES as usize]> {
        let (held, bytes) = match &mut self.chunk {
            Some(chunk) => chunk,
            empty => empty.insert((None, [0; CHUNK_BYTES as usize])),
        };
        if *held != Some(at) {
            *held = None;
            file.read_at(at, bytes)?;
            *held = Some(at);
        }
        Ok(bytes)
    }
}

impl BitOrder {
    /// `byte` with bit `k` standing for the byte's sector `k`.
    #[inline]
    fn lsb_first(self, byte: u8) -> u8 {
        match self {
            BitOrder::MsbFirst => byte.reverse_bits(),
            BitOrder::LsbFirst => byte,
        }
    }
}

impl SectorBitmap {
    /// Whether the file holds the sector of byte `within` of the block, and for how many
    /// bytes from `within` on (1 to `max`) that holds, as far as one chunk of the bitmap
    /// (read from `file` through `cache`) tells.
    pub fn run(
        &self,
        file: &dyn Layer,
        cache: &mut BitmapCache,
        within: u64,
        max: u64,
    ) -> Result<(bool, u64)> {
        let bit = self.first_bit.saturating_add(within / self.sector);
        let base = bit - bit % CHUNK_BITS;
        let bytes = cache.load(file, self.at.saturating_add(base / 8))?;
        // Bits of the chunk, from `bit`, up to the sector of the last wanted byte.
        let last = within.saturating_add(max).saturating_sub(1) / self.sector + self.first_bit;
        let stop = (last - base).saturating_add(1).min(CHUNK_BITS);
        let mut i = bit - base;
        let byte = |i: u64| {
            let b = bytes.get((i / 8) as usize).copied().unwrap_or(0);
            self.order.lsb_first(b)
        };
        let present = byte(i) >> (i % 8) & 1 != 0;
        // Eight sectors at a time: the first bit that differs from `present` ends the run.
        let mut end = stop;
        while i < stop {
            let differ = if present { !byte(i) } else { byte(i) } & (0xFF << (i % 8));
            if differ != 0 {
                end = (i - i % 8 + u64::from(differ.trailing_zeros())).min(stop);
                break;
            }
            i = i - i % 8 + 8;
        }
        let run_end = (base + end - self.first_bit).saturating_mul(self.sector);
        Ok((present, (run_end - within).min(max)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layer::FileLayer;
    use crate::source::MemSource;

    fn file() -> FileLayer {
        // Chunk 0: sectors 0-3 set (MSB-first 0xF0), then clear; chunk 1 all set.
        let mut b = vec![0u8; 1024];
        b[0] = 0xF0;
        b[512..].fill(0xFF);
        FileLayer::new(Arc::new(MemSource::new(b)))
    }

    #[test]
    fn runs_of_equal_bits_within_a_chunk() {
        let f = file();
        let mut c = BitmapCache::default();
        let msb = SectorBitmap {
            at: 0,
            first_bit: 0,
            sector: 512,
            order: BitOrder::MsbFirst,
        };
        assert_eq!(
            msb.run(&f, &mut c, 100, 1 << 30).unwrap(),
            (true, 2048 - 100)
        );
        assert_eq!(msb.run(&f, &mut c, 100, 10).unwrap(), (true, 10));
        // From sector 4 to the end of the chunk (sector 4096), then the next chunk.
        assert_eq!(
            msb.run(&f, &mut c, 2048, 1 << 30).unwrap(),
            (false, (4096 - 4) * 512)
        );
        assert!(msb.run(&f, &mut c, 4096 * 512, 1 << 30).unwrap().0);
        // LSB-first, from bit 2 on: bits 2, 3 clear, 4-7 set.
        let lsb = SectorBitmap {
            first_bit: 2,
            order: BitOrder::LsbFirst,
            ..msb
        };
        assert_eq!(lsb.run(&f, &mut c, 0, 1 << 30).unwrap(), (false, 1024));
        assert_eq!(lsb.run(&f, &mut c, 1024, 1 << 30).unwrap(), (true, 2048));
    }

    #[test]
    fn matches_a_bit_by_bit_walk() {
        // Runs of random lengths, so that runs start and end anywhere in a byte.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut bits = Vec::new();
        let mut on = false;
        while bits.len() < 3 * 4096 {
            let n = 1 + next() % if next() % 4 == 0 { 600 } else { 12 };
            bits.extend(std::iter::repeat_n(on, n as usize));
            on = !on;
        }
        bits.truncate(3 * 4096);
        for order in [BitOrder::MsbFirst, BitOrder::LsbFirst] {
            let mut raw = vec![0u8; bits.len() / 8];
            for (i, &b) in bits.iter().enumerate() {
                if b {
                    raw[i / 8] |= match order {
                        BitOrder::MsbFirst => 0x80 >> (i % 8),
                        BitOrder::LsbFirst => 1 << (i % 8),
                    };
                }
            }
            let f = FileLayer::new(Arc::new(MemSource::new(raw)));
            let mut c = BitmapCache::default();
            for _ in 0..5000 {
                let sector = if next() % 2 == 0 { 512 } else { 4096 };
                let map = SectorBitmap {
                    at: 0,
                    first_bit: next() % 4096,
                    sector,
                    order,
                };
                let within = next() % (6000 * sector);
                let max = 1 + next() % (3000 * sector);
                let bit = (map.first_bit + within / sector) as usize;
                let want = bits[bit];
                let mut end = bit + 1;
                while end < (bit / 4096 + 1) * 4096 && bits[end] == want {
                    end += 1;
                }
                let len = ((end as u64 - map.first_bit) * sector - within).min(max);
                assert_eq!(map.run(&f, &mut c, within, max).unwrap(), (want, len));
            }
        }
    }
}

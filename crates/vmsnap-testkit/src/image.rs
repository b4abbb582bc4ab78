//! The realistic test image: ~60% random data, ~30% zeros and ~10% repeated 1 MiB runs,
//! laid out in 1 MiB chunks from a fixed seed. Used by `cargo xtask bench-peers` and by
//! the criterion benches, so both measure the same kind of content.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// A small, fast, seeded PRNG (xorshift64*), good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a fixed constant).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A value below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// What one 1 MiB chunk of the realistic image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Random bytes.
    Random,
    /// Zeros (left as a hole in the raw file).
    Zero,
    /// A copy of the one repeated 1 MiB pattern.
    Repeat,
}

/// The chunk kinds of an image of `chunks` MiB from `seed`.
pub fn layout(chunks: u64, seed: u64) -> Vec<Chunk> {
    let mut rng = Rng::new(seed);
    (0..chunks)
        .map(|_| match rng.below(10) {
            0..=5 => Chunk::Random,
            6..=8 => Chunk::Zero,
            _ => Chunk::Repeat,
        })
        .collect()
}

/// Writes the realistic raw image of `size_mib` MiB to `path` (zero chunks as holes).
pub fn write_realistic_raw(path: &Path, size_mib: u64, seed: u64) -> std::io::Result<()> {
    const MIB: usize = 1 << 20;
    let mut f = std::fs::File::create(path)?;
    let mut rng = Rng::new(seed ^ 0xA5A5);
    let mut repeat = vec![0u8; MIB];
    rng.fill(&mut repeat);
    let mut buf = vec![0u8; MIB];
    for (i, c) in layout(size_mib, seed).into_iter().enumerate() {
        match c {
            Chunk::Zero => continue,
            Chunk::Random => {
                rng.fill(&mut buf);
                f.seek(SeekFrom::Start(i as u64 * MIB as u64))?;
                f.write_all(&buf)?;
            }
            Chunk::Repeat => {
                f.seek(SeekFrom::Start(i as u64 * MIB as u64))?;
                f.write_all(&repeat)?;
            }
        }
    }
    f.set_len(size_mib * MIB as u64)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_seeded_and_roughly_proportioned() {
        let a = layout(1000, 7);
        assert_eq!(a, layout(1000, 7));
        assert_ne!(a, layout(1000, 8));
        let zeros = a.iter().filter(|c| **c == Chunk::Zero).count();
        let random = a.iter().filter(|c| **c == Chunk::Random).count();
        assert!((250..350).contains(&zeros), "{zeros}");
        assert!((550..650).contains(&random), "{random}");
    }
}

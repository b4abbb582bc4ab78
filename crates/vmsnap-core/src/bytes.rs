//! A bounds-checked view of bytes read from a file: every accessor returns a `Result`
//! naming the file offset, none can panic.

use crate::error::{Error, Result};

/// Bytes with the file offset of their first byte, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a> {
    data: &'a [u8],
    base: u64,
}

macro_rules! int_reader {
    ($name:ident, $ty:ty, $from:ident) => {
        #[doc = concat!("The `", stringify!($ty), "` at `offset` (", stringify!($from), ").")]
        pub fn $name(&self, offset: usize) -> Result<$ty> {
            Ok(<$ty>::$from(self.array(offset)?))
        }
    };
}

impl<'a> Bytes<'a> {
    /// Wraps `data`, which was read from file offset `base`.
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Bytes { data, base }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The file offset of byte `offset`.
    pub fn file_offset(&self, offset: usize) -> u64 {
        self.base.saturating_add(offset as u64)
    }

    /// The underlying slice.
    pub fn as_slice(&self) -> &'a [u8] {
        self.data
    }

    /// `len` bytes at `offset`.
    pub fn slice(&self, offset: usize, len: usize) -> Result<&'a [u8]> {
        offset
            .checked_add(len)
            .and_then(|end| self.data.get(offset..end))
            .ok_or_else(|| {
                Error::truncated(
                    self.file_offset(offset),
                    format!(
                        "{len} bytes needed at this offset, only {} available",
                        self.data.len().saturating_sub(offset)
                    ),
                )
            })
    }

    /// A sub-view of `len` bytes at `offset`.
    pub fn sub(&self, offset: usize, len: usize) -> Result<Bytes<'a>> {
        Ok(Bytes::new(
            self.slice(offset, len)?,
            self.file_offset(offset),
        ))
    }

    /// A fixed-size array at `offset`.
    pub fn array<const N: usize>(&self, offset: usize) -> Result<[u8; N]> {
        let s = self.slice(offset, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// The byte at `offset`.
    pub fn u8(&self, offset: usize) -> Result<u8> {
        Ok(self.array::<1>(offset)?[0])
    }

    int_reader!(u16_le, u16, from_le_bytes);
    int_reader!(u32_le, u32, from_le_bytes);
    int_reader!(u64_le, u64, from_le_bytes);
    int_reader!(u16_be, u16, from_be_bytes);
    int_reader!(u32_be, u32, from_be_bytes);
    int_reader!(u64_be, u64, from_be_bytes);
    int_reader!(i64_le, i64, from_le_bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses_with_file_offsets() {
        let b = Bytes::new(&[1, 0, 0, 0, 0xff], 0x100);
        assert_eq!(b.u32_le(0).unwrap(), 1);
        assert_eq!(b.u32_be(0).unwrap(), 0x0100_0000);
        assert_eq!(b.u8(4).unwrap(), 0xff);
        let e = b.u32_le(2).unwrap_err();
        assert_eq!(e.context().offset, Some(0x102));
        assert!(b.slice(usize::MAX, 2).is_err());
        assert_eq!(b.sub(1, 3).unwrap().file_offset(0), 0x101);
    }
}

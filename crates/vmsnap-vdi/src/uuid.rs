//! VDI UUIDs, stored in the mixed-endian Microsoft GUID layout.

/// A 16-byte UUID as stored in a VDI header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Whether all bytes are zero (no UUID).
    pub fn is_null(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }
}

impl std::fmt::Display for Uuid {
    /// The canonical text form: the first three groups are little-endian on disk.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.0;
        let order = [3usize, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
        for (i, &o) in order.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{:02x}", b.get(o).copied().unwrap_or(0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_mixed_endian() {
        let u = Uuid([
            0x8f, 0x42, 0xbc, 0x43, 0xbd, 0xb6, 0x5c, 0x49, 0xa0, 0x32, 0x34, 0x69, 0x09, 0xd9,
            0xb6, 0xd7,
        ]);
        assert_eq!(u.to_string(), "43bc428f-b6bd-495c-a032-346909d9b6d7");
        assert!(!u.is_null());
        assert!(Uuid([0; 16]).is_null());
    }
}

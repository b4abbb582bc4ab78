//! Tables of fixed-size entries (BATs, block maps, L1 tables) read whole at open: checked
//! against a named limit and the layer, then read in pieces straight into their entries,
//! so that a table is held once — not its bytes and its entries side by side.

use crate::error::{Error, Result};
use crate::layer::{Layer, LayerExt};

/// Bytes of a table read at a time.
pub const TABLE_READ_PIECE: usize = 1024 * 1024;

/// Reads `count` entries of `N` bytes at `offset` of `layer`, each turned into a `T` by
/// `decode`. Fails with `LimitExceeded` when the table is over `limit` bytes and with
/// `Truncated` when it does not lie inside the layer, before anything is allocated.
pub fn read_table<T, const N: usize>(
    layer: &dyn Layer,
    offset: u64,
    count: u64,
    limit: u64,
    what: &str,
    decode: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let bytes = count
        .checked_mul(N as u64)
        .ok_or_else(|| Error::limit(what, u64::MAX, limit).at(offset))?;
    if bytes > limit {
        return Err(Error::limit(what, bytes, limit).at(offset));
    }
    if offset.checked_add(bytes).is_none_or(|e| e > layer.len()) {
        return Err(Error::truncated(
            offset,
            format!(
                "{what} of {bytes} bytes ends past the end of the {} layer ({} bytes)",
                layer.name(),
                layer.len()
            ),
        ));
    }
    let count = usize::try_from(count).map_err(|_| Error::limit(what, bytes, limit))?;
    let mut out = Vec::with_capacity(count);
    let per = (TABLE_READ_PIECE / N.max(1)).max(1) as u64;
    let mut at = offset;
    let mut left = count as u64;
    while left > 0 {
        let n = left.min(per);
        let piece = layer.read_vec(at, n * N as u64, per * N as u64, what)?;
        out.extend(
            piece
                .chunks_exact(N)
                .map(|c| decode(<[u8; N]>::try_from(c).unwrap_or([0; N]))),
        );
        at += n * N as u64;
        left -= n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::layer::FileLayer;
    use crate::source::MemSource;
    use std::sync::Arc;

    #[test]
    fn reads_entries_across_pieces_and_checks_first() {
        let n = TABLE_READ_PIECE / 4 + 3;
        let bytes: Vec<u8> = (0..n as u32).flat_map(u32::to_le_bytes).collect();
        let f = FileLayer::new(Arc::new(MemSource::new(bytes)));
        let t = read_table(&f, 4, n as u64 - 1, 1 << 30, "t", u32::from_le_bytes).unwrap();
        assert_eq!(t.len(), n - 1);
        assert!(t.iter().enumerate().all(|(i, &e)| e == i as u32 + 1));
        let e = read_table(&f, 0, n as u64, 16, "t", u32::from_le_bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        let e = read_table(&f, 8, n as u64, 1 << 30, "t", u32::from_le_bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated);
    }
}

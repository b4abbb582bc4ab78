//! Guest-physical memory written as a LiME file: one record per contiguous range of the
//! memory's extents that is not a hole (data, zero and unavailable extents merged), each a
//! 32-byte version-1 header (magic, version, start, inclusive end, reserved 0) followed by
//! the range's bytes. Zero pages inside a range are holes of the sparse output.
//!
//! The result is a [`Composed`] layer of the file's bytes: any layer copier writes it
//! (sparse, in parallel, to a stream).

use std::sync::Arc;

use vmsnap_core::compose::{Composed, ComposedBuilder};
use vmsnap_core::{present_ranges, AddressSpace, Error, ErrorKind, Layer, Result};

use crate::raw::*;

/// The name of the exported layer.
pub const EXPORT_NAME: &str = "lime-export";

/// Lays out `memory` (a guest-physical layer) as a LiME file.
pub fn export(memory: Arc<dyn Layer>) -> Result<Composed> {
    if memory.space() != AddressSpace::GuestPhysical {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "layer {} is {} space, not guest-physical memory: only memory is written as LiME",
                memory.name(),
                memory.space().as_str()
            ),
        ));
    }
    let ranges = present_ranges(&memory.extents(0..memory.len())?);
    if ranges.len() as u64 > MAX_RANGES {
        return Err(Error::limit(
            "number of LiME ranges",
            ranges.len() as u64,
            MAX_RANGES,
        ));
    }
    let mut b = ComposedBuilder::new();
    for r in &ranges {
        let mut header = [0u8; HEADER_SIZE as usize];
        // Ranges are never empty: `end - 1` is the inclusive end.
        for (at, field) in [
            (0, &LIME_MAGIC.to_le_bytes()[..]),
            (4, &LIME_VERSION.to_le_bytes()[..]),
            (8, &r.start.to_le_bytes()[..]),
            (16, &(r.end - 1).to_le_bytes()[..]),
        ] {
            if let Some(d) = header.get_mut(at..at + field.len()) {
                d.copy_from_slice(field);
            }
        }
        b.push_bytes(&header)?;
        b.push_lower(r.start, r.end - r.start)?;
    }
    b.build(EXPORT_NAME, memory)
}

#[cfg(test)]
mod tests {
    use vmsnap_core::{Extent, ExtentKind, FileLayer, MemSource, SliceLayer};

    use super::*;
    use crate::Lime;

    #[test]
    fn round_trips_and_refuses_other_spaces() {
        // A LiME file with two ranges is memory with a hole; export it again.
        let mut file = Vec::new();
        for (start, len, fill) in [(0x1000u64, 0x2000u64, 0xa5u8), (0x8000, 0x10, 0x5a)] {
            file.extend_from_slice(&LIME_MAGIC.to_le_bytes());
            file.extend_from_slice(&1u32.to_le_bytes());
            file.extend_from_slice(&start.to_le_bytes());
            file.extend_from_slice(&(start + len - 1).to_le_bytes());
            file.extend_from_slice(&[0; 8]);
            file.extend(std::iter::repeat_n(fill, len as usize));
        }
        let base: Arc<dyn Layer> = Arc::new(FileLayer::new(Arc::new(MemSource::new(file.clone()))));
        let lime: Arc<dyn Layer> = Arc::new(Lime::open_layer(base.clone()).unwrap());
        let out = export(lime.clone()).unwrap();
        assert_eq!(out.len(), file.len() as u64);
        let mut bytes = vec![0u8; file.len()];
        out.read_at(0, &mut bytes).unwrap();
        assert_eq!(bytes, file);
        let e = out.extents(0..out.len()).unwrap();
        assert_eq!(e.first(), Some(&Extent::data(0, 32, None)));
        assert!(e.iter().all(|x| x.kind != ExtentKind::Unallocated));

        let slice: Arc<dyn Layer> =
            Arc::new(SliceLayer::new("s", AddressSpace::GuestDisk, base, 0, 16).unwrap());
        assert_eq!(
            export(slice).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}

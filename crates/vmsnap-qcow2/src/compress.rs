//! Decompression of one compressed cluster, bounded to exactly one cluster of output,
//! with QEMU's acceptance rules (`qcow2_zlib_decompress`, `qcow2_zstd_decompress`).

use std::cell::RefCell;

use flate2::{Decompress, FlushDecompress, Status};
use vmsnap_core::{Error, Result};

use crate::raw;

thread_local! {
    // Decoder states are reused per thread: creating one allocates tens of KiB.
    static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
    static ZSTD: RefCell<Option<zstd::stream::raw::Decoder<'static>>> = const { RefCell::new(None) };
}

/// Where a compressed cluster's bytes are, from its L2 entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressed {
    /// Host offset of the first byte (not aligned).
    pub offset: u64,
    /// Bytes to read (whole sectors, minus the offset into the first).
    pub len: u64,
}

impl Compressed {
    /// Decodes a compressed L2 entry for `cluster_bits`.
    pub fn from_entry(entry: u64, cluster_bits: u32) -> Compressed {
        let shift = 62 - (cluster_bits - 8);
        let offset_mask = (1u64 << shift) - 1;
        let sectors_mask = (1u64 << (cluster_bits - 8)) - 1;
        let offset = entry & offset_mask;
        let nb = ((entry >> shift) & sectors_mask) + 1;
        let len = nb * raw::COMPRESSED_SECTOR - (offset & (raw::COMPRESSED_SECTOR - 1));
        Compressed { offset, len }
    }
}

/// Decompresses `input` into `out` (exactly one cluster). Anything but a full cluster is
/// an error; output never exceeds `out`.
pub fn decompress(kind: u8, input: &[u8], out: &mut [u8], at: u64) -> Result<()> {
    match kind {
        raw::COMPRESSION_ZLIB => inflate(input, out, at),
        raw::COMPRESSION_ZSTD => unzstd(input, out, at),
        t => Err(Error::unsupported(format!("compression type {t}")).at(at)),
    }
}

fn inflate(input: &[u8], out: &mut [u8], at: u64) -> Result<()> {
    INFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = slot.get_or_insert_with(|| Decompress::new(false));
        d.reset(false);
        let r = d.decompress(input, out, FlushDecompress::Finish);
        let produced = d.total_out();
        match r {
            // Z_BUF_ERROR is accepted once the cluster is full: the compressed length is
            // only known to the sector.
            Ok(Status::StreamEnd | Status::BufError | Status::Ok)
                if produced == out.len() as u64 =>
            {
                Ok(())
            }
            Ok(_) => Err(Error::malformed(
                at,
                format!(
                    "deflate data of compressed cluster yields {produced} bytes, not one \
                     cluster ({})",
                    out.len()
                ),
            )),
            Err(e) => Err(Error::malformed(
                at,
                format!("bad deflate data in compressed cluster: {e}"),
            )),
        }
    })
}

fn unzstd(input: &[u8], out: &mut [u8], at: u64) -> Result<()> {
    use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::stream::raw::Decoder::new().map_err(|e| {
                Error::new(vmsnap_core::ErrorKind::Io, "cannot create a zstd decoder")
                    .with_source(e)
            })?);
        }
        let Some(d) = slot.as_mut() else {
            return Err(Error::unsupported("zstd decoder unavailable"));
        };
        d.reinit()
            .map_err(|e| Error::malformed(at, format!("zstd: {e}")))?;
        let mut inb = InBuffer::around(input);
        let mut outb = OutBuffer::around(out);
        let total = outb.capacity();
        let mut hint = 1usize;
        while outb.pos() < total {
            let (last_in, last_out) = (inb.pos(), outb.pos());
            hint = d.run(&mut inb, &mut outb).map_err(|e| {
                Error::malformed(at, format!("bad zstd data in compressed cluster: {e}"))
            })?;
            if inb.pos() <= last_in && outb.pos() <= last_out {
                return Err(Error::malformed(
                    at,
                    format!(
                        "zstd data of compressed cluster ends after {} bytes, not one \
                         cluster ({total})",
                        outb.pos()
                    ),
                ));
            }
        }
        // A frame that is not finished here would decode to more than one cluster.
        if hint > 0 {
            return Err(Error::malformed(
                at,
                "zstd frame of compressed cluster is larger than one cluster",
            ));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_decoding_matches_the_reference_example() {
        let c = Compressed::from_entry(0x4240_0000_0005_0066, 16);
        assert_eq!(c.offset, 0x50066);
        assert_eq!(c.len, 5018);
    }

    #[test]
    fn deflate_and_zstd_round_trip_and_bound() {
        use std::io::Write;
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&data).unwrap();
        let mut z = e.finish().unwrap();
        z.extend_from_slice(&[0u8; 100]);
        let mut out = vec![0u8; 4096];
        decompress(0, &z, &mut out, 0).unwrap();
        assert_eq!(out, data);
        let mut small = vec![0u8; 1024];
        assert!(decompress(0, &z, &mut small, 0).is_ok()); // stops at one cluster
        let mut big = vec![0u8; 8192];
        assert!(decompress(0, &z, &mut big, 0).is_err()); // short output
        let zs = zstd::bulk::compress(&data, 3).unwrap();
        let mut out = vec![0u8; 4096];
        decompress(1, &zs, &mut out, 0).unwrap();
        assert_eq!(out, data);
        let mut small = vec![0u8; 1024];
        assert!(decompress(1, &zs, &mut small, 0).is_err()); // frame larger than cluster
        let mut big = vec![0u8; 8192];
        assert!(decompress(1, &zs, &mut big, 0).is_err());
        assert!(decompress(1, &[0u8; 64], &mut out, 0).is_err());
    }
}

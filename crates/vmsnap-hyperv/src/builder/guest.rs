//! A saved state (`.vmrs`) holding given guest-physical memory and VP registers: the
//! `RamMemoryBlock<d>` / `RamBlock<n>` / `partition_state` keys of reference §6 written
//! with the container writer, so any guest (an ELF core's `PT_LOAD` segments, a raw
//! dump, a few scattered pages) can become a Hyper-V sample.

use std::io;

use super::container::{build, Built, Opts, K, V};
use super::encode::{encode_block, memory_block, partition_state, PageMode, Vp};

/// Bytes of a guest page.
pub const PAGE: u64 = 4096;
/// Bytes of a `RamBlock<n>` data block (256 pages).
pub const DATA_BLOCK: u64 = 1 << 20;

/// How [`saved_state`] lays out the guest.
#[derive(Clone, Debug)]
pub struct GuestOpts {
    /// `/savedstate/VmVersion`, also written as `/configuration/properties/version`.
    pub vm_version: i64,
    /// `/savedstate/type` (Normal, Snapshot, Fast, FastWithHandleTransfer).
    pub state_type: String,
    /// `None` stores every data block raw (exactly 1 MiB, as openvmm's writer does);
    /// `Some(mode)` stores the page-record stream, falling back to raw for a block whose
    /// stream would not be shorter than 1 MiB.
    pub compress: Option<PageMode>,
    /// Leaves out data blocks whose bytes are all zero: they read as zeros and the
    /// reader reports their pages as declared without data.
    pub skip_zero_blocks: bool,
    /// Container layout options.
    pub container: Opts,
}

impl Default for GuestOpts {
    fn default() -> Self {
        GuestOpts {
            vm_version: 0xA00,
            state_type: "Normal".into(),
            compress: Some(PageMode::Auto),
            skip_zero_blocks: false,
            container: Opts::default(),
        }
    }
}

/// A saved state holding `ranges` of guest-physical memory, each `(gpa, bytes)`, and
/// the registers of `vps` (none: no `partition_state` key). See [`saved_state_from`].
///
/// # Panics
///
/// As [`saved_state_from`].
pub fn saved_state(ranges: &[(u64, &[u8])], vps: &[Vp], o: &GuestOpts) -> Built {
    let extents: Vec<(u64, u64)> = ranges.iter().map(|(g, b)| (*g, b.len() as u64)).collect();
    let read = |gpa: u64, buf: &mut [u8]| {
        let (start, bytes) = ranges
            .iter()
            .find(|(g, b)| *g <= gpa && gpa < g + b.len() as u64)
            .expect("the read lies in a range");
        let at = (gpa - start) as usize;
        buf.copy_from_slice(&bytes[at..at + buf.len()]);
        Ok(())
    };
    saved_state_from(&extents, read, vps, o).expect("reading from memory does not fail")
}

/// A saved state whose guest-physical memory is the `extents` (`(gpa, len)`, sorted,
/// not overlapping, `gpa` page-aligned), their bytes fetched by `read(gpa, buf)` one
/// data block (at most 1 MiB, never crossing an extent's end) at a time; plus the
/// registers of `vps` (`Vp::cr[2]` is CR3).
///
/// Each extent becomes one `RamMemoryBlock<d>` of `ceil(len / 4096)` pages starting at
/// the next whole data block (as openvmm's writer numbers them), so a partial last page
/// or block reads as zeros past `len`. The container is built in memory: the result
/// holds every data block stored (compressed ones are small).
///
/// # Errors
///
/// The first error `read` returns.
///
/// # Panics
///
/// If an extent is not page-aligned, is empty, or overlaps or precedes the one before.
pub fn saved_state_from<F>(
    extents: &[(u64, u64)],
    mut read: F,
    vps: &[Vp],
    o: &GuestOpts,
) -> io::Result<Built>
where
    F: FnMut(u64, &mut [u8]) -> io::Result<()>,
{
    let mut ss = vec![
        K::leaf("VmVersion", V::Int(o.vm_version)),
        K::leaf("type", V::Str(o.state_type.clone())),
    ];
    if !vps.is_empty() {
        ss.push(K::node(
            "savedVM",
            vec![K::leaf("partition_state", V::Arr(partition_state(vps)))],
        ));
    }
    let mut data = Vec::new();
    let mut next_block = 0u64;
    let mut end = 0u64;
    let mut buf = vec![0u8; DATA_BLOCK as usize];
    for (d, &(gpa, len)) in extents.iter().enumerate() {
        assert!(
            gpa % PAGE == 0,
            "extent {d} at {gpa:#x} is not page-aligned"
        );
        assert!(len > 0, "extent {d} is empty");
        assert!(
            gpa >= end,
            "extent {d} at {gpa:#x} overlaps or precedes the one before"
        );
        end = gpa + len;
        let pages = len.div_ceil(PAGE);
        ss.push(K::leaf(
            &format!("RamMemoryBlock{d}"),
            V::Arr(memory_block(pages, next_block * 256, gpa / PAGE)),
        ));
        let mut off = 0u64;
        while off < len {
            let n = (len - off).min(DATA_BLOCK) as usize;
            buf.fill(0);
            read(gpa + off, &mut buf[..n])?;
            if !(o.skip_zero_blocks && buf.iter().all(|&b| b == 0)) {
                let value = match o.compress {
                    Some(mode) => {
                        let s = encode_block(&buf, mode);
                        if (s.len() as u64) < DATA_BLOCK {
                            s
                        } else {
                            buf.clone()
                        }
                    }
                    None => buf.clone(),
                };
                data.push(K::leaf(&format!("RamBlock{next_block}"), V::Arr(value)).t(2));
            }
            next_block += 1;
            off += DATA_BLOCK;
        }
    }
    ss.extend(data);
    let tree = [
        K::node(
            "configuration",
            vec![K::node(
                "properties",
                vec![K::leaf("version", V::Int(o.vm_version))],
            )],
        ),
        K::node("savedstate", ss),
    ];
    Ok(build(&tree, &o.container))
}

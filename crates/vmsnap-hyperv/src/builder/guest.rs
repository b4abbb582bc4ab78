//! A saved state (`.vmrs`) holding given guest-physical memory and VP registers: the
//! `RamMemoryBlock<d>` / `RamBlock<n>` / `partition_state` keys of reference §6 written
//! with the container writer, so any guest (an ELF core's `PT_LOAD` segments, a raw
//! dump, a few scattered pages) can become a Hyper-V sample.

use std::collections::BTreeMap;
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
    let layout = Layout::new(extents);
    let mut data = Vec::new();
    let mut buf = vec![0u8; DATA_BLOCK as usize];
    for (&(gpa, len), &first) in extents.iter().zip(&layout.first_block) {
        let mut off = 0u64;
        while off < len {
            let n = (len - off).min(DATA_BLOCK) as usize;
            buf.fill(0);
            read(gpa + off, &mut buf[..n])?;
            if !(o.skip_zero_blocks && buf.iter().all(|&b| b == 0)) {
                data.push(data_block(first + off / DATA_BLOCK, &buf, o));
            }
            off += DATA_BLOCK;
        }
    }
    Ok(layout.build(data, vps, o))
}

/// A saved state declaring the `extents` (as [`saved_state_from`]) of which only the
/// `present` pieces (`(gpa, bytes)`, each inside one extent) have data: the data
/// blocks they touch are stored (the rest of such a block reads as zeros), every other
/// declared page has none. Costs memory for the present blocks only, so a guest
/// declaring terabytes in many blocks with a few pages written is cheap to make (the
/// scale benchmark's).
///
/// # Panics
///
/// As [`saved_state_from`], and if a present piece is not inside an extent.
pub fn sparse_saved_state(
    extents: &[(u64, u64)],
    present: &[(u64, &[u8])],
    vps: &[Vp],
    o: &GuestOpts,
) -> Built {
    let layout = Layout::new(extents);
    let mut blocks: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for &(gpa, bytes) in present {
        let e = extents
            .iter()
            .rposition(|&(g, _)| g <= gpa)
            .expect("a present piece lies in an extent");
        let (start, len) = extents[e];
        assert!(
            gpa + bytes.len() as u64 <= start + len,
            "the piece at {gpa:#x} ends past its extent"
        );
        let mut done = 0usize;
        while done < bytes.len() {
            let rel = gpa + done as u64 - start;
            let at = (rel % DATA_BLOCK) as usize;
            let n = (bytes.len() - done).min(DATA_BLOCK as usize - at);
            let block = blocks
                .entry(layout.first_block[e] + rel / DATA_BLOCK)
                .or_insert_with(|| vec![0u8; DATA_BLOCK as usize]);
            block[at..at + n].copy_from_slice(&bytes[done..done + n]);
            done += n;
        }
    }
    let data = blocks.iter().map(|(&n, b)| data_block(n, b, o)).collect();
    layout.build(data, vps, o)
}

/// The `RamBlock<n>` key holding a 1 MiB block, stored as `o` asks.
fn data_block(n: u64, block: &[u8], o: &GuestOpts) -> K {
    let value = match o.compress {
        Some(mode) => {
            let s = encode_block(block, mode);
            if (s.len() as u64) < DATA_BLOCK {
                s
            } else {
                block.to_vec()
            }
        }
        None => block.to_vec(),
    };
    K::leaf(&format!("RamBlock{n}"), V::Arr(value)).t(2)
}

/// The metadata keys of a set of extents and the first data block of each.
struct Layout {
    meta: Vec<K>,
    first_block: Vec<u64>,
}

impl Layout {
    fn new(extents: &[(u64, u64)]) -> Layout {
        let mut meta = Vec::with_capacity(extents.len());
        let mut first_block = Vec::with_capacity(extents.len());
        let mut next_block = 0u64;
        let mut end = 0u64;
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
            meta.push(K::leaf(
                &format!("RamMemoryBlock{d}"),
                V::Arr(memory_block(pages, next_block * 256, gpa / PAGE)),
            ));
            first_block.push(next_block);
            next_block += len.div_ceil(DATA_BLOCK);
        }
        Layout { meta, first_block }
    }

    /// The saved state: version and type, `partition_state` (if any VP), the metadata,
    /// then the data blocks in key table 2.
    fn build(self, data: Vec<K>, vps: &[Vp], o: &GuestOpts) -> Built {
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
        ss.extend(self.meta);
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
        build(&tree, &o.container)
    }
}

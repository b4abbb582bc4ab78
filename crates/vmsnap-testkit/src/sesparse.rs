//! A VMDK seSparse extent of 62 TiB (the format's largest) and its descriptor, crafted
//! because qemu-img cannot create seSparse: what the memory-cap tests
//! (`crates/vmsnap-cli/tests/scale.rs`) and `cargo xtask bench-scale` open. The layout is
//! restated from VMware's seSparse header (as QEMU's `block/vmdk.c` reads it), not from
//! vmsnap's reader. The file is a few KiB on disk: the 31 MiB grain directory is a hole.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The virtual size: 62 TiB.
pub const CAPACITY: u64 = 62 << 40;

/// The grain size (4 KiB, fixed by the format).
pub const GRAIN: u64 = 4096;

/// Virtual bytes one grain table maps (4096 grains of 4 KiB).
pub const TABLE_SPAN: u64 = 4096 * GRAIN;

/// Grain tables (and grains) a `written` image holds.
pub const TABLES: u64 = 4;

/// The grains a `written` image holds: (virtual offset, byte every one of its 4096 bytes
/// holds). Grain 0 of grain-directory entries spread from the first to the last.
pub fn written_grains() -> Vec<(u64, u8)> {
    let gd_entries = CAPACITY.div_ceil(TABLE_SPAN);
    (0..TABLES)
        .map(|t| {
            let e = t * (gd_entries - 1) / (TABLES - 1);
            (e * TABLE_SPAN, 0x40 + t as u8)
        })
        .collect()
}

/// Writes `NAME-sesparse.vmdk` (the extent) and `NAME.vmdk` (its descriptor) in `dir`,
/// where NAME is `se-w` when `written` (`written_grains` present, one per grain table)
/// or `se-e` (no grain table); returns the descriptor's path.
pub fn write_sesparse(dir: &Path, written: bool) -> std::io::Result<PathBuf> {
    const S: u64 = 512;
    let sectors = CAPACITY / S;
    let gd_entries = CAPACITY.div_ceil(TABLE_SPAN);
    let gd_sectors = (gd_entries * 8).div_ceil(S);
    let gt_base = 2 + gd_sectors; // sector of the first grain table
    let grains_base = gt_base + TABLES * 64;
    let name = if written { "se-w" } else { "se-e" };
    let extent = dir.join(format!("{name}-sesparse.vmdk"));
    let mut f = File::create(&extent)?;
    let h: [u64; 26] = [
        0xCAFE_BABE,
        0x2_0000_0001,
        sectors,
        GRAIN / S,
        64,
        0,
        0,
        0,
        0,
        0,
        1,
        1, // volatile header
        0,
        0,
        0,
        0, // journal header, journal
        2,
        gd_sectors, // grain directory
        gt_base,
        TABLES * 64, // grain tables
        0,
        0,
        0,
        0, // free bitmap, backmap
        grains_base,
        TABLES * (GRAIN / S), // grains
    ];
    let bytes: Vec<u8> = h.iter().flat_map(|v| v.to_le_bytes()).collect();
    f.write_all(&bytes)?;
    f.seek(SeekFrom::Start(S))?;
    f.write_all(&0xCAFE_CAFEu64.to_le_bytes())?;
    if written {
        for (t, (at, fill)) in (0u64..).zip(written_grains()) {
            // Table t maps grain 0 of GD entry e to cluster t.
            let e = at / TABLE_SPAN;
            f.seek(SeekFrom::Start(2 * S + e * 8))?;
            f.write_all(&(0x1000_0000_0000_0000u64 | t).to_le_bytes())?;
            f.seek(SeekFrom::Start((gt_base + t * 64) * S))?;
            let entry = (3u64 << 60) | ((t & 0xfff) << 48) | (t >> 12);
            f.write_all(&entry.to_le_bytes())?;
            f.seek(SeekFrom::Start((grains_base + t * (GRAIN / S)) * S))?;
            f.write_all(&[fill; GRAIN as usize])?;
        }
    }
    f.set_len((grains_base + TABLES * (GRAIN / S)) * S)?;
    let desc = dir.join(format!("{name}.vmdk"));
    std::fs::write(
        &desc,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"seSparse\"\nRW {sectors} SESPARSE \"{name}-sesparse.vmdk\"\n"
        ),
    )?;
    Ok(desc)
}

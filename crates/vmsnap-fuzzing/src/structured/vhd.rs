//! VHD, structure-aware: a dynamic or differencing VHD (footer copy, dynamic header, BAT,
//! per-block sector bitmaps, parent locators, all checksums) built by the independent
//! writer of `vmsnap-vhd`'s tests from the description, then patched.

use arbitrary::Arbitrary;

use super::{apply, description, Patch};
use crate::vhd_common::{fix_dyn, fix_footer, Spec, SECTOR};

#[derive(Arbitrary, Debug)]
struct Block {
    index: u8,
    fill: u8,
    present: Option<Vec<bool>>,
}

#[derive(Arbitrary, Debug)]
struct Desc {
    size: u32,
    block_shift: u8,
    differencing: Option<([u8; 16], String)>,
    locators: Vec<([u8; 4], Vec<u8>)>,
    blocks: Vec<Block>,
    extra_entries: Option<u8>,
    chs: (u16, u8, u8),
    patches: Vec<Patch>,
    keep_bad_checksums: bool,
}

fn build(d: &Desc) -> Vec<u8> {
    // 4 KiB to 2 MiB blocks.
    let block_size = 4096u32 << (d.block_shift % 10);
    let size = (u64::from(d.size) % (8 << 20)).div_ceil(SECTOR as u64) * SECTOR as u64;
    let mut spec = Spec::dynamic(size.max(SECTOR as u64), block_size);
    spec.chs = d.chs;
    if let Some((uuid, name)) = &d.differencing {
        let name: String = name.chars().take(60).collect();
        spec = spec.differencing(*uuid, &name);
    }
    spec.locators.extend(
        d.locators
            .iter()
            .take(8usize.saturating_sub(spec.locators.len()))
            .map(|(code, data)| (*code, data.iter().copied().take(1024).collect())),
    );
    let natural = spec.entries();
    if let Some(extra) = d.extra_entries {
        spec.max_table_entries = Some(natural + u32::from(extra));
    }
    let entries = spec.entries();
    let sectors = block_size as usize / SECTOR;
    let mut seen = std::collections::BTreeSet::new();
    for b in d.blocks.iter().take(4) {
        let index = u32::from(b.index) % entries.max(1);
        if entries == 0 || !seen.insert(index) {
            continue;
        }
        let present = b.present.clone().map(|mut p| {
            p.resize(sectors, b.fill & 1 == 1);
            p
        });
        spec = spec.block(index, vec![b.fill; block_size as usize], present);
    }
    let mut f = spec.build();
    let len = f.len();
    let regions = [
        (0, SECTOR),                    // footer copy
        (SECTOR, 2 * SECTOR),           // dynamic header
        (3 * SECTOR, len - 4 * SECTOR), // BAT, locators, blocks
        (len - SECTOR, SECTOR),         // footer
    ];
    apply(&mut f, &regions, &d.patches);
    if !d.keep_bad_checksums {
        fix_footer(&mut f, 0);
        fix_footer(&mut f, len - SECTOR);
        fix_dyn(&mut f);
    }
    f
}

/// The `vhd` target: a built file (structured mode) or the input itself.
pub fn run(data: &[u8]) {
    match description::<Desc>(data) {
        Some(d) => crate::open_and_exercise(&vmsnap_vhd::PLUGIN, &build(&d)),
        None => crate::open_and_exercise(&vmsnap_vhd::PLUGIN, data),
    }
}

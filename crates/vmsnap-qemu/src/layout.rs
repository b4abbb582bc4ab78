//! Where the RAM blocks appear in guest-physical memory, by machine type and size (QEMU's
//! `pc_piix.c` / `pc_q35.c` rules), with the PAM registers of the host bridge deciding
//! whether 0xc0000–0xfffff shows RAM or ROM.

use serde_json::{json, Value};
use vmsnap_core::{Error, Result};

use crate::stream::Block;

/// 4 GiB.
pub const FOUR_G: u64 = 1 << 32;
const ISA_BIOS_MAX: u64 = 128 * 1024;

/// One block range placed at a guest-physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Block index.
    pub block: usize,
    /// Offset in the block.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
    /// Guest-physical address.
    pub gpa: u64,
}

/// The placement and the rule that produced it.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Windows in push order (later ones win where they overlap).
    pub windows: Vec<Window>,
    /// Size of the guest-physical space.
    pub size: u64,
    /// What was decided, for describe().
    pub rule: Value,
}

fn main_block(blocks: &[Block]) -> Option<usize> {
    if let Some(i) = blocks.iter().position(|b| b.name == "pc.ram") {
        return Some(i);
    }
    blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            let n = b.name.as_str();
            !n.starts_with("/rom@")
                && !n.ends_with(".rom")
                && !n.ends_with(".bios")
                && !n.contains("vram")
        })
        .max_by_key(|(_, b)| b.size)
        .map(|(i, _)| i)
}

/// Decides the layout. `pam` is the 7 PAM register bytes when the host bridge state was
/// found; `below_4g` the user's override.
pub fn layout(
    machine: Option<&str>,
    blocks: &[Block],
    pam: Option<[u8; 7]>,
    below_4g: Option<u64>,
) -> Result<Layout> {
    let m = machine.unwrap_or("");
    let family = if m.contains("q35") {
        "q35"
    } else if m == "pc" || m.starts_with("pc-") || m.contains("i440fx") {
        "pc"
    } else if m.starts_with("microvm") {
        "microvm"
    } else {
        "flat"
    };
    let mut windows = Vec::new();
    let Some(main) = main_block(blocks) else {
        return Ok(Layout {
            windows,
            size: 0,
            rule: json!({"family": family, "rule": "no main RAM block"}),
        });
    };
    let ram = blocks.get(main).map_or(0, |b| b.size);
    let (lowmem, why) = match (below_4g, family) {
        (Some(v), _) => (v, "option qemu.ram-below-4g".to_string()),
        (None, "pc") if ram >= 0xe000_0000 => (
            0xc000_0000,
            "pc (i440fx): RAM >= 3.5 GiB, so 3 GiB below 4 GiB (gigabyte_align)".to_string(),
        ),
        (None, "pc") => (
            0xe000_0000,
            "pc (i440fx): RAM < 3.5 GiB all below 4 GiB".to_string(),
        ),
        (None, "q35") if ram >= 0xb000_0000 => (
            0x8000_0000,
            "q35: RAM >= 2.75 GiB, so 2 GiB below 4 GiB".to_string(),
        ),
        (None, "q35") => (
            0xb000_0000,
            "q35: RAM < 2.75 GiB all below 4 GiB".to_string(),
        ),
        (None, "microvm") => (0xc000_0000, "microvm: up to 3 GiB below 4 GiB".to_string()),
        (None, _) => (
            u64::MAX,
            format!("unknown machine type {m:?}: main RAM placed flat at 0"),
        ),
    };
    if lowmem > FOUR_G && lowmem != u64::MAX {
        return Err(Error::new(
            vmsnap_core::ErrorKind::InvalidArgument,
            format!("qemu.ram-below-4g of {lowmem:#x} is above 4 GiB"),
        ));
    }
    let below = ram.min(lowmem);
    let above = ram - below;
    windows.push(Window {
        block: main,
        offset: 0,
        len: below,
        gpa: 0,
    });
    if above > 0 {
        windows.push(Window {
            block: main,
            offset: below,
            len: above,
            gpa: FOUR_G,
        });
    }
    let mut size = if above > 0 { FOUR_G + above } else { below };
    let mut roms = Vec::new();
    let mut pam_json = Value::Null;
    if family == "pc" || family == "q35" {
        let bios = blocks.iter().position(|b| b.name == "pc.bios");
        let rom = blocks.iter().position(|b| b.name == "pc.rom");
        if let Some(bi) = bios {
            let s = blocks.get(bi).map_or(0, |b| b.size);
            if s > 0 && s <= 16 << 20 {
                windows.push(Window {
                    block: bi,
                    offset: 0,
                    len: s,
                    gpa: FOUR_G - s,
                });
                size = size.max(FOUR_G);
                roms.push(json!({"block": "pc.bios", "gpa": FOUR_G - s, "size": s}));
            }
        }
        // PAM: 13 segments; attribute bit 0 (read enable) means RAM, otherwise the ROM
        // behind it (pc.rom at 0xc0000, the isa-bios alias of pc.bios at 0xe0000).
        let attrs: Option<Vec<u8>> = pam.map(|p| {
            (0..13usize)
                .map(|i| {
                    let v = p.get(i.div_ceil(2)).copied().unwrap_or(0);
                    (v >> (if i & 1 == 0 { 4 } else { 0 })) & 3
                })
                .collect()
        });
        if let Some(attrs) = &attrs {
            pam_json = json!(attrs);
            let mut segs: Vec<(u64, u64, u8)> =
                vec![(0xf0000, 0x10000, attrs.first().copied().unwrap_or(0))];
            for i in 1..13u64 {
                segs.push((
                    0xc0000 + (i - 1) * 0x4000,
                    0x4000,
                    attrs.get(i as usize).copied().unwrap_or(0),
                ));
            }
            for (start, len, attr) in segs {
                if attr & 1 != 0 {
                    continue;
                }
                if start < 0xe0000 {
                    if let Some(ri) = rom {
                        let rs = blocks.get(ri).map_or(0, |b| b.size);
                        let off = start - 0xc0000;
                        if off + len <= rs {
                            windows.push(Window {
                                block: ri,
                                offset: off,
                                len,
                                gpa: start,
                            });
                        }
                    }
                } else if let Some(bi) = bios {
                    let s = blocks.get(bi).map_or(0, |b| b.size);
                    let isa = s.min(ISA_BIOS_MAX);
                    let isa_base = 0x100000 - isa;
                    if start >= isa_base {
                        let off = s - isa + (start - isa_base);
                        windows.push(Window {
                            block: bi,
                            offset: off,
                            len,
                            gpa: start,
                        });
                    }
                }
            }
        }
    }
    let main_name = blocks.get(main).map(|b| b.name.clone()).unwrap_or_default();
    let rule = json!({
        "family": family,
        "rule": why,
        "main_block": main_name,
        "ram_below_4g": below,
        "ram_above_4g": above,
        "roms": roms,
        "pam": if pam_json.is_null() { json!("unknown (no host bridge state): 0xc0000-0xfffff read as RAM") } else { pam_json },
    });
    Ok(Layout {
        windows,
        size,
        rule,
    })
}

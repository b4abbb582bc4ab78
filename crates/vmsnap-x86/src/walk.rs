//! The page walk: one linear address through the tables of a mode, step by step.

use serde::Serialize;
use vmsnap_core::Layer;

use crate::mode::Mode;

/// Present.
const P: u64 = 1;
/// Writable.
const RW: u64 = 1 << 1;
/// User-accessible.
const US: u64 = 1 << 2;
/// Page size (large page) in a directory entry.
const PS: u64 = 1 << 7;
/// No-execute (8-byte entries, when EFER.NXE is set).
const NX: u64 = 1 << 63;
/// Physical address bits 51:12 of an 8-byte entry.
const ADDR64: u64 = 0x000F_FFFF_FFFF_F000;

/// Permissions of a mapping, combined over every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Flags {
    /// Writable at every level.
    pub writable: bool,
    /// User-accessible at every level.
    pub user: bool,
    /// Not executable (NX at some level, with EFER.NXE).
    pub nx: bool,
}

/// One level of a mode's table structure.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    /// Name of the entry at this level (PML4E, PDPTE, PDE, PTE …).
    pub name: &'static str,
    /// Lowest linear-address bit the index covers.
    pub shift: u32,
    /// Index width in bits.
    pub bits: u32,
    /// Whether PS makes a large page here.
    pub large: bool,
}

const fn lv(name: &'static str, shift: u32, bits: u32, large: bool) -> Level {
    Level {
        name,
        shift,
        bits,
        large,
    }
}

/// The levels of `mode`, top first.
pub fn levels(mode: Mode) -> &'static [Level] {
    const B32: [Level; 2] = [lv("PDE", 22, 10, true), lv("PTE", 12, 10, false)];
    const B32_NOPSE: [Level; 2] = [lv("PDE", 22, 10, false), lv("PTE", 12, 10, false)];
    const PAE: [Level; 3] = [
        lv("PDPTE", 30, 2, false),
        lv("PDE", 21, 9, true),
        lv("PTE", 12, 9, false),
    ];
    const L4: [Level; 4] = [
        lv("PML4E", 39, 9, false),
        lv("PDPTE", 30, 9, true),
        lv("PDE", 21, 9, true),
        lv("PTE", 12, 9, false),
    ];
    const L5: [Level; 5] = [
        lv("PML5E", 48, 9, false),
        lv("PML4E", 39, 9, false),
        lv("PDPTE", 30, 9, true),
        lv("PDE", 21, 9, true),
        lv("PTE", 12, 9, false),
    ];
    match mode {
        Mode::Bits32 { pse: true } => &B32,
        Mode::Bits32 { pse: false } => &B32_NOPSE,
        Mode::Pae => &PAE,
        Mode::Level4 => &L4,
        Mode::Level5 => &L5,
    }
}

/// One entry read during a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Entry name (PML4E …).
    pub level: &'static str,
    /// Index in its table.
    pub index: u64,
    /// Physical address of the entry.
    #[serde(serialize_with = "vmsnap_core::hex::serialize")]
    pub entry_address: u64,
    /// Its value.
    #[serde(serialize_with = "vmsnap_core::hex::serialize")]
    pub value: u64,
}

/// What a walk found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Walk {
    /// The address is mapped.
    Mapped {
        /// Physical address of the byte.
        #[serde(serialize_with = "vmsnap_core::hex::serialize")]
        physical: u64,
        /// Physical address of the page.
        #[serde(serialize_with = "vmsnap_core::hex::serialize")]
        page_base: u64,
        /// Page size in bytes.
        page_size: u64,
        /// Permissions.
        flags: Flags,
        /// The entries read.
        steps: Vec<Step>,
    },
    /// It is not.
    NotMapped {
        /// The entry name where the walk stopped.
        level: &'static str,
        /// Why.
        reason: &'static str,
        /// The entries read.
        steps: Vec<Step>,
    },
}

/// What an entry at a level means.
#[derive(Debug)]
#[non_exhaustive]
pub enum Entry {
    /// Not present, reserved bits set, or beyond the physical layer.
    Invalid(&'static str),
    /// Points at the next table.
    Table(u64),
    /// Maps a page at this physical base.
    Page(u64),
}

/// Walks tables of one mode and root over a physical layer.
#[derive(Debug, Clone, Copy)]
pub struct Walker<'a> {
    /// The physical layer.
    pub lower: &'a dyn Layer,
    /// The mode.
    pub mode: Mode,
    /// The root table's physical address.
    pub root: u64,
    /// Whether NX bits count (EFER.NXE).
    pub nxe: bool,
}

impl Walker<'_> {
    /// Bytes per entry.
    pub fn entry_size(&self) -> u64 {
        match self.mode {
            Mode::Bits32 { .. } => 4,
            _ => 8,
        }
    }

    /// Reads the entry at `addr`, or `None` when it lies outside the physical layer.
    pub fn read_entry(&self, addr: u64) -> Option<u64> {
        if self.entry_size() == 4 {
            let mut b = [0u8; 4];
            self.lower.read_at(addr, &mut b).ok()?;
            Some(u64::from(u32::from_le_bytes(b)))
        } else {
            let mut b = [0u8; 8];
            self.lower.read_at(addr, &mut b).ok()?;
            Some(u64::from_le_bytes(b))
        }
    }

    /// Decodes `value` found at level `lv` (`last` = the final level).
    pub fn decode(&self, lv: &Level, last: bool, value: u64) -> Entry {
        if value & P == 0 {
            return Entry::Invalid("not present");
        }
        let wide = self.entry_size() == 8;
        let page_size = 1u64 << lv.shift;
        let large = !last && value & PS != 0;
        let base = if last {
            if wide {
                value & ADDR64
            } else {
                value & 0xFFFF_F000
            }
        } else if large {
            if !lv.large {
                return Entry::Invalid("page-size bit set where large pages are reserved");
            }
            if wide {
                // Bits 12 (PAT) .. shift-1 must be zero apart from PAT.
                let reserved = (page_size - 1) & !0x1FFF;
                if value & reserved & ADDR64 != 0 {
                    return Entry::Invalid("reserved bits set in a large-page entry");
                }
                value & ADDR64 & !(page_size - 1)
            } else {
                // 4 MiB page with PSE-36: bits 20:13 are physical bits 39:32; bit 21 reserved.
                if value & (1 << 21) != 0 {
                    return Entry::Invalid("reserved bit 21 set in a 4 MiB page entry");
                }
                (value & 0xFFC0_0000) | (((value >> 13) & 0xFF) << 32)
            }
        } else if wide {
            value & ADDR64
        } else {
            value & 0xFFFF_F000
        };
        if last || large {
            match base.checked_add(page_size) {
                Some(end) if end <= self.lower.len() => Entry::Page(base),
                _ => Entry::Invalid("maps a page beyond the physical layer"),
            }
        } else {
            // A table must lie inside the physical layer.
            match base.checked_add(4096) {
                Some(end) if end <= self.lower.len() => Entry::Table(base),
                _ => Entry::Invalid("points to a table beyond the physical layer"),
            }
        }
    }

    /// Combines `value`'s permission bits into `flags`.
    pub fn accumulate(&self, flags: &mut Flags, lv: &Level, value: u64) {
        // PAE PDPTEs have no RW/US bits.
        if self.mode == Mode::Pae && lv.name == "PDPTE" {
            return;
        }
        flags.writable &= value & RW != 0;
        flags.user &= value & US != 0;
        if self.nxe && self.entry_size() == 8 {
            flags.nx |= value & NX != 0;
        }
    }

    /// The address of the entry for `offset` in the table at `table` of level `lv`.
    pub fn entry_address(&self, lv: &Level, table: u64, offset: u64) -> (u64, u64) {
        let index = (offset >> lv.shift) & ((1u64 << lv.bits) - 1);
        (index, table.saturating_add(index * self.entry_size()))
    }

    /// Walks `offset` (a layer offset, see [`crate::mode::offset_of_address`]).
    pub fn walk(&self, offset: u64, record: bool) -> Walk {
        let lvls = levels(self.mode);
        let mut table = self.root;
        let mut flags = Flags {
            writable: true,
            user: true,
            nx: false,
        };
        let mut steps = Vec::new();
        for (i, lv) in lvls.iter().enumerate() {
            let last = i + 1 == lvls.len();
            let (index, addr) = self.entry_address(lv, table, offset);
            let Some(value) = self.read_entry(addr) else {
                return Walk::NotMapped {
                    level: lv.name,
                    reason: "entry lies beyond the physical layer",
                    steps,
                };
            };
            if record {
                steps.push(Step {
                    level: lv.name,
                    index,
                    entry_address: addr,
                    value,
                });
            }
            match self.decode(lv, last, value) {
                Entry::Invalid(reason) => {
                    return Walk::NotMapped {
                        level: lv.name,
                        reason,
                        steps,
                    }
                }
                Entry::Table(next) => {
                    self.accumulate(&mut flags, lv, value);
                    table = next;
                }
                Entry::Page(base) => {
                    self.accumulate(&mut flags, lv, value);
                    let page_size = 1u64 << lv.shift;
                    return Walk::Mapped {
                        physical: base + (offset & (page_size - 1)),
                        page_base: base,
                        page_size,
                        flags,
                        steps,
                    };
                }
            }
        }
        Walk::NotMapped {
            level: "PTE",
            reason: "no page at the last level",
            steps,
        }
    }
}

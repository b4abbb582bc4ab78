//! The paging mode, from CR0, CR4 and EFER as a snapshot recorded them.

use serde::Serialize;
use vmsnap_core::CpuState;

/// CR0.PG: paging enabled.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PSE: 4 MiB pages in 32-bit paging.
pub const CR4_PSE: u64 = 1 << 4;
/// CR4.PAE: 64-bit entries.
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.LA57: 5-level paging.
pub const CR4_LA57: u64 = 1 << 12;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// EFER.NXE: the no-execute bit is honoured.
pub const EFER_NXE: u64 = 1 << 11;

/// How linear addresses are translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// 32-bit paging (two levels, 4-byte entries), 4 MiB pages when CR4.PSE is set.
    Bits32 {
        /// CR4.PSE.
        pse: bool,
    },
    /// PAE (three levels, 8-byte entries, 32-bit linear addresses).
    Pae,
    /// IA-32e 4-level paging (48-bit linear addresses).
    Level4,
    /// IA-32e 5-level paging (57-bit linear addresses).
    Level5,
}

impl Mode {
    /// The mode the registers select, or `None` when paging is off.
    pub fn from_registers(cr0: u64, cr4: u64, efer: u64) -> Option<Mode> {
        if cr0 & CR0_PG == 0 {
            return None;
        }
        Some(if cr4 & CR4_PAE == 0 {
            Mode::Bits32 {
                pse: cr4 & CR4_PSE != 0,
            }
        } else if efer & EFER_LMA == 0 {
            Mode::Pae
        } else if cr4 & CR4_LA57 != 0 {
            Mode::Level5
        } else {
            Mode::Level4
        })
    }

    /// The mode of a recorded vCPU. Some formats do not record EFER (VMware checkpoints
    /// have no tag for it): with EFER 0, PAE on and RIP above 4 GiB the vCPU can only be in
    /// long mode, so LMA is taken as set.
    pub fn of(cpu: &CpuState) -> Option<Mode> {
        Mode::from_registers(cpu.cr0, cpu.cr4, cpu.effective_efer())
    }

    /// Bits of linear address.
    pub fn linear_bits(self) -> u32 {
        match self {
            Mode::Bits32 { .. } | Mode::Pae => 32,
            Mode::Level4 => 48,
            Mode::Level5 => 57,
        }
    }

    /// Size of the virtual address space the layer presents.
    pub fn space_size(self) -> u64 {
        1u64 << self.linear_bits()
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Bits32 { pse: false } => "32-bit",
            Mode::Bits32 { pse: true } => "32-bit+pse",
            Mode::Pae => "pae",
            Mode::Level4 => "4-level",
            Mode::Level5 => "5-level",
        }
    }

    /// The name as JSON spells enum values (snake_case, `docs/json.md`): `level_4`.
    pub fn id(self) -> &'static str {
        match self {
            Mode::Bits32 { pse: false } => "bits_32",
            Mode::Bits32 { pse: true } => "bits_32_pse",
            Mode::Pae => "pae",
            Mode::Level4 => "level_4",
            Mode::Level5 => "level_5",
        }
    }

    /// The page-table root from CR3 (bits the mode ignores cleared).
    pub fn root_of(self, cr3: u64) -> u64 {
        match self {
            Mode::Bits32 { .. } => cr3 & 0xFFFF_F000,
            Mode::Pae => cr3 & 0xFFFF_FFE0,
            Mode::Level4 | Mode::Level5 => cr3 & 0x000F_FFFF_FFFF_F000,
        }
    }
}

/// Turns a canonical linear address into a layer offset (dropping the sign extension), or
/// `None` when it is not canonical for `mode`.
pub fn offset_of_address(mode: Mode, addr: u64) -> Option<u64> {
    let bits = mode.linear_bits();
    if bits == 32 {
        return (addr < 1 << 32).then_some(addr);
    }
    let low = addr & ((1u64 << bits) - 1);
    let sign = (addr >> (bits - 1)) & 1;
    let upper = addr >> bits;
    let want = if sign == 1 { u64::MAX >> bits } else { 0 };
    (upper == want).then_some(low)
}

/// The canonical linear address of a layer offset.
pub fn address_of_offset(mode: Mode, offset: u64) -> u64 {
    let bits = mode.linear_bits();
    if bits == 32 || (offset >> (bits - 1)) & 1 == 0 {
        offset
    } else {
        offset | !((1u64 << bits) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_follows_the_registers() {
        assert_eq!(Mode::from_registers(0x11, 0, 0), None);
        assert_eq!(
            Mode::from_registers(CR0_PG, 0, 0),
            Some(Mode::Bits32 { pse: false })
        );
        assert_eq!(
            Mode::from_registers(CR0_PG, CR4_PSE, 0),
            Some(Mode::Bits32 { pse: true })
        );
        assert_eq!(Mode::from_registers(CR0_PG, CR4_PAE, 0), Some(Mode::Pae));
        assert_eq!(
            Mode::from_registers(CR0_PG, CR4_PAE, EFER_LMA),
            Some(Mode::Level4)
        );
        assert_eq!(
            Mode::from_registers(CR0_PG, CR4_PAE | CR4_LA57, EFER_LMA),
            Some(Mode::Level5)
        );
    }

    #[test]
    fn missing_efer_is_inferred_from_a_64_bit_rip() {
        let mut cpu = CpuState {
            cr0: CR0_PG,
            cr4: CR4_PAE,
            ..Default::default()
        };
        assert_eq!(Mode::of(&cpu), Some(Mode::Pae));
        cpu.regs.insert("rip".into(), 0xffff_ffff_8100_0000);
        assert_eq!(Mode::of(&cpu), Some(Mode::Level4));
    }

    #[test]
    fn canonical_addresses_map_to_offsets_and_back() {
        let m = Mode::Level4;
        assert_eq!(
            offset_of_address(m, 0xffff_ffff_8100_0000),
            Some(0xffff_8100_0000)
        );
        assert_eq!(
            address_of_offset(m, 0xffff_8100_0000),
            0xffff_ffff_8100_0000
        );
        assert_eq!(
            offset_of_address(m, 0x0000_7fff_ffff_f000),
            Some(0x7fff_ffff_f000)
        );
        assert_eq!(offset_of_address(m, 0x0000_8000_0000_0000), None);
        assert_eq!(offset_of_address(m, 0xfff0_0000_0000_0000), None);
        assert_eq!(
            offset_of_address(Mode::Level5, 0xff00_0000_0000_0000),
            Some(1 << 56)
        );
        assert_eq!(offset_of_address(Mode::Pae, 1 << 32), None);
    }
}

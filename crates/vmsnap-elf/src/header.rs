//! The ELF file header and program headers, for both classes and byte orders.

use vmsnap_core::{Bytes, Error, Result};

use crate::raw::*;

/// 32- or 64-bit ELF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Class {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

impl Class {
    /// `elf32` / `elf64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Elf32 => "elf32",
            Class::Elf64 => "elf64",
        }
    }
}

/// Reads fields in the file's byte order.
#[derive(Debug, Clone, Copy)]
pub struct Endian {
    /// Big-endian (ELFDATA2MSB).
    pub big: bool,
}

impl Endian {
    /// A `u16`.
    pub fn u16(self, b: &Bytes<'_>, off: usize) -> Result<u16> {
        if self.big {
            b.u16_be(off)
        } else {
            b.u16_le(off)
        }
    }
    /// A `u32`.
    pub fn u32(self, b: &Bytes<'_>, off: usize) -> Result<u32> {
        if self.big {
            b.u32_be(off)
        } else {
            b.u32_le(off)
        }
    }
    /// A `u64`.
    pub fn u64(self, b: &Bytes<'_>, off: usize) -> Result<u64> {
        if self.big {
            b.u64_be(off)
        } else {
            b.u64_le(off)
        }
    }
    /// A word of the class's size, widened.
    pub fn word(self, class: Class, b: &Bytes<'_>, off: usize) -> Result<u64> {
        match class {
            Class::Elf32 => self.u32(b, off).map(u64::from),
            Class::Elf64 => self.u64(b, off),
        }
    }
}

/// The fields of the ELF header this reader uses.
#[derive(Debug, Clone, Copy)]
pub struct ElfHeader {
    /// 32 or 64 bit.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// `e_type`.
    pub e_type: u16,
    /// `e_machine`.
    pub machine: u16,
    /// `e_version`.
    pub version: u32,
    /// `e_phoff`.
    pub phoff: u64,
    /// `e_shoff`.
    pub shoff: u64,
    /// `e_phentsize`.
    pub phentsize: u16,
    /// `e_phnum` as written (may be `PN_XNUM`).
    pub phnum_raw: u16,
    /// `e_shentsize`.
    pub shentsize: u16,
    /// `e_shnum`.
    pub shnum: u16,
    /// `e_shstrndx`: the section holding the section names.
    pub shstrndx: u16,
}

impl ElfHeader {
    /// Parses the identification and header from the first bytes of the file.
    pub fn parse(head: &[u8]) -> Result<Self> {
        let b = Bytes::new(head, 0);
        if b.array::<4>(0)? != ELF_MAGIC {
            return Err(Error::malformed(0, "no ELF magic"));
        }
        let class = match b.u8(4)? {
            ELFCLASS32 => Class::Elf32,
            ELFCLASS64 => Class::Elf64,
            c => return Err(Error::malformed(4, format!("unknown ELF class {c}"))),
        };
        let endian = match b.u8(5)? {
            ELFDATA2LSB => Endian { big: false },
            ELFDATA2MSB => Endian { big: true },
            d => {
                return Err(Error::malformed(
                    5,
                    format!("unknown ELF data encoding {d}"),
                ))
            }
        };
        let e = endian;
        let h = match class {
            Class::Elf64 => {
                let b = b.sub(0, EHDR64_SIZE)?;
                ElfHeader {
                    class,
                    endian,
                    e_type: e.u16(&b, 16)?,
                    machine: e.u16(&b, 18)?,
                    version: e.u32(&b, 20)?,
                    phoff: e.u64(&b, 32)?,
                    shoff: e.u64(&b, 40)?,
                    phentsize: e.u16(&b, 54)?,
                    phnum_raw: e.u16(&b, 56)?,
                    shentsize: e.u16(&b, 58)?,
                    shnum: e.u16(&b, 60)?,
                    shstrndx: e.u16(&b, 62)?,
                }
            }
            Class::Elf32 => {
                let b = b.sub(0, EHDR32_SIZE)?;
                ElfHeader {
                    class,
                    endian,
                    e_type: e.u16(&b, 16)?,
                    machine: e.u16(&b, 18)?,
                    version: e.u32(&b, 20)?,
                    phoff: u64::from(e.u32(&b, 28)?),
                    shoff: u64::from(e.u32(&b, 32)?),
                    phentsize: e.u16(&b, 42)?,
                    phnum_raw: e.u16(&b, 44)?,
                    shentsize: e.u16(&b, 46)?,
                    shnum: e.u16(&b, 48)?,
                    shstrndx: e.u16(&b, 50)?,
                }
            }
        };
        Ok(h)
    }

    /// The program header size this class needs.
    pub fn phdr_size(&self) -> u16 {
        match self.class {
            Class::Elf32 => PHDR32_SIZE,
            Class::Elf64 => PHDR64_SIZE,
        }
    }

    /// The section header size this class needs.
    pub fn shdr_size(&self) -> u16 {
        match self.class {
            Class::Elf32 => SHDR32_SIZE,
            Class::Elf64 => SHDR64_SIZE,
        }
    }

    /// A short name of `e_machine`.
    pub fn machine_name(&self) -> &'static str {
        machine_name(self.machine)
    }
}

/// A short name of an `e_machine` value.
pub fn machine_name(m: u16) -> &'static str {
    match m {
        EM_386 => "i386",
        EM_X86_64 => "x86_64",
        2 => "sparc",
        8 => "mips",
        20 => "ppc",
        21 => "ppc64",
        22 => "s390",
        40 => "arm",
        183 => "aarch64",
        243 => "riscv",
        258 => "loongarch",
        _ => "unknown",
    }
}

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// Index in the program header table.
    pub index: u32,
    /// File offset of the program header itself (for error messages).
    pub at: u64,
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`.
    pub paddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

impl ProgramHeader {
    /// Parses the program header `index` from `b` (exactly one entry).
    pub fn parse(h: &ElfHeader, b: &Bytes<'_>, index: u32) -> Result<Self> {
        let e = h.endian;
        let at = b.file_offset(0);
        Ok(match h.class {
            Class::Elf64 => ProgramHeader {
                index,
                at,
                p_type: e.u32(b, 0)?,
                flags: e.u32(b, 4)?,
                offset: e.u64(b, 8)?,
                vaddr: e.u64(b, 16)?,
                paddr: e.u64(b, 24)?,
                filesz: e.u64(b, 32)?,
                memsz: e.u64(b, 40)?,
            },
            Class::Elf32 => ProgramHeader {
                index,
                at,
                p_type: e.u32(b, 0)?,
                offset: u64::from(e.u32(b, 4)?),
                vaddr: u64::from(e.u32(b, 8)?),
                paddr: u64::from(e.u32(b, 12)?),
                filesz: u64::from(e.u32(b, 16)?),
                memsz: u64::from(e.u32(b, 20)?),
                flags: e.u32(b, 24)?,
            },
        })
    }
}

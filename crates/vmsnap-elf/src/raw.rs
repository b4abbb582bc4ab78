//! On-disk constants of ELF cores and the limits this crate applies to them.

/// `\x7fELF`.
pub const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
/// `EI_CLASS` of 32-bit files.
pub const ELFCLASS32: u8 = 1;
/// `EI_CLASS` of 64-bit files.
pub const ELFCLASS64: u8 = 2;
/// `EI_DATA` of little-endian files.
pub const ELFDATA2LSB: u8 = 1;
/// `EI_DATA` of big-endian files.
pub const ELFDATA2MSB: u8 = 2;
/// `e_type` of core files.
pub const ET_CORE: u16 = 4;
/// `p_type` of loadable segments (memory).
pub const PT_LOAD: u32 = 1;
/// `p_type` of note segments.
pub const PT_NOTE: u32 = 4;
/// `e_phnum` value meaning "the count is in section header 0's `sh_info`".
pub const PN_XNUM: u16 = 0xffff;
/// `sh_type` of a note section.
pub const SHT_NOTE: u32 = 7;
/// Most section headers accepted (`e_shnum` is a `u16`; `SHN_LORESERVE` and above are
/// special indices).
pub const MAX_SECTION_HEADERS: u64 = 0xff00;
/// Most bytes of a section-name string table read.
pub const MAX_SECTION_NAMES: u64 = 1 << 20;
/// `n_type` of a `CORE` prstatus note.
pub const NT_PRSTATUS: u32 = 1;

/// `e_machine` of 32-bit x86.
pub const EM_386: u16 = 3;
/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;

/// Size of the ELF32 file header.
pub const EHDR32_SIZE: usize = 52;
/// Size of the ELF64 file header.
pub const EHDR64_SIZE: usize = 64;
/// Size of an ELF32 program header.
pub const PHDR32_SIZE: u16 = 32;
/// Size of an ELF64 program header.
pub const PHDR64_SIZE: u16 = 56;
/// Size of an ELF32 section header.
pub const SHDR32_SIZE: u16 = 40;
/// Size of an ELF64 section header.
pub const SHDR64_SIZE: u16 = 64;
/// Size of a note header (`Elf32_Nhdr` and `Elf64_Nhdr` are the same).
pub const NHDR_SIZE: usize = 12;

/// `QEMUCPUState.version` QEMU writes (`QEMUCPUSTATE_VERSION`).
pub const QEMU_CPUSTATE_VERSION: u32 = 1;
/// `QEMUCPUState` up to and including `cr[5]` (QEMU target/i386/arch_dump.c, version 1).
pub const QEMU_CPUSTATE_MIN: usize = 432;
/// `QEMUCPUState` with `kernel_gs_base`.
pub const QEMU_CPUSTATE_GS: usize = 440;
/// `x86_64_elf_prstatus` as QEMU writes it.
pub const PRSTATUS_X86_64_SIZE: usize = 336;
/// `x86_elf_prstatus` (i386) as QEMU writes it.
pub const PRSTATUS_I386_SIZE: usize = 144;

/// Most program headers accepted (QEMU paging dumps use `PN_XNUM` for large counts).
pub const MAX_PROGRAM_HEADERS: u64 = 1 << 22;
/// Most bytes of notes read (all PT_NOTE segments together).
pub const MAX_NOTE_BYTES: u64 = 64 << 20;
/// Most notes parsed.
pub const MAX_NOTES: usize = 1 << 20;
/// Largest guest-physical address space accepted: x86-64's architectural MAXPHYADDR
/// of 52 bits (other architectures stay below it too).
pub const MAX_PHYS_END: u64 = 1 << 52;
/// Most segments listed one by one in `describe()` (the rest are counted).
pub const MAX_LISTED_SEGMENTS: usize = 1024;
/// Most notes listed one by one in `describe()`.
pub const MAX_LISTED_NOTES: usize = 1024;

/// Signature of a makedumpfile/QEMU kdump-compressed dump.
pub const KDUMP_SIGNATURE: &[u8; 8] = b"KDUMP   ";
/// Signature of the older diskdump format.
pub const DISKDUMP_SIGNATURE: &[u8; 8] = b"DISKDUMP";
/// Signature of makedumpfile's flattened format (what `dump-guest-memory -z` writes).
pub const FLAT_SIGNATURE: &[u8; 16] = b"makedumpfile\0\0\0\0";
/// Size of the flattened format's header block.
pub const FLAT_HEADER_SIZE: usize = 4096;
/// `status` flag: pages compressed with zlib.
pub const DUMP_DH_COMPRESSED_ZLIB: u32 = 0x1;
/// `status` flag: pages compressed with LZO.
pub const DUMP_DH_COMPRESSED_LZO: u32 = 0x2;
/// `status` flag: pages compressed with snappy.
pub const DUMP_DH_COMPRESSED_SNAPPY: u32 = 0x4;
/// `status` flag: the dump is incomplete.
pub const DUMP_DH_COMPRESSED_INCOMPLETE: u32 = 0x8;
/// `status` flag: pages compressed with zstd.
pub const DUMP_DH_COMPRESSED_ZSTD: u32 = 0x20;
/// Offset of `status` in `disk_dump_header` with 64-bit `struct timeval`.
pub const KDUMP_STATUS_OFFSET_64: usize = 424;
/// Offset of `status` in `disk_dump_header` with 32-bit `struct timeval`.
pub const KDUMP_STATUS_OFFSET_32: usize = 412;

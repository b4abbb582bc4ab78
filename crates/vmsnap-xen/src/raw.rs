//! On-disk constants of Xen dump-core files and this crate's limits.
//!
//! The layout is Xen's `docs/misc/dump-core-format.txt` and libxenguest's `xg_core.h`
//! (`struct xen_dumpcore_elfnote_header_desc`, `struct xen_dumpcore_p2m`,
//! `XEN_DUMPCORE_SEC_*`, `XC_CORE_MAGIC*`); the per-vCPU records are
//! `vcpu_guest_context_t` of `xen/include/public/arch-x86/xen.h` with `cpu_user_regs` of
//! `xen-x86_64.h` / `xen-x86_32.h`. The ELF structure (header, section headers, notes) is
//! parsed by vmsnap-elf.

// The note types, for the builder too.
#[allow(unused_imports)]
pub use vmsnap_elf::xen::{
    XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION, XEN_ELFNOTE_DUMPCORE_HEADER, XEN_ELFNOTE_DUMPCORE_NONE,
    XEN_ELFNOTE_DUMPCORE_XEN_VERSION, XEN_NOTE_NAME,
};

/// The note section.
pub const SEC_NOTE: &str = ".note.Xen";
/// The per-vCPU `vcpu_guest_context_t` array.
pub const SEC_PRSTATUS: &str = ".xen_prstatus";
/// The shared-info page (optional).
pub const SEC_SHARED_INFO: &str = ".xen_shared_info";
/// `(pfn, gmfn)` pairs of paravirtualised guests.
pub const SEC_P2M: &str = ".xen_p2m";
/// pfns of auto-translated (HVM) guests.
pub const SEC_PFN: &str = ".xen_pfn";
/// The page frames.
pub const SEC_PAGES: &str = ".xen_pages";

/// `xch_magic` of paravirtualised domains (`XC_CORE_MAGIC`).
pub const XC_CORE_MAGIC: u64 = 0xF00F_EBED;
/// `xch_magic` of fully virtualised (HVM) domains (`XC_CORE_MAGIC_HVM`).
pub const XC_CORE_MAGIC_HVM: u64 = 0xF00F_EBEE;
/// An unused `.xen_p2m`/`.xen_pfn` entry (`XC_CORE_INVALID_PFN`): its page reads as zeros.
pub const INVALID_PFN: u64 = u64::MAX;

/// Size of `xen_dumpcore_elfnote_header_desc` (four `uint64_t`).
pub const HEADER_DESC_SIZE: usize = 32;
/// Size of one `struct xen_dumpcore_p2m`.
pub const P2M_ENTRY_SIZE: u64 = 16;
/// Size of one `.xen_pfn` entry.
pub const PFN_ENTRY_SIZE: u64 = 8;

/// `xen_dumpcore_elfnote_xen_version_desc`: `major_version`, `minor_version`, then
/// `extra_version` (16), `compile_info` (compiler 64, by 16, domain 32, date 32),
/// `capabilities` (1024), `changeset` (64), `platform_parameters` (`virt_start`, a
/// `xen_ulong_t`), `pagesize`.
pub const VERSION_EXTRA_AT: usize = 16;
/// Length of `extra_version`.
pub const VERSION_EXTRA_LEN: usize = 16;
/// Offset of `compile_info.compiler`.
pub const VERSION_COMPILER_AT: usize = 32;
/// Length of `compiler`.
pub const VERSION_COMPILER_LEN: usize = 64;
/// Offset of `compile_info.compile_date`.
pub const VERSION_DATE_AT: usize = 144;
/// Length of `compile_date`.
pub const VERSION_DATE_LEN: usize = 32;
/// Offset of `capabilities`.
pub const VERSION_CAPS_AT: usize = 176;
/// Length of `capabilities`.
pub const VERSION_CAPS_LEN: usize = 1024;
/// Offset of `changeset`.
pub const VERSION_CHANGESET_AT: usize = 1200;
/// Length of `changeset`.
pub const VERSION_CHANGESET_LEN: usize = 64;
/// Offset of `platform_parameters.virt_start`.
pub const VERSION_VIRT_START_AT: usize = 1264;
/// Size of the descriptor as a 64-bit toolstack writes it.
pub const VERSION_DESC_SIZE: usize = 1280;

/// Where the fields of one `vcpu_guest_context_t` lie, per guest width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLayout {
    /// Size of the structure.
    pub size: u64,
    /// Bytes of a general register (8 or 4).
    pub word: usize,
    /// Offset of `flags`.
    pub flags: usize,
    /// Offset of `user_regs`, and each register's offset within it.
    pub user_regs: usize,
    /// Registers of `user_regs` as (name, offset, bytes).
    pub regs: &'static [(&'static str, usize, usize)],
    /// Offset of `ctrlreg[0]`.
    pub ctrlreg: usize,
    /// Segment bases after `vm_assist` (x86-64 only), as (name, offset).
    pub bases: &'static [(&'static str, usize)],
}

/// `vcpu_guest_context_t` of x86-64 (5168 bytes).
pub const CONTEXT_X86_64: ContextLayout = ContextLayout {
    size: 5168,
    word: 8,
    flags: 512,
    user_regs: 520,
    regs: &[
        ("r15", 0, 8),
        ("r14", 8, 8),
        ("r13", 16, 8),
        ("r12", 24, 8),
        ("rbp", 32, 8),
        ("rbx", 40, 8),
        ("r11", 48, 8),
        ("r10", 56, 8),
        ("r9", 64, 8),
        ("r8", 72, 8),
        ("rax", 80, 8),
        ("rcx", 88, 8),
        ("rdx", 96, 8),
        ("rsi", 104, 8),
        ("rdi", 112, 8),
        ("rip", 128, 8),
        ("cs", 136, 2),
        ("rflags", 144, 8),
        ("rsp", 152, 8),
        ("ss", 160, 2),
        ("es", 168, 2),
        ("ds", 176, 2),
        ("fs", 184, 2),
        ("gs", 192, 2),
    ],
    ctrlreg: 4984,
    bases: &[
        ("fs_base", 5144),
        ("gs_base_kernel", 5152),
        ("gs_base_user", 5160),
    ],
};

/// `vcpu_guest_context_t` of x86-32 (2800 bytes; 32-bit PV guests, compat layout).
pub const CONTEXT_X86_32: ContextLayout = ContextLayout {
    size: 2800,
    word: 4,
    flags: 512,
    user_regs: 516,
    regs: &[
        ("ebx", 0, 4),
        ("ecx", 4, 4),
        ("edx", 8, 4),
        ("esi", 12, 4),
        ("edi", 16, 4),
        ("ebp", 20, 4),
        ("eax", 24, 4),
        ("eip", 32, 4),
        ("cs", 36, 2),
        ("eflags", 40, 4),
        ("esp", 44, 4),
        ("ss", 48, 2),
        ("es", 52, 2),
        ("ds", 56, 2),
        ("fs", 60, 2),
        ("gs", 64, 2),
    ],
    ctrlreg: 2716,
    bases: &[],
};

/// `VGCF_online`: the vCPU is up.
pub const VGCF_ONLINE: u64 = 1 << 5;

/// Smallest page size accepted.
pub const MIN_PAGE_SIZE: u64 = 4096;
/// Largest page size accepted (64 KiB pages exist on Arm).
pub const MAX_PAGE_SIZE: u64 = 1 << 16;
/// Most vCPUs accepted (Xen's `HVM_MAX_VCPUS` is 128; PV domains stay far below this).
pub const MAX_VCPUS: u64 = 4096;
/// Largest guest-physical address space accepted: x86-64's MAXPHYADDR of 52 bits.
pub const MAX_PHYS_END: u64 = 1 << 52;
/// Bytes of the pfn/p2m table read at a time while mapping.
pub const TABLE_CHUNK: u64 = 1 << 20;
/// Most bytes of `.note.Xen` read.
pub const MAX_NOTE_BYTES: u64 = 1 << 20;
/// Most bytes of `.xen_prstatus` read (the vCPU limit times a generous entry).
pub const MAX_PRSTATUS_BYTES: u64 = 64 << 20;
/// Most vCPUs listed one by one in `describe()`.
pub const MAX_LISTED_VCPUS: usize = 256;

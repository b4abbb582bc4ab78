//! On-disk layout of Windows crash dumps (`MEMORY.DMP`) and this crate's limits.
//!
//! Offsets are those of `_DUMP_HEADER` / `_DUMP_HEADER64` (Microsoft's `DUMP_HEADER32` and
//! `DUMP_HEADER64` as WinDbg writes and reads them; Volatility 3's `crash.json` and
//! `crash64.json` symbol tables carry the same offsets) and of the `_SUMMARY_DUMP` header
//! of bitmap dumps (Volatility's `crash_common.json`, rizin's `dmp_specs.h`).

/// Bytes of a page: every run and bitmap bit covers one.
pub const PAGE: u64 = 0x1000;
/// `Signature`: "PAGE".
pub const SIGNATURE: &[u8; 4] = b"PAGE";
/// `ValidDump` of a 32-bit dump: "DUMP" (the file starts with `PAGEDUMP`).
pub const VALID_DUMP32: &[u8; 4] = b"DUMP";
/// `ValidDump` of a 64-bit dump: "DU64" (the file starts with `PAGEDU64`).
pub const VALID_DUMP64: &[u8; 4] = b"DU64";

/// `DumpType` of a full (complete) dump whose pages follow the header in run order.
pub const DUMP_TYPE_FULL: u32 = 1;
/// `DumpType` of a complete memory dump with a bitmap (`FDMP` summary header).
pub const DUMP_TYPE_BITMAP_FULL: u32 = 5;
/// `DumpType` of a kernel (or active) memory dump with a bitmap (`SDMP` summary header).
pub const DUMP_TYPE_BITMAP_KERNEL: u32 = 6;

/// `MachineImageType` of x86 (`IMAGE_FILE_MACHINE_I386`).
pub const MACHINE_I386: u32 = 0x014c;
/// `MachineImageType` of x86-64 (`IMAGE_FILE_MACHINE_AMD64`).
pub const MACHINE_AMD64: u32 = 0x8664;

/// Bytes of `PhysicalMemoryBlockBuffer` (the run descriptor's room in the header).
pub const MEMORY_BLOCK_BYTES: u64 = 700;
/// Bytes of `Comment`.
pub const COMMENT_BYTES: usize = 128;
/// Bytes of `VersionUser`.
pub const VERSION_USER_BYTES: usize = 32;

/// Where the fields of one header width lie (byte offsets from the start of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Bytes of the header (the pages before the data or the summary header).
    pub header_bytes: u64,
    /// Bytes of a pointer-sized field (4 or 8).
    pub word: u64,
    /// `DirectoryTableBase`.
    pub directory_table_base: u64,
    /// `PfnDataBase`.
    pub pfn_data_base: u64,
    /// `PsLoadedModuleList`.
    pub ps_loaded_module_list: u64,
    /// `PsActiveProcessHead`.
    pub ps_active_process_head: u64,
    /// `MachineImageType`.
    pub machine_image_type: u64,
    /// `NumberProcessors`.
    pub number_processors: u64,
    /// `BugCheckCode`.
    pub bug_check_code: u64,
    /// `BugCheckParameter1..4` (pointer-sized each).
    pub bug_check_parameters: u64,
    /// `VersionUser[32]`.
    pub version_user: u64,
    /// `PaeEnabled` (32-bit headers only).
    pub pae_enabled: Option<u64>,
    /// `KdSecondaryVersion`.
    pub kd_secondary_version: u64,
    /// `KdDebuggerDataBlock`.
    pub kd_debugger_data_block: u64,
    /// `PhysicalMemoryBlockBuffer`: `NumberOfRuns` (u32) at its start.
    pub memory_block: u64,
    /// `NumberOfPages` within the block (u32 in 32-bit headers, u64 in 64-bit ones).
    pub number_of_pages: u64,
    /// The first `Run` within the block.
    pub first_run: u64,
    /// `ContextRecord`.
    pub context_record: u64,
    /// `ExceptionRecord`.
    pub exception_record: u64,
    /// `Comment[128]`.
    pub comment: u64,
    /// `DumpType`.
    pub dump_type: u64,
    /// `MiniDumpFields`.
    pub mini_dump_fields: u64,
    /// `SecondaryDataState`.
    pub secondary_data_state: u64,
    /// `ProductType`.
    pub product_type: u64,
    /// `SuiteMask`.
    pub suite_mask: u64,
    /// `WriterStatus`.
    pub writer_status: u64,
    /// `RequiredDumpSpace` (u64).
    pub required_dump_space: u64,
    /// `SystemUpTime` (u64, 100 ns units).
    pub system_up_time: u64,
    /// `SystemTime` (u64 FILETIME: 100 ns units since 1601-01-01 UTC).
    pub system_time: u64,
}

impl Layout {
    /// Bytes of one `_PHYSICAL_MEMORY_RUN` (two pointer-sized fields).
    pub fn run_bytes(&self) -> u64 {
        2 * self.word
    }

    /// Most runs the header's run buffer holds.
    pub fn max_runs(&self) -> u64 {
        (MEMORY_BLOCK_BYTES - (self.first_run - self.memory_block)) / self.run_bytes()
    }
}

/// `_DUMP_HEADER` (`PAGEDUMP`): one 4 KiB header page.
pub const LAYOUT32: Layout = Layout {
    header_bytes: 0x1000,
    word: 4,
    directory_table_base: 0x10,
    pfn_data_base: 0x14,
    ps_loaded_module_list: 0x18,
    ps_active_process_head: 0x1c,
    machine_image_type: 0x20,
    number_processors: 0x24,
    bug_check_code: 0x28,
    bug_check_parameters: 0x2c,
    version_user: 0x3c,
    pae_enabled: Some(0x5c),
    kd_secondary_version: 0x5d,
    kd_debugger_data_block: 0x60,
    memory_block: 0x64,
    number_of_pages: 0x68,
    first_run: 0x6c,
    context_record: 0x320,
    exception_record: 0x7d0,
    comment: 0x820,
    dump_type: 0xf88,
    mini_dump_fields: 0xf8c,
    secondary_data_state: 0xf90,
    product_type: 0xf94,
    suite_mask: 0xf98,
    writer_status: 0xf9c,
    required_dump_space: 0xfa0,
    system_up_time: 0xfb8,
    system_time: 0xfc0,
};

/// `_DUMP_HEADER64` (`PAGEDU64`): two header pages (8 KiB).
pub const LAYOUT64: Layout = Layout {
    header_bytes: 0x2000,
    word: 8,
    directory_table_base: 0x10,
    pfn_data_base: 0x18,
    ps_loaded_module_list: 0x20,
    ps_active_process_head: 0x28,
    machine_image_type: 0x30,
    number_processors: 0x34,
    bug_check_code: 0x38,
    bug_check_parameters: 0x40,
    version_user: 0x60,
    pae_enabled: None,
    kd_secondary_version: 0x104d,
    kd_debugger_data_block: 0x80,
    memory_block: 0x88,
    number_of_pages: 0x90,
    first_run: 0x98,
    context_record: 0x348,
    exception_record: 0xf00,
    comment: 0xfb0,
    dump_type: 0xf98,
    mini_dump_fields: 0x1038,
    secondary_data_state: 0x103c,
    product_type: 0x1040,
    suite_mask: 0x1044,
    writer_status: 0x1048,
    required_dump_space: 0xfa0,
    system_up_time: 0x1030,
    system_time: 0xfa8,
};

/// `_SUMMARY_DUMP` of a bitmap dump, right after the header: "SDMP"/"FDMP", "DUMP",
/// `DumpOptions` (u32 at 8), `HeaderSize` (u64 at 0x20: file offset of the first page),
/// `Pages` (u64 at 0x28: pages present), `BitmapSize` (u64 at 0x30: bits), the bitmap at
/// 0x38 (bit `n` of byte `n / 8`, least significant first, for page frame `n`).
pub mod summary {
    /// Signature of a complete bitmap dump's summary header.
    pub const FULL: &[u8; 4] = b"FDMP";
    /// Signature of a kernel (summary) bitmap dump's summary header.
    pub const KERNEL: &[u8; 4] = b"SDMP";
    /// The `ValidDump` that follows the signature.
    pub const VALID_DUMP: &[u8; 4] = b"DUMP";
    /// `DumpOptions`.
    pub const DUMP_OPTIONS: u64 = 0x8;
    /// `HeaderSize`.
    pub const HEADER_SIZE: u64 = 0x20;
    /// `Pages`.
    pub const PAGES: u64 = 0x28;
    /// `BitmapSize`.
    pub const BITMAP_SIZE: u64 = 0x30;
    /// The bitmap.
    pub const BITMAP: u64 = 0x38;
}

/// Largest guest-physical address space accepted (x86-64's architectural MAXPHYADDR).
pub const MAX_PHYS_END: u64 = 1 << 52;
/// Bitmap bytes read at a time while mapping a bitmap dump.
pub const BITMAP_CHUNK: u64 = 1 << 20;
/// Most runs listed one by one in `describe()`.
pub const MAX_LISTED_RUNS: usize = 1024;

//! On-stream constants of the QEMU migration format (`migration/savevm.c`, `ram.h`).

/// "QEVM".
pub const MAGIC: u32 = 0x5145_564D;
/// The only stream version we read.
pub const VERSION: u32 = 3;
/// The obsolete compat version (rejected).
pub const VERSION_COMPAT: u32 = 2;

/// End of device state.
pub const SEC_EOF: u8 = 0x00;
/// Start of an iterative section (with idstr).
pub const SEC_START: u8 = 0x01;
/// Part of an iterative section.
pub const SEC_PART: u8 = 0x02;
/// End of an iterative section.
pub const SEC_END: u8 = 0x03;
/// A whole device section (with idstr).
pub const SEC_FULL: u8 = 0x04;
/// Subsection marker inside a vmstate payload.
pub const SEC_SUBSECTION: u8 = 0x05;
/// The JSON device description trailer.
pub const SEC_VMDESC: u8 = 0x06;
/// The configuration section.
pub const SEC_CONFIGURATION: u8 = 0x07;
/// A command record.
pub const SEC_COMMAND: u8 = 0x08;
/// Section footer.
pub const SEC_FOOTER: u8 = 0x7E;

/// `MIG_CMD_PACKAGED`: a nested stream (postcopy); not supported.
pub const CMD_PACKAGED: u16 = 8;

/// RAM record flags (low bits of the be64 `offset | flags`).
pub const RAM_FULL: u64 = 0x01;
/// A page filled with one byte.
pub const RAM_ZERO: u64 = 0x02;
/// The RAM block list.
pub const RAM_MEM_SIZE: u64 = 0x04;
/// A raw page.
pub const RAM_PAGE: u64 = 0x08;
/// End of a RAM section chunk.
pub const RAM_EOS: u64 = 0x10;
/// Same block as the previous record.
pub const RAM_CONTINUE: u64 = 0x20;
/// XBZRLE delta page.
pub const RAM_XBZRLE: u64 = 0x40;
/// RDMA hook.
pub const RAM_HOOK: u64 = 0x80;
/// Historic multi-threaded compressed page (removed in QEMU 9.1).
pub const RAM_COMPRESS_PAGE: u64 = 0x100;
/// Multifd synchronisation (no payload).
pub const RAM_MULTIFD_FLUSH: u64 = 0x200;
/// Every flag bit QEMU may use ("no flag bigger than 0x200").
pub const RAM_FLAG_MASK: u64 = 0x3FF;

/// Name of a RAM flag for messages.
pub fn ram_flag_name(flag: u64) -> &'static str {
    match flag {
        RAM_FULL => "FULL (obsolete)",
        RAM_ZERO => "ZERO",
        RAM_MEM_SIZE => "MEM_SIZE",
        RAM_PAGE => "PAGE",
        RAM_EOS => "EOS",
        RAM_CONTINUE => "CONTINUE",
        RAM_XBZRLE => "XBZRLE",
        RAM_HOOK => "HOOK (RDMA)",
        RAM_COMPRESS_PAGE => "COMPRESS_PAGE",
        RAM_MULTIFD_FLUSH => "MULTIFD_FLUSH",
        _ => "unknown",
    }
}

/// MappedRamHeader size (packed: be32 version, be64 page_size, be64 bitmap, be64 pages).
pub const MAPPED_RAM_HEADER: u64 = 28;
/// MappedRamHeader version we read.
pub const MAPPED_RAM_VERSION: u32 = 1;

/// libvirt save header magic.
pub const LIBVIRT_MAGIC: &[u8; 16] = b"LibvirtQemudSave";
/// libvirt save header magic while the save is incomplete.
pub const LIBVIRT_MAGIC_PARTIAL: &[u8; 16] = b"LibvirtQemudPart";
/// libvirt save header size.
pub const LIBVIRT_HEADER: u64 = 92;

/// Named limits specific to QEMU streams.
pub mod limits {
    /// Largest RAM a stream may declare (64 TiB).
    pub const MAX_GUEST_RAM: u64 = 1 << 46;
    /// Largest target page size accepted.
    pub const MAX_PAGE_SIZE: u64 = 1 << 16;
    /// Smallest target page size accepted (flags need 10 bits).
    pub const MIN_PAGE_SIZE: u64 = 1 << 10;
    /// Most sections (device instances) in a stream.
    pub const MAX_SECTIONS: u64 = 1 << 16;
    /// Deepest vmdesc struct nesting followed.
    pub const MAX_VMDESC_DEPTH: u32 = 32;
    /// Most vmdesc fields visited for one section (arrays unfolded).
    pub const MAX_VMDESC_FIELDS: u64 = 1 << 20;
    /// Longest footer scan for one device section without vmdesc.
    pub const MAX_FOOTER_SCAN: u64 = 64 << 20;
    /// Most vCPUs reported.
    pub const MAX_CPUS: usize = 4096;
    /// Bytes of a mapped-ram dirty bitmap read at a time: the bitmap (1 bit a page,
    /// 2 GiB at `MAX_GUEST_RAM`) is never held whole.
    pub const BITMAP_CHUNK_BYTES: u64 = 1 << 20;
    /// Most runs of set or clear bits over all mapped-ram bitmaps (about 32 bytes each,
    /// plus a segment each in the maps): 16 Mi.
    pub const MAX_BITMAP_RUNS: u64 = 1 << 24;
}

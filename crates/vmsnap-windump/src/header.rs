//! The crash dump header (`_DUMP_HEADER` / `_DUMP_HEADER64`), checked.

use serde_json::{json, Value};
use vmsnap_core::hex::hex;
use vmsnap_core::{Bytes, Error, Result};

use crate::raw::*;

/// Whether the dump has the 32-bit (`PAGEDUMP`) or 64-bit (`PAGEDU64`) header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Width {
    /// `PAGEDUMP`: `_DUMP_HEADER`, one 4 KiB header page, 32-bit fields.
    Bits32,
    /// `PAGEDU64`: `_DUMP_HEADER64`, 8 KiB of header, 64-bit fields.
    Bits64,
}

impl Width {
    /// The field offsets of this header width.
    pub fn layout(self) -> &'static Layout {
        match self {
            Width::Bits32 => &LAYOUT32,
            Width::Bits64 => &LAYOUT64,
        }
    }

    /// The width the first 8 bytes of a file say, if they are a crash dump signature.
    pub fn of_signature(head: &[u8]) -> Option<Width> {
        let (sig, valid) = (head.get(..4)?, head.get(4..8)?);
        if sig != SIGNATURE {
            return None;
        }
        if valid == VALID_DUMP32 {
            Some(Width::Bits32)
        } else if valid == VALID_DUMP64 {
            Some(Width::Bits64)
        } else {
            None
        }
    }

    /// `PAGEDUMP` or `PAGEDU64`.
    pub fn signature(self) -> &'static str {
        match self {
            Width::Bits32 => "PAGEDUMP",
            Width::Bits64 => "PAGEDU64",
        }
    }
}

/// One `_PHYSICAL_MEMORY_RUN`: `page_count` pages from page frame `base_page`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRun {
    /// First page frame.
    pub base_page: u64,
    /// Pages.
    pub page_count: u64,
}

/// A parsed header: every field of `_DUMP_HEADER(64)` vmsnap reports, with the run list
/// checked against the header's room and the address-space limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 32- or 64-bit header.
    pub width: Width,
    /// `MajorVersion` (0xf for a free build, 0xc for a checked one).
    pub major_version: u32,
    /// `MinorVersion` (the Windows build number).
    pub minor_version: u32,
    /// `DirectoryTableBase`: the CR3 of the process current at the crash.
    pub directory_table_base: u64,
    /// `PfnDataBase`.
    pub pfn_data_base: u64,
    /// `PsLoadedModuleList`.
    pub ps_loaded_module_list: u64,
    /// `PsActiveProcessHead`.
    pub ps_active_process_head: u64,
    /// `MachineImageType` (0x14c x86, 0x8664 x86-64).
    pub machine_image_type: u32,
    /// `NumberProcessors`.
    pub number_processors: u32,
    /// `BugCheckCode`.
    pub bug_check_code: u32,
    /// `BugCheckParameter1..4`.
    pub bug_check_parameters: [u64; 4],
    /// `VersionUser` up to its first NUL.
    pub version_user: String,
    /// `PaeEnabled` (32-bit headers; `None` in 64-bit ones).
    pub pae_enabled: Option<u8>,
    /// `KdSecondaryVersion`.
    pub kd_secondary_version: u8,
    /// `KdDebuggerDataBlock`: the kernel's `KDDEBUGGER_DATA64` address.
    pub kd_debugger_data_block: u64,
    /// `NumberOfRuns` of the physical memory descriptor.
    pub number_of_runs: u32,
    /// `NumberOfPages` of the physical memory descriptor.
    pub number_of_pages: u64,
    /// The runs, when `number_of_runs` is within the header's room (full dumps need them).
    pub runs: Vec<MemoryRun>,
    /// `Comment` up to its first NUL.
    pub comment: String,
    /// `DumpType`.
    pub dump_type: u32,
    /// `MiniDumpFields`.
    pub mini_dump_fields: u32,
    /// `SecondaryDataState`.
    pub secondary_data_state: u32,
    /// `ProductType`.
    pub product_type: u32,
    /// `SuiteMask`.
    pub suite_mask: u32,
    /// `WriterStatus`.
    pub writer_status: u32,
    /// `RequiredDumpSpace`: bytes the dump needs (its file size as written).
    pub required_dump_space: u64,
    /// `SystemUpTime` (100 ns units).
    pub system_up_time: u64,
    /// `SystemTime` (FILETIME).
    pub system_time: u64,
    /// `ExceptionRecord.ExceptionCode`.
    pub exception_code: u32,
    /// `ExceptionRecord.ExceptionAddress`.
    pub exception_address: u64,
}

/// Seconds between 1601-01-01 (the FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_SECS: u64 = 11_644_473_600;

/// Text up to the first NUL of a fixed-size field (lossy UTF-8).
fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

impl Header {
    /// Parses the header from the first `Layout::header_bytes` of the file.
    pub fn parse(raw: &[u8]) -> Result<Header> {
        let width = Width::of_signature(raw).ok_or_else(|| {
            Error::malformed(
                0,
                "no PAGEDUMP or PAGEDU64 signature (not a Windows crash dump)",
            )
        })?;
        let l = width.layout();
        let b = Bytes::new(raw, 0);
        let at = |o: u64| o as usize;
        let word = |o: u64| -> Result<u64> {
            match width {
                Width::Bits32 => b.u32_le(at(o)).map(u64::from),
                Width::Bits64 => b.u64_le(at(o)),
            }
        };
        let mut bug_check_parameters = [0u64; 4];
        for (i, p) in bug_check_parameters.iter_mut().enumerate() {
            *p = word(l.bug_check_parameters + i as u64 * l.word)?;
        }
        let number_of_runs = b.u32_le(at(l.memory_block))?;
        let number_of_pages = match width {
            Width::Bits32 => u64::from(b.u32_le(at(l.number_of_pages))?),
            Width::Bits64 => b.u64_le(at(l.number_of_pages))?,
        };
        let dump_type = b.u32_le(at(l.dump_type))?;
        let mut runs = Vec::new();
        if dump_type == DUMP_TYPE_FULL {
            runs = parse_runs(&b, l, number_of_runs, width)?;
        }
        Ok(Header {
            width,
            major_version: b.u32_le(8)?,
            minor_version: b.u32_le(0xc)?,
            directory_table_base: word(l.directory_table_base)?,
            pfn_data_base: word(l.pfn_data_base)?,
            ps_loaded_module_list: word(l.ps_loaded_module_list)?,
            ps_active_process_head: word(l.ps_active_process_head)?,
            machine_image_type: b.u32_le(at(l.machine_image_type))?,
            number_processors: b.u32_le(at(l.number_processors))?,
            bug_check_code: b.u32_le(at(l.bug_check_code))?,
            bug_check_parameters,
            version_user: text(b.slice(at(l.version_user), VERSION_USER_BYTES)?),
            pae_enabled: match l.pae_enabled {
                Some(o) => Some(b.u8(at(o))?),
                None => None,
            },
            kd_secondary_version: b.u8(at(l.kd_secondary_version))?,
            kd_debugger_data_block: word(l.kd_debugger_data_block)?,
            number_of_runs,
            number_of_pages,
            runs,
            comment: text(b.slice(at(l.comment), COMMENT_BYTES)?),
            dump_type,
            mini_dump_fields: b.u32_le(at(l.mini_dump_fields))?,
            secondary_data_state: b.u32_le(at(l.secondary_data_state))?,
            product_type: b.u32_le(at(l.product_type))?,
            suite_mask: b.u32_le(at(l.suite_mask))?,
            writer_status: b.u32_le(at(l.writer_status))?,
            required_dump_space: b.u64_le(at(l.required_dump_space))?,
            system_up_time: b.u64_le(at(l.system_up_time))?,
            system_time: b.u64_le(at(l.system_time))?,
            exception_code: b.u32_le(at(l.exception_record))?,
            // ExceptionAddress: after code, flags and the record pointer.
            exception_address: word(l.exception_record + 8 + l.word)?,
        })
    }

    /// Whether the 32-bit header says the system ran with PAE paging.
    pub fn pae(&self) -> bool {
        self.pae_enabled.is_some_and(|p| p != 0)
    }

    /// `SystemTime` as `YYYY-MM-DDTHH:MM:SSZ`, when it is at or after 1970.
    pub fn system_time_utc(&self) -> Option<String> {
        (self.system_time / 10_000_000)
            .checked_sub(FILETIME_UNIX_SECS)
            .map(vmsnap_core::time::iso8601_utc)
    }

    /// The name of `DumpType`.
    pub fn dump_type_name(&self) -> &'static str {
        match self.dump_type {
            DUMP_TYPE_FULL => "full",
            2 => "summary",
            3 => "header",
            4 => "triage",
            DUMP_TYPE_BITMAP_FULL => "bitmap-full",
            DUMP_TYPE_BITMAP_KERNEL => "bitmap-kernel",
            _ => "unknown",
        }
    }

    /// The name of `MachineImageType`.
    pub fn machine_name(&self) -> &'static str {
        match self.machine_image_type {
            MACHINE_I386 => "i386",
            MACHINE_AMD64 => "x86_64",
            0xaa64 => "arm64",
            _ => "unknown",
        }
    }

    /// Every field as JSON (addresses as hex strings, counts as numbers).
    pub fn to_json(&self) -> Value {
        json!({
            "signature": self.width.signature(),
            "major_version": hex(u64::from(self.major_version)),
            "minor_version": self.minor_version,
            "directory_table_base": hex(self.directory_table_base),
            "pfn_data_base": hex(self.pfn_data_base),
            "ps_loaded_module_list": hex(self.ps_loaded_module_list),
            "ps_active_process_head": hex(self.ps_active_process_head),
            "machine_image_type": hex(u64::from(self.machine_image_type)),
            "machine": self.machine_name(),
            "number_processors": self.number_processors,
            "bug_check_code": hex(u64::from(self.bug_check_code)),
            "bug_check_parameters": self.bug_check_parameters.iter().map(|&p| hex(p)).collect::<Vec<_>>(),
            "version_user": self.version_user,
            "pae_enabled": self.pae_enabled,
            "kd_secondary_version": self.kd_secondary_version,
            "kd_debugger_data_block": hex(self.kd_debugger_data_block),
            "number_of_runs": self.number_of_runs,
            "number_of_pages": self.number_of_pages,
            "comment": self.comment,
            "dump_type": self.dump_type,
            "dump_type_name": self.dump_type_name(),
            "mini_dump_fields": hex(u64::from(self.mini_dump_fields)),
            "secondary_data_state": hex(u64::from(self.secondary_data_state)),
            "product_type": self.product_type,
            "suite_mask": hex(u64::from(self.suite_mask)),
            "writer_status": hex(u64::from(self.writer_status)),
            "required_dump_space": self.required_dump_space,
            "system_up_time": hex(self.system_up_time),
            "system_time": hex(self.system_time),
            "system_time_utc": self.system_time_utc(),
            "exception_code": hex(u64::from(self.exception_code)),
            "exception_address": hex(self.exception_address),
        })
    }
}

/// The runs of a full dump: their count within the header's room, each run within the
/// address-space limit.
fn parse_runs(b: &Bytes<'_>, l: &Layout, count: u32, width: Width) -> Result<Vec<MemoryRun>> {
    let count = u64::from(count);
    if count > l.max_runs() {
        return Err(Error::limit("NumberOfRuns", count, l.max_runs()).at(l.memory_block));
    }
    let mut runs = Vec::new();
    for i in 0..count {
        let at = l.first_run + i * l.run_bytes();
        let (base_page, page_count) = match width {
            Width::Bits32 => (
                u64::from(b.u32_le(at as usize)?),
                u64::from(b.u32_le(at as usize + 4)?),
            ),
            Width::Bits64 => (b.u64_le(at as usize)?, b.u64_le(at as usize + 8)?),
        };
        let end = base_page
            .checked_add(page_count)
            .and_then(|p| p.checked_mul(PAGE))
            .filter(|&e| e <= MAX_PHYS_END);
        if end.is_none() {
            return Err(Error::limit(
                &format!("end of run {i} (page {base_page:#x}, {page_count:#x} pages)"),
                base_page.saturating_add(page_count).saturating_mul(PAGE),
                MAX_PHYS_END,
            )
            .at(at));
        }
        runs.push(MemoryRun {
            base_page,
            page_count,
        });
    }
    Ok(runs)
}

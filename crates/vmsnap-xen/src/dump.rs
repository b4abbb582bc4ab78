//! The structure of a dump-core file: its sections and the `.note.Xen` notes.

use vmsnap_core::{Bytes, Error, Layer, LayerExt, Result, ResultExt};
use vmsnap_elf::section::{find, read_sections, SectionHeader};
use vmsnap_elf::{parse_notes, ElfHeader, Note};

use crate::raw::*;

/// Paravirtualised (`.xen_p2m`) or auto-translated (`.xen_pfn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Table {
    /// `.xen_p2m`: `(pfn, gmfn)` pairs (x86 PV guests).
    P2m,
    /// `.xen_pfn`: one pfn per page (HVM guests, Arm).
    Pfn,
}

impl Table {
    /// Bytes of one entry.
    pub fn entry_size(self) -> u64 {
        match self {
            Table::P2m => P2M_ENTRY_SIZE,
            Table::Pfn => PFN_ENTRY_SIZE,
        }
    }
    /// The section name.
    pub fn section(self) -> &'static str {
        match self {
            Table::P2m => SEC_P2M,
            Table::Pfn => SEC_PFN,
        }
    }
}

/// `xen_dumpcore_elfnote_header_desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreHeader {
    /// `xch_magic`: `XC_CORE_MAGIC` (PV) or `XC_CORE_MAGIC_HVM`.
    pub magic: u64,
    /// `xch_nr_vcpus`.
    pub nr_vcpus: u64,
    /// `xch_nr_pages`.
    pub nr_pages: u64,
    /// `xch_page_size`.
    pub page_size: u64,
}

/// What the `XEN_ELFNOTE_DUMPCORE_XEN_VERSION` note says of the hypervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XenVersion {
    /// `major_version`.
    pub major: u64,
    /// `minor_version`.
    pub minor: u64,
    /// `extra_version` (e.g. `.2`).
    pub extra: String,
    /// `compile_info.compiler`.
    pub compiler: String,
    /// `compile_info.compile_date`.
    pub compile_date: String,
    /// `capabilities` (e.g. `xen-3.0-x86_64 hvm-3.0-x86_32 …`).
    pub capabilities: String,
    /// `changeset`.
    pub changeset: String,
}

/// The parsed structure of a dump-core file.
#[derive(Debug, Clone)]
pub struct Dump {
    /// The ELF header.
    pub elf: ElfHeader,
    /// Every section header, named.
    pub sections: Vec<SectionHeader>,
    /// Every note of `.note.Xen`.
    pub notes: Vec<Note>,
    /// The dump-core header note.
    pub header: CoreHeader,
    /// The hypervisor's version note, when present and readable.
    pub version: Option<XenVersion>,
    /// The format version note (major in the high 32 bits, minor in the low ones).
    pub format_version: Option<u64>,
    /// Which page table the dump has.
    pub table: Table,
    /// `.xen_pages`.
    pub pages: SectionHeader,
    /// `.xen_p2m` or `.xen_pfn`.
    pub table_section: SectionHeader,
    /// `.xen_prstatus`, when present.
    pub prstatus: Option<SectionHeader>,
    /// `.xen_shared_info`, when present.
    pub shared_info: Option<SectionHeader>,
}

/// How many bytes of the head are read to parse the ELF header.
const HEAD: u64 = 64;

fn text(b: &Bytes<'_>, at: usize, len: usize) -> Result<String> {
    let raw = b.slice(at, len)?;
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    Ok(String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).into_owned())
}

impl Dump {
    /// Reads the ELF header, the sections and the notes of the file on `lower`.
    pub fn parse(lower: &dyn Layer) -> Result<Self> {
        let size = lower.len();
        let head = lower.read_vec(0, size.min(HEAD), HEAD, "ELF header")?;
        let elf = ElfHeader::parse(&head).during("reading the ELF header")?;
        if elf.class != vmsnap_elf::Class::Elf64 {
            return Err(Error::malformed(4, "a Xen dump-core is ELF64 (ELFCLASS64)"));
        }
        let sections = read_sections(lower, &elf).during("reading the section headers")?;
        let need = |name: &str| {
            find(&sections, name).cloned().ok_or_else(|| {
                Error::malformed(
                    elf.shoff,
                    format!(
                        "no {name} section: not a Xen dump-core (docs/misc/dump-core-format.txt)"
                    ),
                )
            })
        };
        let note_sec = need(SEC_NOTE)?;
        let pages = need(SEC_PAGES)?;
        let table =
            match (find(&sections, SEC_P2M), find(&sections, SEC_PFN)) {
                (Some(_), Some(_)) => {
                    return Err(Error::malformed(
                        elf.shoff,
                        "both .xen_p2m and .xen_pfn sections: the page frames have two meanings",
                    ))
                }
                (Some(_), None) => Table::P2m,
                (None, Some(_)) => Table::Pfn,
                (None, None) => return Err(Error::malformed(
                    elf.shoff,
                    "neither a .xen_p2m nor a .xen_pfn section: the page frames have no addresses",
                )),
            };
        let table_section = need(table.section())?;
        let range = note_sec.data_range(size)?;
        let note_bytes = lower
            .read_vec(
                range.start,
                range.end - range.start,
                MAX_NOTE_BYTES,
                "the .note.Xen section",
            )
            .during("reading .note.Xen")?;
        let mut notes = Vec::new();
        parse_notes(&note_bytes, range.start, elf.endian, &mut notes)
            .during("parsing .note.Xen")?;
        let xen_note = |ty: u32| {
            notes
                .iter()
                .find(|n| n.name == XEN_NOTE_NAME && n.n_type == ty)
        };
        let hn = xen_note(XEN_ELFNOTE_DUMPCORE_HEADER).ok_or_else(|| {
            Error::malformed(
                range.start,
                "no dump-core header note (Xen, XEN_ELFNOTE_DUMPCORE_HEADER) in .note.Xen",
            )
        })?;
        let e = elf.endian;
        let hb = Bytes::new(&hn.desc, hn.desc_offset);
        if hn.desc.len() < HEADER_DESC_SIZE {
            return Err(Error::truncated(
                hn.desc_offset,
                format!(
                    "dump-core header note of {} bytes, {HEADER_DESC_SIZE} needed",
                    hn.desc.len()
                ),
            ));
        }
        let header = CoreHeader {
            magic: e.u64(&hb, 0)?,
            nr_vcpus: e.u64(&hb, 8)?,
            nr_pages: e.u64(&hb, 16)?,
            page_size: e.u64(&hb, 24)?,
        };
        if header.magic != XC_CORE_MAGIC && header.magic != XC_CORE_MAGIC_HVM {
            return Err(Error::malformed(
                hn.desc_offset,
                format!("xch_magic {:#x} is neither {XC_CORE_MAGIC:#x} (PV) nor {XC_CORE_MAGIC_HVM:#x} (HVM)", header.magic),
            ));
        }
        if !header.page_size.is_power_of_two()
            || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&header.page_size)
        {
            return Err(Error::malformed(
                hn.desc_offset + 24,
                format!("xch_page_size {:#x} is not a power of two from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}", header.page_size),
            ));
        }
        if header.nr_vcpus > MAX_VCPUS {
            return Err(
                Error::limit("xch_nr_vcpus", header.nr_vcpus, MAX_VCPUS).at(hn.desc_offset + 8)
            );
        }
        let version = xen_note(XEN_ELFNOTE_DUMPCORE_XEN_VERSION).and_then(|n| {
            let b = Bytes::new(&n.desc, n.desc_offset);
            Some(XenVersion {
                major: e.u64(&b, 0).ok()?,
                minor: e.u64(&b, 8).ok()?,
                extra: text(&b, VERSION_EXTRA_AT, VERSION_EXTRA_LEN).ok()?,
                compiler: text(&b, VERSION_COMPILER_AT, VERSION_COMPILER_LEN).ok()?,
                compile_date: text(&b, VERSION_DATE_AT, VERSION_DATE_LEN).ok()?,
                capabilities: text(&b, VERSION_CAPS_AT, VERSION_CAPS_LEN).ok()?,
                changeset: text(&b, VERSION_CHANGESET_AT, VERSION_CHANGESET_LEN).ok()?,
            })
        });
        let format_version = xen_note(XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION)
            .and_then(|n| e.u64(&Bytes::new(&n.desc, n.desc_offset), 0).ok());
        Ok(Dump {
            prstatus: find(&sections, SEC_PRSTATUS).cloned(),
            shared_info: find(&sections, SEC_SHARED_INFO).cloned(),
            elf,
            sections,
            notes,
            header,
            version,
            format_version,
            table,
            pages,
            table_section,
        })
    }

    /// Whether the domain is HVM by the header's magic.
    pub fn is_hvm(&self) -> bool {
        self.header.magic == XC_CORE_MAGIC_HVM
    }
}

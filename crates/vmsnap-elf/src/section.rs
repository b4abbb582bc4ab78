//! Section headers and their names, for both classes and byte orders.
//!
//! ELF cores normally describe memory with program headers only; section headers matter
//! to the ELF reader for the `PN_XNUM` program header count (in section 0), and to
//! formats built on ELF sections (Xen's dump-core, read by vmsnap-xen through
//! [`read_sections`]).

use vmsnap_core::{Bytes, Error, Layer, LayerExt, Result, ResultExt};

use crate::header::{Class, ElfHeader};
use crate::raw::{MAX_SECTION_HEADERS, MAX_SECTION_NAMES};

/// `e_shstrndx` value meaning "the index is in section header 0's `sh_link`".
pub const SHN_XINDEX: u16 = 0xffff;

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionHeader {
    /// Index in the section header table.
    pub index: u32,
    /// File offset of the section header itself (for error messages).
    pub at: u64,
    /// `sh_name`: offset of the name in the section-name string table.
    pub name_offset: u32,
    /// The name, once [`read_sections`] has looked it up (empty before).
    pub name: String,
    /// `sh_type`.
    pub sh_type: u32,
    /// `sh_flags`.
    pub flags: u64,
    /// `sh_addr`.
    pub addr: u64,
    /// `sh_offset`.
    pub offset: u64,
    /// `sh_size`.
    pub size: u64,
    /// `sh_link`.
    pub link: u32,
    /// `sh_info`.
    pub info: u32,
    /// `sh_addralign`.
    pub addralign: u64,
    /// `sh_entsize`.
    pub entsize: u64,
}

impl SectionHeader {
    /// Parses section header `index` from `b` (at least one entry of the class's size).
    pub fn parse(h: &ElfHeader, b: &Bytes<'_>, index: u32) -> Result<Self> {
        let e = h.endian;
        let at = b.file_offset(0);
        Ok(match h.class {
            Class::Elf64 => SectionHeader {
                index,
                at,
                name_offset: e.u32(b, 0)?,
                name: String::new(),
                sh_type: e.u32(b, 4)?,
                flags: e.u64(b, 8)?,
                addr: e.u64(b, 16)?,
                offset: e.u64(b, 24)?,
                size: e.u64(b, 32)?,
                link: e.u32(b, 40)?,
                info: e.u32(b, 44)?,
                addralign: e.u64(b, 48)?,
                entsize: e.u64(b, 56)?,
            },
            Class::Elf32 => SectionHeader {
                index,
                at,
                name_offset: e.u32(b, 0)?,
                name: String::new(),
                sh_type: e.u32(b, 4)?,
                flags: u64::from(e.u32(b, 8)?),
                addr: u64::from(e.u32(b, 12)?),
                offset: u64::from(e.u32(b, 16)?),
                size: u64::from(e.u32(b, 20)?),
                link: e.u32(b, 24)?,
                info: e.u32(b, 28)?,
                addralign: u64::from(e.u32(b, 32)?),
                entsize: u64::from(e.u32(b, 36)?),
            },
        })
    }

    /// The file range of the section's bytes, checked against a file of `file_size` bytes.
    pub fn data_range(&self, file_size: u64) -> Result<std::ops::Range<u64>> {
        match self.offset.checked_add(self.size) {
            Some(end) if end <= file_size => Ok(self.offset..end),
            _ => Err(Error::truncated(
                self.at,
                format!(
                    "section {} ({:?}): {:#x} bytes at file offset {:#x} end past the end of \
                     the file ({file_size:#x} bytes)",
                    self.index, self.name, self.size, self.offset
                ),
            )),
        }
    }
}

/// Reads section header 0 (it carries the real counts when they do not fit the ELF header).
pub fn read_section_zero(lower: &dyn Layer, h: &ElfHeader) -> Result<SectionHeader> {
    if h.shentsize < h.shdr_size() {
        return Err(Error::malformed(
            0,
            format!(
                "e_shentsize {} is below the {} bytes of a section header",
                h.shentsize,
                h.shdr_size()
            ),
        ));
    }
    let len = u64::from(h.shdr_size());
    let raw = lower
        .read_vec(h.shoff, len, len, "section header 0")
        .during("reading section header 0")?;
    SectionHeader::parse(h, &Bytes::new(&raw, h.shoff), 0)
}

/// Every section header of the file, each with its name from the section-name string
/// table. `e_shnum == 0` with a table present takes the count from section 0's `sh_size`,
/// and `e_shstrndx == SHN_XINDEX` the string table's index from its `sh_link`, as the ELF
/// specification extends them.
pub fn read_sections(lower: &dyn Layer, h: &ElfHeader) -> Result<Vec<SectionHeader>> {
    if h.shoff == 0 {
        return Ok(Vec::new());
    }
    let (count, strndx) = if h.shnum == 0 || h.shstrndx == SHN_XINDEX {
        let zero = read_section_zero(lower, h)?;
        let count = if h.shnum == 0 {
            zero.size
        } else {
            u64::from(h.shnum)
        };
        let strndx = if h.shstrndx == SHN_XINDEX {
            u64::from(zero.link)
        } else {
            u64::from(h.shstrndx)
        };
        (count, strndx)
    } else {
        (u64::from(h.shnum), u64::from(h.shstrndx))
    };
    if count == 0 {
        return Ok(Vec::new());
    }
    if count > MAX_SECTION_HEADERS {
        return Err(Error::limit("number of section headers", count, MAX_SECTION_HEADERS).at(0));
    }
    if h.shentsize < h.shdr_size() {
        return Err(Error::malformed(
            0,
            format!(
                "e_shentsize {} is below the {} bytes of a section header",
                h.shentsize,
                h.shdr_size()
            ),
        ));
    }
    let entsize = u64::from(h.shentsize);
    // count <= 0xff00 and entsize <= 0xffff: no overflow.
    let table_len = count * entsize;
    let table = lower
        .read_vec(h.shoff, table_len, table_len, "section header table")
        .during("reading section headers")?;
    let tb = Bytes::new(&table, h.shoff);
    let mut sections = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = (i * entsize) as usize;
        sections.push(SectionHeader::parse(
            h,
            &tb.sub(at, entsize as usize)?,
            i as u32,
        )?);
    }
    if strndx == 0 {
        return Ok(sections);
    }
    let Some(strtab) = sections.get(strndx as usize) else {
        return Err(Error::malformed(
            0,
            format!("e_shstrndx {strndx} names no section (there are {count})"),
        ));
    };
    let range = strtab.data_range(lower.len())?;
    let names = lower
        .read_vec(
            range.start,
            range.end - range.start,
            MAX_SECTION_NAMES,
            "section-name string table",
        )
        .during("reading section names")?;
    for s in &mut sections {
        s.name = name_at(&names, s.name_offset).ok_or_else(|| {
            Error::malformed(
                s.at,
                format!(
                    "section {}: sh_name {} lies outside the {}-byte section-name table",
                    s.index,
                    s.name_offset,
                    names.len()
                ),
            )
        })?;
    }
    Ok(sections)
}

/// The NUL-terminated string at `offset` of a string table (to the end when unterminated).
fn name_at(table: &[u8], offset: u32) -> Option<String> {
    let rest = table.get(offset as usize..)?;
    let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
    Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
}

/// The first section named `name`.
pub fn find<'a>(sections: &'a [SectionHeader], name: &str) -> Option<&'a SectionHeader> {
    sections.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_nul_terminated_and_bounded() {
        let t = b"\0.shstrtab\0.xen_pages";
        assert_eq!(name_at(t, 1).unwrap(), ".shstrtab");
        assert_eq!(name_at(t, 11).unwrap(), ".xen_pages");
        assert_eq!(name_at(t, 0).unwrap(), "");
        assert_eq!(name_at(t, t.len() as u32).unwrap(), "");
        assert!(name_at(t, t.len() as u32 + 1).is_none());
    }
}

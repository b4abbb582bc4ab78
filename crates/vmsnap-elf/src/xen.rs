//! Recognising Xen dump-core files (`xl dump-core`, libxenguest's `xc_domain_dumpcore`):
//! ELF64 cores with no program headers whose sections hold the guest's pages and a
//! `.note.Xen` note section. The `xen` plugin (vmsnap-xen) reads them; the ELF reader
//! declines them, and opening one as an ELF core fails with an `Unsupported` error naming
//! that plugin.
//!
//! The layout is Xen's `docs/misc/dump-core-format.txt`: the section headers follow the
//! ELF header, then the `.note.Xen` section, whose notes are named `Xen` with types
//! `XEN_ELFNOTE_DUMPCORE_*` (`xen/include/public/elfnote.h`). Recognition reads only
//! the head of the file: the ELF header, the section headers and the first note.

use vmsnap_core::{Bytes, Error, Result};

use crate::header::{Class, ElfHeader};
use crate::note::parse_notes;
use crate::raw::{ET_CORE, SHT_NOTE};
use crate::section::SectionHeader;

/// Owner name of the dump-core notes.
pub const XEN_NOTE_NAME: &str = "Xen";
/// `XEN_ELFNOTE_DUMPCORE_NONE`.
pub const XEN_ELFNOTE_DUMPCORE_NONE: u32 = 0x0200_0000;
/// `XEN_ELFNOTE_DUMPCORE_HEADER`.
pub const XEN_ELFNOTE_DUMPCORE_HEADER: u32 = 0x0200_0001;
/// `XEN_ELFNOTE_DUMPCORE_XEN_VERSION`.
pub const XEN_ELFNOTE_DUMPCORE_XEN_VERSION: u32 = 0x0200_0002;
/// `XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION`.
pub const XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION: u32 = 0x0200_0003;

/// Most section headers looked at while recognising (xc_core writes six or seven).
const MAX_PROBED_SECTIONS: u64 = 64;

/// Whether `head` (the first bytes of a file) is a Xen dump-core: an ELF64 core with no
/// program headers and a note section, within `head`, whose first note is a `Xen`
/// dump-core note.
pub fn detect(head: &[u8]) -> bool {
    let Ok(h) = ElfHeader::parse(head) else {
        return false;
    };
    if h.class != Class::Elf64 || h.e_type != ET_CORE || h.phnum_raw != 0 || h.shoff == 0 {
        return false;
    }
    if h.shentsize < h.shdr_size() {
        return false;
    }
    let b = Bytes::new(head, 0);
    let entsize = u64::from(h.shentsize);
    for i in 0..u64::from(h.shnum).min(MAX_PROBED_SECTIONS) {
        let Some(at) = i
            .checked_mul(entsize)
            .and_then(|o| o.checked_add(h.shoff))
            .and_then(|o| usize::try_from(o).ok())
        else {
            return false;
        };
        let Ok(sb) = b.sub(at, usize::from(h.shdr_size())) else {
            return false;
        };
        let Ok(s) = SectionHeader::parse(&h, &sb, i as u32) else {
            return false;
        };
        if s.sh_type == SHT_NOTE && first_note_is_xen(head, &h, &s) {
            return true;
        }
    }
    false
}

fn first_note_is_xen(head: &[u8], h: &ElfHeader, s: &SectionHeader) -> bool {
    let (Ok(start), Ok(len)) = (usize::try_from(s.offset), usize::try_from(s.size)) else {
        return false;
    };
    // The first note only: a header, "Xen\0" and an empty or small descriptor.
    let Some(data) = start
        .checked_add(len.min(64))
        .and_then(|end| head.get(start..end))
    else {
        return false;
    };
    let mut notes = Vec::new();
    // A note cut by the 64-byte window is an error: fall back to the header alone.
    let _ = parse_notes(data, s.offset, h.endian, &mut notes);
    notes.first().is_some_and(|n| {
        n.name == XEN_NOTE_NAME
            && (XEN_ELFNOTE_DUMPCORE_NONE..=XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION).contains(&n.n_type)
    })
}

/// Fails with the Unsupported error when `head` is a Xen dump-core.
pub fn refuse(head: &[u8]) -> Result<()> {
    if detect(head) {
        return Err(Error::unsupported(
            "Xen dump-core file (section headers .note.Xen, .xen_pages, .xen_p2m/.xen_pfn, \
             no program headers) is not a plain ELF core; the xen plugin reads it \
             (--format xen)",
        )
        .at(0));
    }
    Ok(())
}

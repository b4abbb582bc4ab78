//! ELF notes: the generic `(name, type, desc)` records of PT_NOTE segments.

use vmsnap_core::{Bytes, Error, Result};

use crate::header::Endian;
use crate::raw::{MAX_NOTES, NHDR_SIZE};

/// One note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Owner name without the trailing NULs (`CORE`, `QEMU`, `VMCOREINFO` …).
    pub name: String,
    /// `n_type`.
    pub n_type: u32,
    /// File offset of the descriptor.
    pub desc_offset: u64,
    /// The descriptor bytes.
    pub desc: Vec<u8>,
}

fn align4(n: u64) -> u64 {
    // n < 2^32 here, so this cannot overflow.
    (n + 3) & !3
}

/// Parses the notes of one PT_NOTE segment whose bytes are `data`, read from file
/// offset `base`. A note that does not fit is an error naming its sizes; an all-zero
/// header (padding some writers leave at the end) ends the list.
pub fn parse_notes(data: &[u8], base: u64, e: Endian, out: &mut Vec<Note>) -> Result<()> {
    let b = Bytes::new(data, base);
    let mut pos = 0usize;
    while pos < data.len() {
        let left = data.len() - pos;
        if left < NHDR_SIZE {
            // Trailing bytes too short for a header: padding.
            break;
        }
        let namesz = e.u32(&b, pos)?;
        let descsz = e.u32(&b, pos + 4)?;
        let n_type = e.u32(&b, pos + 8)?;
        if namesz == 0 && descsz == 0 && n_type == 0 {
            break;
        }
        let name_len = align4(u64::from(namesz));
        let desc_len = align4(u64::from(descsz));
        let need = (NHDR_SIZE as u64) + name_len + desc_len;
        if need > left as u64 {
            return Err(Error::malformed(
                b.file_offset(pos),
                format!(
                    "note declares a {namesz}-byte name and a {descsz}-byte descriptor \
                     ({need} bytes with padding) but only {left} bytes of the note segment remain"
                ),
            ));
        }
        if out.len() >= MAX_NOTES {
            return Err(Error::limit(
                "number of notes",
                out.len() as u64 + 1,
                MAX_NOTES as u64,
            ));
        }
        // Both fit in `left`, itself a usize.
        let name_at = pos + NHDR_SIZE;
        let name_raw = b.slice(name_at, namesz as usize)?;
        let name = String::from_utf8_lossy(name_raw)
            .trim_end_matches('\0')
            .to_string();
        let desc_at = name_at + name_len as usize;
        let desc = b.slice(desc_at, descsz as usize)?.to_vec();
        out.push(Note {
            name,
            n_type,
            desc_offset: b.file_offset(desc_at),
            desc,
        });
        pos = pos.saturating_add(need as usize);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(name);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn parses_padded_notes_and_stops_at_zero_header() {
        let mut d = note(b"CORE\0", 1, &[1, 2, 3]);
        d.extend(note(b"VMCOREINFO\0", 0, b"A=1\n"));
        d.extend([0u8; 16]);
        let mut out = Vec::new();
        parse_notes(&d, 0x100, Endian { big: false }, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].name, "CORE");
        assert_eq!(out[0].desc, vec![1, 2, 3]);
        assert_eq!(out[0].desc_offset, 0x100 + 12 + 8);
        assert_eq!(out[1].name, "VMCOREINFO");
        assert_eq!(out[1].desc, b"A=1\n".to_vec());
    }

    #[test]
    fn overflowing_sizes_are_malformed() {
        let mut d = Vec::new();
        d.extend_from_slice(&u32::MAX.to_le_bytes());
        d.extend_from_slice(&u32::MAX.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend([0u8; 20]);
        let mut out = Vec::new();
        let e = parse_notes(&d, 0, Endian { big: false }, &mut out).unwrap_err();
        assert_eq!(e.kind(), vmsnap_core::ErrorKind::Malformed);
        assert_eq!(e.context().offset, Some(0));
    }
}

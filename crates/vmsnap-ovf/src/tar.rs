//! The tar archive an OVA is: ustar (POSIX.1-1988) and GNU headers, pax extended headers
//! (`x` records `path` and `size`; global `g` headers are skipped) and GNU long names
//! (`L`). Each header's checksum is verified, sizes are octal or GNU base-256, every
//! member must lie inside the file, and at most [`MAX_MEMBERS`] are read.

use serde_json::{json, Value};
use vmsnap_core::{Error, Layer, LayerExt, Result};

use crate::raw::{tar, BLOCK, MAX_EXTENDED_HEADER, MAX_MEMBERS};

/// What a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (`0`, NUL, or `7` contiguous).
    File,
    /// Anything else (directory, link, device, FIFO, sparse…): never read.
    Other(u8),
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The name (pax `path`, GNU long name, or ustar `prefix/name`).
    pub name: String,
    /// Where its header starts.
    pub header: u64,
    /// Where its data starts.
    pub offset: u64,
    /// Its size.
    pub size: u64,
    /// What it is.
    pub kind: Kind,
}

impl Member {
    /// Why this member cannot be a file of the package: not a regular file, or a name
    /// with `/`, `..`, or absolute (DSP0243: every file of an OVA is in its top level).
    pub fn refused(&self) -> Option<String> {
        if let Kind::Other(t) = self.kind {
            return Some(format!(
                "member {:?} is not a regular file (type {:?})",
                self.name,
                char::from(t)
            ));
        }
        let n = &self.name;
        if n.is_empty() || n.contains('/') || n.contains('\\') || n == "." || n == ".." {
            return Some(format!(
                "member name {n:?} is not a plain file name (a path, absolute, or ..)"
            ));
        }
        None
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "header": self.header,
            "offset": self.offset,
            "size": self.size,
            "regular": self.kind == Kind::File,
        })
    }
}

/// A number field: octal digits (leading spaces, ended by NUL or space), or GNU base-256
/// (top bit of the first byte set, big-endian, positive).
fn number(field: &[u8], at: u64, what: &str) -> Result<u64> {
    if let Some((&first, rest)) = field.split_first() {
        if first & 0x80 != 0 {
            if first & 0x40 != 0 {
                return Err(Error::malformed(at, format!("negative base-256 {what}")));
            }
            let mut n: u64 = u64::from(first & 0x3f);
            for &b in rest {
                n = n
                    .checked_mul(256)
                    .and_then(|n| n.checked_add(u64::from(b)))
                    .ok_or_else(|| Error::malformed(at, format!("base-256 {what} overflows")))?;
            }
            return Ok(n);
        }
    }
    let mut n: u64 = 0;
    let mut digits = 0;
    for &b in field.iter().skip_while(|&&b| b == b' ') {
        match b {
            b'0'..=b'7' => {
                n = n
                    .checked_mul(8)
                    .and_then(|n| n.checked_add(u64::from(b - b'0')))
                    .ok_or_else(|| Error::malformed(at, format!("octal {what} overflows")))?;
                digits += 1;
            }
            0 | b' ' => break,
            _ => return Err(Error::malformed(at, format!("{what} is not octal"))),
        }
    }
    if digits == 0 {
        return Err(Error::malformed(at, format!("{what} is empty")));
    }
    Ok(n)
}

fn field(h: &[u8], (at, len): (usize, usize)) -> &[u8] {
    h.get(at..at + len).unwrap_or_default()
}

/// The text of a NUL-terminated field.
fn string(f: &[u8]) -> String {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8_lossy(f.get(..end).unwrap_or_default()).into_owned()
}

/// Whether the header's checksum (the unsigned sum of its bytes, the checksum field
/// counted as spaces) is the one it records.
fn checksum_ok(h: &[u8], at: u64) -> Result<bool> {
    let (c, l) = tar::CHKSUM;
    let recorded = number(field(h, tar::CHKSUM), at + c as u64, "header checksum")?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (c..c + l).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(b)
            }
        })
        .sum();
    Ok(sum == recorded)
}

/// Whether a 512-byte block is a tar header: the `ustar` magic and a good checksum.
pub fn is_header(h: &[u8]) -> bool {
    h.len() == BLOCK as usize
        && field(h, tar::MAGIC) == b"ustar"
        && checksum_ok(h, 0).unwrap_or(false)
}

/// The `path` and `size` records of a pax extended header (`"<len> <key>=<value>\n"`).
fn pax(data: &[u8], at: u64) -> Result<(Option<String>, Option<u64>)> {
    let (mut path, mut size) = (None, None);
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| Error::malformed(at, "pax record without a length"))?;
        let len: usize = std::str::from_utf8(rest.get(..sp).unwrap_or_default())
            .ok()
            .and_then(|t| t.parse().ok())
            .filter(|&l| l > sp + 1 && l <= rest.len())
            .ok_or_else(|| Error::malformed(at, "pax record length is not a fitting number"))?;
        let rec = rest.get(sp + 1..len).unwrap_or_default();
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            let (k, v) = (
                rec.get(..eq).unwrap_or_default(),
                rec.get(eq + 1..).unwrap_or_default(),
            );
            match k {
                b"path" => path = Some(String::from_utf8_lossy(v).into_owned()),
                b"size" => {
                    size = Some(
                        std::str::from_utf8(v)
                            .ok()
                            .and_then(|t| t.parse().ok())
                            .ok_or_else(|| Error::malformed(at, "pax size is not a number"))?,
                    );
                }
                _ => {}
            }
        }
        rest = rest.get(len..).unwrap_or_default();
    }
    Ok((path, size))
}

/// Rounds `n` up to a whole block.
fn blocks(n: u64) -> Option<u64> {
    n.checked_add(BLOCK - 1).map(|x| x / BLOCK * BLOCK)
}

/// Reads every member's header from `file`: the archive ends at two zero blocks, or at
/// the end of the file on a block boundary.
pub fn members(file: &dyn Layer) -> Result<Vec<Member>> {
    let size = file.len();
    let mut out: Vec<Member> = Vec::new();
    let mut at: u64 = 0;
    let (mut long_name, mut pax_path, mut pax_size): (Option<String>, Option<String>, Option<u64>) =
        (None, None, None);
    let mut headers = 0usize;
    loop {
        if at == size {
            break;
        }
        let end = at.checked_add(BLOCK).filter(|&e| e <= size);
        if end.is_none() {
            return Err(Error::truncated(
                at,
                "tar header cut short by the end of the file",
            ));
        }
        let h: [u8; BLOCK as usize] = file.read_array(at)?;
        if h.iter().all(|&b| b == 0) {
            break;
        }
        headers += 1;
        if headers > MAX_MEMBERS * 3 {
            return Err(Error::limit("tar headers", headers as u64, MAX_MEMBERS as u64 * 3).at(at));
        }
        if field(&h, tar::MAGIC) != b"ustar" {
            return Err(Error::malformed(
                at + tar::MAGIC.0 as u64,
                "no ustar magic in a tar header",
            ));
        }
        if !checksum_ok(&h, at)? {
            return Err(Error::malformed(
                at + tar::CHKSUM.0 as u64,
                "tar header checksum mismatch",
            ));
        }
        let header_size = number(field(&h, tar::SIZE), at + tar::SIZE.0 as u64, "member size")?;
        let typeflag = h.get(tar::TYPEFLAG).copied().unwrap_or(0);
        let data = at + BLOCK;
        let size_now = match typeflag {
            b'x' | b'g' | b'L' | b'K' => header_size,
            _ => pax_size.take().unwrap_or(header_size),
        };
        let next = blocks(size_now)
            .and_then(|b| data.checked_add(b))
            .ok_or_else(|| Error::malformed(at, "member size overflows"))?;
        if data.checked_add(size_now).is_none_or(|e| e > size) {
            return Err(Error::truncated(
                at,
                format!("tar member of {size_now} bytes at {data} runs past the end of the file ({size})"),
            ));
        }
        match typeflag {
            b'x' | b'g' | b'L' | b'K' => {
                if size_now > MAX_EXTENDED_HEADER {
                    return Err(
                        Error::limit("tar extended header", size_now, MAX_EXTENDED_HEADER).at(at),
                    );
                }
                let body =
                    file.read_vec(data, size_now, MAX_EXTENDED_HEADER, "tar extended header")?;
                match typeflag {
                    b'x' => {
                        let (p, s) = pax(&body, data)?;
                        pax_path = p.or(pax_path);
                        pax_size = s.or(pax_size);
                    }
                    b'L' => long_name = Some(string(&body)),
                    _ => {}
                }
            }
            t => {
                if out.len() >= MAX_MEMBERS {
                    return Err(Error::limit(
                        "tar members",
                        out.len() as u64 + 1,
                        MAX_MEMBERS as u64,
                    )
                    .at(at));
                }
                let ustar_name = {
                    let name = string(field(&h, tar::NAME));
                    let posix = field(&h, tar::VERSION) == b"00";
                    let prefix = if posix {
                        string(field(&h, tar::PREFIX))
                    } else {
                        String::new()
                    };
                    if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}/{name}")
                    }
                };
                let name = pax_path.take().or(long_name.take()).unwrap_or(ustar_name);
                let name = name.strip_prefix("./").map(str::to_string).unwrap_or(name);
                out.push(Member {
                    name,
                    header: at,
                    offset: data,
                    size: size_now,
                    kind: if matches!(t, b'0' | 0 | b'7') {
                        Kind::File
                    } else {
                        Kind::Other(t)
                    },
                });
            }
        }
        at = next;
        if at > size {
            return Err(Error::truncated(
                at,
                "the last tar member's padding runs past the end",
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(b"00000001750\0", 0, "x").unwrap(), 1000);
        assert_eq!(number(b"  1750 ", 0, "x").unwrap(), 1000);
        assert_eq!(
            number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], 0, "x").unwrap(),
            256
        );
        assert!(number(&[0xff; 12], 0, "x").is_err());
        assert!(number(
            &[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            0,
            "x"
        )
        .is_err());
        assert!(number(b"0009", 0, "x").is_err());
        assert!(number(b"\0\0", 0, "x").is_err());
    }

    #[test]
    fn pax_records() {
        let (p, s) = pax(b"15 path=a.vmdk\n11 size=99\n", 0).unwrap();
        assert_eq!(p.as_deref(), Some("a.vmdk"));
        assert_eq!(s, Some(99));
        assert!(pax(b"99 path=a\n", 0).is_err());
        assert!(pax(b"x", 0).is_err());
    }
}

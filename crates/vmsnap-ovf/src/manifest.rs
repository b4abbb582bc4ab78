//! The package manifest (`.mf`): one `ALG(name)= hex` line per file (DSP0243 § 5.1;
//! ovftool and VirtualBox write `SHA1(…)= ` or `SHA256(…)= `).

use serde_json::{json, Value};

use crate::digest::Algorithm;

/// One line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The digest.
    pub algorithm: Algorithm,
    /// The file name.
    pub name: String,
    /// The recorded digest, lower-case hex.
    pub digest: String,
}

/// A parsed manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The digest lines.
    pub entries: Vec<Entry>,
    /// Lines that are not `ALG(name)= hex` with a known algorithm and a digest of its
    /// length (1-based line numbers).
    pub bad_lines: Vec<usize>,
}

impl Manifest {
    /// Parses the manifest text (invalid UTF-8 is replaced, so those lines are bad).
    pub fn parse(bytes: &[u8]) -> Manifest {
        let text = String::from_utf8_lossy(bytes);
        let mut m = Manifest::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Some(e) => m.entries.push(e),
                None => m.bad_lines.push(i + 1),
            }
        }
        m
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "entries": self.entries.iter().map(|e| json!({
                "algorithm": e.algorithm.name(), "file": e.name, "digest": e.digest,
            })).collect::<Vec<_>>(),
            "bad_lines": self.bad_lines,
        })
    }
}

fn parse_line(line: &str) -> Option<Entry> {
    let open = line.find('(')?;
    let close = line.rfind(")=").or_else(|| line.rfind(')'))?;
    let algorithm = Algorithm::from_name(line.get(..open)?.trim())?;
    let name = line.get(open + 1..close)?.to_string();
    let digest = line
        .get(close + 1..)?
        .trim_start_matches(')')
        .trim()
        .strip_prefix('=')?
        .trim()
        .to_ascii_lowercase();
    let ok =
        digest.len() == algorithm.digest_len() * 2 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(Entry {
        algorithm,
        name,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let m = Manifest::parse(
            b"SHA256(a.ovf)= 0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF\n\
              SHA1(b.vmdk) = 0123456789abcdef0123456789abcdef01234567\nMD5(c)= 00\n",
        );
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].name, "a.ovf");
        assert!(m.entries[0].digest.ends_with("abcdef"));
        assert_eq!(m.entries[1].algorithm, Algorithm::Sha1);
        assert_eq!(m.bad_lines, vec![3]);
    }
}

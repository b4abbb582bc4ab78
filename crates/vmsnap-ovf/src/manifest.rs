//! The package manifest (`.mf`): one `ALG(name)= hex` line per file (DSP0243 § 5.1;
//! ovftool and VirtualBox write `SHA1(…)= ` or `SHA256(…)= `).

use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{Finding, Layer, Result};

use crate::digest::{hex, Algorithm, Hasher};
use crate::raw::MAX_DIGESTED;
use crate::rule::MANIFEST;

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

/// Verifies `manifest` (its file name and content; `None`: the package has none) against
/// `files` (each file of the package by name; the manifest itself is one of them), at most
/// [`MAX_DIGESTED`] bytes hashed: a digest that does not match, or a listed file that is
/// not there, is unsafe; no manifest, a bad line, a digest not verified, or a file the
/// manifest does not list (other than itself and `exempt`) is a warning. Also the result
/// of each entry as JSON.
pub fn verify(
    manifest: Option<&(String, Manifest)>,
    files: &[(String, Arc<dyn Layer>)],
    exempt: &[&str],
) -> (Vec<Finding>, Value) {
    let Some((mf_name, mf)) = manifest else {
        return (
            vec![Finding::warning(
                MANIFEST,
                "the package has no manifest (.mf): its files' integrity is not checkable",
            )],
            Value::Null,
        );
    };
    let mut findings = Vec::new();
    if !mf.bad_lines.is_empty() {
        findings.push(Finding::warning(
            MANIFEST,
            format!("{mf_name}: lines {:?} are not ALG(name)= hex", mf.bad_lines),
        ));
    }
    let mut budget = MAX_DIGESTED;
    let mut results = Vec::new();
    for e in &mf.entries {
        let file = files.iter().find(|(n, _)| *n == e.name).map(|(_, l)| l);
        let verdict = match file {
            None => {
                findings.push(Finding::unsafe_(
                    MANIFEST,
                    format!("{mf_name} lists {:?}, which is not in the package", e.name),
                ));
                "missing"
            }
            Some(l) if l.len() > budget => {
                findings.push(Finding::warning(
                    MANIFEST,
                    format!(
                        "{:?}: not verified (more than {MAX_DIGESTED} bytes hashed in all)",
                        e.name
                    ),
                ));
                "not verified"
            }
            Some(l) => {
                budget -= l.len();
                match digest(l.as_ref(), e.algorithm) {
                    Ok(d) if d == e.digest => "ok",
                    Ok(d) => {
                        findings.push(Finding::unsafe_(
                            MANIFEST,
                            format!(
                                "{:?}: {} digest {d} is not the manifest's {}",
                                e.name,
                                e.algorithm.name(),
                                e.digest
                            ),
                        ));
                        "mismatch"
                    }
                    Err(err) => {
                        findings.push(Finding::warning(
                            MANIFEST,
                            format!("{:?}: not verified: {err}", e.name),
                        ));
                        "not verified"
                    }
                }
            }
        };
        results.push(json!({"file": e.name, "algorithm": e.algorithm.name(), "result": verdict}));
    }
    for (name, _) in files {
        let covered = mf.entries.iter().any(|e| e.name == *name);
        if !covered && name != mf_name && !exempt.contains(&name.as_str()) {
            findings.push(Finding::warning(
                MANIFEST,
                format!("{name:?} is not in the manifest"),
            ));
        }
    }
    (findings, json!(results))
}

/// The digest of all of `file`, read in 1 MiB pieces.
fn digest(file: &dyn Layer, alg: Algorithm) -> Result<String> {
    const PIECE: u64 = 1 << 20;
    let mut h = Hasher::new(alg);
    let mut buf = vec![0u8; PIECE as usize];
    let mut done = 0u64;
    while done < file.len() {
        let n = (file.len() - done).min(PIECE);
        let b = buf.get_mut(..n as usize).unwrap_or_default();
        file.read_at(done, b)?;
        h.update(b);
        done += n;
    }
    Ok(hex(&h.finish()))
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

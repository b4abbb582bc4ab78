//! VMware's dictionary text (`.vmx`, `.vmsd`): `key = "value"` lines, parsed without
//! failing. What does not fit the dialect (see [`crate::raw`]) is kept out of the
//! dictionary and reported as a finding.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use vmsnap_core::Finding;

use crate::rule::DICTIONARY;

/// One `key = "value"` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key as written (case kept).
    pub key: String,
    /// The value with its quotes removed, as written (`|XX` escapes kept): what
    /// dissect.hypervisor's `VMX.attr` holds for it.
    pub raw: String,
    /// The value with `|XX` escapes decoded.
    pub value: String,
    /// Byte offset of the line in the file.
    pub offset: u64,
}

/// A parsed dictionary: its entries in file order (the last of a repeated key wins, as in
/// dissect and VMware), looked up without regard to case.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    entries: Vec<Entry>,
    index: BTreeMap<String, usize>,
    /// The `.encoding` the file declares.
    pub encoding: Option<String>,
    /// Lines that do not fit the dialect, repeated keys, bad escapes.
    pub findings: Vec<Finding>,
}

impl Dictionary {
    /// Parses dictionary text (the caller bounds its size).
    pub fn parse(bytes: &[u8]) -> Dictionary {
        let mut d = Dictionary::default();
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let mut offset = 0u64;
        for line in bytes.split(|&b| b == b'\n') {
            let at = offset;
            offset = offset.saturating_add(line.len() as u64 + 1);
            let text = decode_line(line, at, &mut d.findings);
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let Some((key, value)) = text.split_once('=') else {
                d.findings.push(
                    Finding::warning(DICTIONARY, format!("line without '=' ignored: {text:?}"))
                        .at(at),
                );
                continue;
            };
            let key = key.trim();
            if key.is_empty() {
                d.findings
                    .push(Finding::warning(DICTIONARY, "line with an empty key ignored").at(at));
                continue;
            }
            let raw = unquote(value.trim(), at, &mut d.findings);
            let value = unescape(&raw, at, &mut d.findings);
            d.insert(Entry {
                key: key.to_string(),
                raw,
                value,
                offset: at,
            });
        }
        d.encoding = d.get(".encoding").map(str::to_string);
        d
    }

    fn insert(&mut self, e: Entry) {
        let lower = e.key.to_ascii_lowercase();
        let at = e.offset;
        match self.index.get(&lower) {
            Some(&i) => {
                self.findings.push(
                    Finding::info(
                        DICTIONARY,
                        format!("key {:?} repeated; the last value is used", e.key),
                    )
                    .at(at),
                );
                if let Some(slot) = self.entries.get_mut(i) {
                    *slot = e;
                }
            }
            None => {
                self.index.insert(lower, self.entries.len());
                self.entries.push(e);
            }
        }
    }

    /// The entry of `key` (any case).
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        let i = *self.index.get(&key.to_ascii_lowercase())?;
        self.entries.get(i)
    }

    /// The decoded value of `key` (any case).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entry(key).map(|e| e.value.as_str())
    }

    /// Whether `key` is `TRUE` (any case), VMware's boolean spelling.
    pub fn is_true(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Every key (lower case) with its decoded value, as JSON.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for e in &self.entries {
            m.insert(e.key.to_ascii_lowercase(), Value::String(e.value.clone()));
        }
        Value::Object(m)
    }

    /// Every key (lower case) with the value as dissect.hypervisor keeps it (escapes not
    /// decoded).
    pub fn raw_map(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|e| (e.key.to_ascii_lowercase(), e.raw.clone()))
            .collect()
    }
}

/// The line as text: UTF-8, or each byte as the Latin-1 character when it is not (with a
/// finding), so nothing is lost.
fn decode_line(line: &[u8], at: u64, findings: &mut Vec<Finding>) -> String {
    match std::str::from_utf8(line) {
        Ok(s) => s.to_string(),
        Err(_) => {
            findings
                .push(Finding::warning(DICTIONARY, "line is not UTF-8; read as Latin-1").at(at));
            line.iter().map(|&b| char::from(b)).collect()
        }
    }
}

/// The value between its quotes; an unquoted value as it stands. A `#` comment after the
/// closing quote is dropped.
fn unquote(v: &str, at: u64, findings: &mut Vec<Finding>) -> String {
    let Some(rest) = v.strip_prefix('"') else {
        return v.to_string();
    };
    match rest.rfind('"') {
        Some(end) => {
            let (inner, tail) = rest.split_at(end);
            let tail = tail.get(1..).unwrap_or("").trim();
            if !tail.is_empty() && !tail.starts_with('#') {
                findings.push(
                    Finding::warning(
                        DICTIONARY,
                        format!("text after the closing quote ignored: {tail:?}"),
                    )
                    .at(at),
                );
            }
            inner.to_string()
        }
        None => {
            findings.push(Finding::warning(DICTIONARY, "value without a closing quote").at(at));
            rest.to_string()
        }
    }
}

/// Decodes `|XX` escapes (two hex digits: one byte); a `|` not followed by two hex digits
/// stays as it is, with a finding.
fn unescape(raw: &str, at: u64, findings: &mut Vec<Finding>) -> String {
    if !raw.contains('|') {
        return raw.to_string();
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut bad = false;
    while let Some(&c) = b.get(i) {
        if c == b'|' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
            bad = true;
        }
        out.push(c);
        i += 1;
    }
    if bad {
        findings.push(
            Finding::warning(DICTIONARY, "'|' not followed by two hex digits kept as is").at(at),
        );
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => {
            findings.push(
                Finding::warning(DICTIONARY, "escaped bytes are not UTF-8; read as Latin-1").at(at),
            );
            e.into_bytes().iter().map(|&b| char::from(b)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialect() {
        let d = Dictionary::parse(
            b"\xef\xbb\xbf.encoding = \"UTF-8\"\r\n# comment\n\nDisplayName = \"a |22b|22 |7C c\"\n\
              scsi0:0.present = TRUE\nbad line\nx = \"1\" # note\nx = \"2\"\ny = \"|zz\"\n",
        );
        assert_eq!(d.encoding.as_deref(), Some("UTF-8"));
        assert_eq!(d.get("displayname"), Some("a \"b\" | c"));
        assert_eq!(d.entry("DISPLAYNAME").unwrap().raw, "a |22b|22 |7C c");
        assert_eq!(d.get("scsi0:0.present"), Some("TRUE"));
        assert_eq!(d.is_true("scsi0:0.present"), Some(true));
        assert_eq!(d.get("x"), Some("2"));
        assert_eq!(d.get("y"), Some("|zz"));
        assert_eq!(d.entries().len(), 5);
        assert_eq!(d.findings.len(), 3, "{:?}", d.findings);
    }
}

//! The text descriptor: header keys, extent lines and the disk database, with the oslo
//! checks V2–V6 recorded as findings while parsing.

use std::collections::BTreeMap;

use serde_json::json;
use vmsnap_core::{Error, Finding, Result};

use crate::raw::MAX_EXTENTS;

/// Access mode of an extent line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// `RW`.
    Rw,
    /// `RDONLY`.
    RdOnly,
    /// `NOACCESS`.
    NoAccess,
}

/// One extent line: `ACCESS SIZE TYPE "NAME" [OFFSET]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    /// Access mode.
    pub access: Access,
    /// Size in sectors.
    pub sectors: u64,
    /// Type, upper-case (`FLAT`, `SPARSE`, `ZERO`, `VMFS`, `VMFSSPARSE`, `SESPARSE` …).
    pub kind: String,
    /// File name as written (empty for `ZERO`).
    pub name: String,
    /// Offset in sectors into the file (FLAT).
    pub offset: Option<u64>,
    /// 1-based line number.
    pub line: usize,
}

/// A parsed descriptor.
#[derive(Debug, Clone, Default)]
pub struct Descriptor {
    /// `key=value` header lines in order (values unquoted).
    pub keys: Vec<(String, String)>,
    /// Extent lines.
    pub extents: Vec<ExtentLine>,
    /// `ddb.*` entries.
    pub ddb: BTreeMap<String, String>,
    /// Findings made while parsing (rule `descriptor`).
    pub findings: Vec<Finding>,
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

impl Descriptor {
    /// Parses descriptor text (bytes after the first NUL are ignored).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = String::from_utf8_lossy(bytes.get(..end).unwrap_or_default());
        let mut d = Descriptor::default();
        let mut bad_lines = 0usize;
        let mut prev_blank = false;
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.trim_end_matches('\r').trim();
            let after_blank = std::mem::replace(&mut prev_blank, line.is_empty());
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let upper = line.to_ascii_uppercase();
            if line.starts_with("ddb") {
                if let Some((k, v)) = line.split_once('=') {
                    d.ddb.insert(k.trim().to_string(), unquote(v).to_string());
                }
            } else if upper.starts_with("RW")
                || upper.starts_with("RDONLY")
                || upper.starts_with("NOACCESS")
            {
                if d.extents.len() >= MAX_EXTENTS {
                    return Err(Error::limit(
                        "VMDK descriptor extents",
                        (d.extents.len() as u64).saturating_add(1),
                        MAX_EXTENTS as u64,
                    ));
                }
                match parse_extent(line, i.saturating_add(1)) {
                    Some(e) => {
                        // QEMU's sscanf skips the newline of a blank line and reads
                        // the next extent line twice.
                        if after_blank && e.access == Access::Rw {
                            d.findings.push(Finding::warning(
                                vmsnap_core::rule::DESCRIPTOR,
                                format!(
                                    "line {}: blank line before an extent line; QEMU reads this extent twice",
                                    i + 1
                                ),
                            ));
                        }
                        d.extents.push(e)
                    }
                    None => {
                        bad_lines = bad_lines.saturating_add(1);
                        d.findings.push(Finding::unsafe_(
                            vmsnap_core::rule::DESCRIPTOR,
                            format!("V4: line {} is not a valid extent line: {line:?}", i + 1),
                        ));
                    }
                }
            } else if let Some((k, v)) = line.split_once('=') {
                if k.trim().contains(char::is_whitespace) {
                    bad_lines = bad_lines.saturating_add(1);
                    d.findings.push(Finding::unsafe_(
                        vmsnap_core::rule::DESCRIPTOR,
                        format!("V4: invalid VMDK descriptor data at line {}", i + 1),
                    ));
                } else {
                    d.keys.push((k.trim().to_string(), unquote(v).to_string()));
                }
            } else {
                bad_lines = bad_lines.saturating_add(1);
                if bad_lines <= 16 {
                    d.findings.push(Finding::unsafe_(
                        vmsnap_core::rule::DESCRIPTOR,
                        format!("V4: invalid VMDK descriptor data at line {}", i + 1),
                    ));
                }
            }
        }
        if d.extents.iter().any(|e| e.name.contains('/')) {
            d.findings.push(Finding::unsafe_(
                vmsnap_core::rule::DESCRIPTOR,
                "V5: invalid extent filenames found (an extent name contains '/')",
            ));
        }
        if d.extents.is_empty() {
            d.findings.push(Finding::unsafe_(
                vmsnap_core::rule::DESCRIPTOR,
                "V6: no extents found",
            ));
        }
        Ok(d)
    }

    /// The value of header key `key` (case-insensitive; the last one wins, as in QEMU).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// `createType`.
    pub fn create_type(&self) -> Option<&str> {
        self.get("createType")
    }

    /// `CID`, parsed as hex.
    pub fn cid(&self) -> Option<u32> {
        self.get("CID").and_then(parse_hex)
    }

    /// `parentCID`, parsed as hex.
    pub fn parent_cid(&self) -> Option<u32> {
        self.get("parentCID").and_then(parse_hex)
    }

    /// `parentFileNameHint`.
    pub fn parent_hint(&self) -> Option<&str> {
        self.get("parentFileNameHint").filter(|s| !s.is_empty())
    }

    /// The descriptor as JSON (lossless for keys, extents and ddb).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "keys": self.keys.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "extents": self.extents.iter().map(|e| json!({
                "access": format!("{:?}", e.access).to_ascii_uppercase(),
                "sectors": e.sectors,
                "type": e.kind,
                "name": e.name,
                "offset_sectors": e.offset,
            })).collect::<Vec<_>>(),
            "ddb": self.ddb,
        })
    }
}

fn parse_hex(s: &str) -> Option<u32> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u32::from_str_radix(s, 16).ok()
}

fn parse_extent(line: &str, lineno: usize) -> Option<ExtentLine> {
    let mut rest = line;
    let mut word = || {
        let t = rest.trim_start();
        let n = t.find(char::is_whitespace).unwrap_or(t.len());
        let (w, r) = t.split_at(n);
        rest = r;
        w
    };
    let access = match word().to_ascii_uppercase().as_str() {
        "RW" => Access::Rw,
        "RDONLY" => Access::RdOnly,
        "NOACCESS" => Access::NoAccess,
        _ => return None,
    };
    let sectors: u64 = word().parse().ok()?;
    let kind = word().to_ascii_uppercase();
    if kind.is_empty() {
        return None;
    }
    let t = rest.trim_start();
    let (name, after) = if let Some(q) = t.strip_prefix('"') {
        let close = q.find('"')?;
        (q.get(..close)?, q.get(close + 1..)?)
    } else if t.is_empty() && kind == "ZERO" {
        ("", "")
    } else {
        return None;
    };
    let after = after.trim();
    let offset = if after.is_empty() {
        None
    } else {
        Some(after.split_whitespace().next()?.parse().ok()?)
    };
    Some(ExtentLine {
        access,
        sectors,
        kind,
        name: name.to_string(),
        offset,
        line: lineno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_descriptor() {
        let t = b"# Disk DescriptorFile\nversion=1\nCID=a7969283\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\nRW 131072 FLAT \"x flat.vmdk\" 0\nRW 10 ZERO\n\n#DDB\nddb.adapterType = \"ide\"\n";
        let d = Descriptor::parse(t).unwrap();
        assert_eq!(d.create_type(), Some("monolithicFlat"));
        assert_eq!(d.cid(), Some(0xa796_9283));
        assert_eq!(d.parent_cid(), Some(0xffff_ffff));
        assert_eq!(d.extents.len(), 2);
        assert_eq!(d.extents[0].name, "x flat.vmdk");
        assert_eq!(d.extents[0].offset, Some(0));
        assert_eq!(d.extents[1].kind, "ZERO");
        assert_eq!(
            d.ddb.get("ddb.adapterType").map(String::as_str),
            Some("ide")
        );
        assert!(d.findings.is_empty(), "{:?}", d.findings);
    }

    #[test]
    fn v4_v5_v6() {
        let d = Descriptor::parse(b"version=1\nbad key=1\nnonsense\n").unwrap();
        let msgs: Vec<_> = d.findings.iter().map(|f| f.message.clone()).collect();
        assert!(
            msgs.iter().filter(|m| m.starts_with("V4")).count() == 2,
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m.starts_with("V6")));
        let d = Descriptor::parse(b"version=1\nRW 8 FLAT \"/etc/passwd\" 0\n").unwrap();
        assert!(d.findings.iter().any(|f| f.message.starts_with("V5")));
    }
}

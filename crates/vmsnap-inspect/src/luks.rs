//! LUKS headers (version 1, which QEMU's `luks` driver opens, and version 2, which it
//! probes as raw): the payload offset and virtual size as `qemu-img info` reports them,
//! and OpenStack's LUKS rules (oslo.utils 10.2: `luks_version`, `luks_passphrase`).

use vmsnap_core::{Bytes, Finding, Layer, LayerExt, Result};

use crate::signature::Signature;

/// The LUKS magic, for both versions.
pub const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";
/// LUKS sectors are 512 bytes whatever the device's.
const SECTOR: u64 = 512;
/// Where the LUKS2 JSON area starts (after the 4 KiB binary header).
const LUKS2_JSON_AT: u64 = 4096;
/// The largest LUKS2 header (binary header + JSON area) the specification allows.
const LUKS2_MAX_HEADER: u64 = 4 << 20;

/// Recognises a LUKS header at the start of `file` (`head` are its first bytes).
pub fn detect(file: &dyn Layer, head: &[u8], size: u64) -> Result<Option<Signature>> {
    if head.get(..6) != Some(MAGIC.as_slice()) {
        return Ok(None);
    }
    let b = Bytes::new(head, 0);
    let Ok(version) = b.u16_be(6) else {
        return Ok(Some(short(size)));
    };
    let mut findings = Vec::new();
    if version != 1 {
        // oslo.utils 10.2 `check_version`, word for word.
        findings.push(
            Finding::unsafe_(
                crate::rule::LUKS_VERSION,
                format!("LUKS version {version} is not supported"),
            )
            .at(6),
        );
    }
    // oslo's `check_passphrase` fails only when a passphrase is given and does not open the
    // payload; vmsnap takes none, so the payload's own format is not checked.
    findings.push(Finding::info(
        crate::rule::LUKS_PASSPHRASE,
        "no passphrase given: the encrypted payload's format is not checked",
    ));
    let payload = match version {
        1 => b.u32_be(104).ok().map(|s| u64::from(s) * SECTOR),
        2 => luks2_payload(file, &b, size, &mut findings)?,
        _ => None,
    };
    let virtual_size = match payload {
        Some(p) if p <= size => Some(size - p),
        Some(p) => {
            findings.push(
                Finding::unsafe_(
                    crate::rule::LUKS_HEADER,
                    format!("payload offset {p} is past the end of the file ({size} bytes)"),
                )
                .at(104),
            );
            None
        }
        None => None,
    };
    Ok(Some(Signature {
        name: "luks",
        virtual_size,
        payload_offset: payload,
        findings,
    }))
}

fn short(size: u64) -> Signature {
    Signature {
        name: "luks",
        virtual_size: None,
        payload_offset: None,
        findings: vec![Finding::unsafe_(
            crate::rule::LUKS_HEADER,
            format!("the file ({size} bytes) ends inside the LUKS header"),
        )],
    }
}

/// The offset of the first crypt segment of a LUKS2 header, from its JSON area.
fn luks2_payload(
    file: &dyn Layer,
    b: &Bytes<'_>,
    size: u64,
    findings: &mut Vec<Finding>,
) -> Result<Option<u64>> {
    let hdr_size = b.u64_be(8).unwrap_or(0);
    let valid = hdr_size.is_power_of_two()
        && (16 << 10..=LUKS2_MAX_HEADER).contains(&hdr_size)
        && hdr_size <= size;
    if !valid {
        findings.push(
            Finding::unsafe_(
                crate::rule::LUKS_HEADER,
                format!("LUKS2 header size {hdr_size} is not a power of two from 16 KiB to 4 MiB within the file"),
            )
            .at(8),
        );
        return Ok(None);
    }
    let text = file.read_vec(
        LUKS2_JSON_AT,
        hdr_size - LUKS2_JSON_AT,
        LUKS2_MAX_HEADER,
        "LUKS2 JSON area",
    )?;
    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
    let json: Option<serde_json::Value> =
        text.get(..end).and_then(|t| serde_json::from_slice(t).ok());
    let offset = json.as_ref().and_then(|j| {
        j.get("segments")?
            .as_object()?
            .values()
            .filter(|s| s.get("type").and_then(|t| t.as_str()) == Some("crypt"))
            .filter_map(|s| s.get("offset")?.as_str()?.parse::<u64>().ok())
            .min()
    });
    if offset.is_none() {
        findings.push(
            Finding::unsafe_(
                crate::rule::LUKS_HEADER,
                "the LUKS2 JSON area has no crypt segment with an offset",
            )
            .at(LUKS2_JSON_AT),
        );
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vmsnap_core::{FileLayer, MemSource};

    fn run(bytes: Vec<u8>) -> Signature {
        let size = bytes.len() as u64;
        let head = bytes.clone();
        let file = FileLayer::new(Arc::new(MemSource::new(bytes)));
        detect(&file, &head, size).unwrap().unwrap()
    }

    #[test]
    fn luks1_payload_offset_and_version_rules() {
        let mut v = vec![0u8; 8192];
        v[..6].copy_from_slice(MAGIC);
        v[6..8].copy_from_slice(&1u16.to_be_bytes());
        v[104..108].copy_from_slice(&8u32.to_be_bytes());
        let s = run(v.clone());
        assert_eq!((s.payload_offset, s.virtual_size), (Some(4096), Some(4096)));
        assert!(s
            .findings
            .iter()
            .all(|f| f.rule == crate::rule::LUKS_PASSPHRASE));
        v[104..108].copy_from_slice(&100u32.to_be_bytes());
        let s = run(v);
        assert!(s
            .findings
            .iter()
            .any(|f| f.rule == crate::rule::LUKS_HEADER));
    }

    #[test]
    fn luks2_reads_the_crypt_segment_and_fails_the_version() {
        let mut v = vec![0u8; 64 << 10];
        v[..6].copy_from_slice(MAGIC);
        v[6..8].copy_from_slice(&2u16.to_be_bytes());
        v[8..16].copy_from_slice(&(16u64 << 10).to_be_bytes());
        let j = br#"{"segments":{"0":{"type":"crypt","offset":"32768","size":"dynamic"}}}"#;
        v[4096..4096 + j.len()].copy_from_slice(j);
        let s = run(v);
        assert_eq!(
            (s.payload_offset, s.virtual_size),
            (Some(32768), Some(32768))
        );
        let f = s
            .findings
            .iter()
            .find(|f| f.rule == crate::rule::LUKS_VERSION)
            .unwrap();
        assert_eq!(f.message, "LUKS version 2 is not supported");
    }
}

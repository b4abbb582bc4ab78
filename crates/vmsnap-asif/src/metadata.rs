//! The metadata block: a small header (`meta`) and a property list, in the reserved area
//! past the virtual size, read through the tables like any chunk.

use serde_json::{json, Value};
use vmsnap_core::{Bytes, Error, Result};

use crate::raw::{MAX_METADATA_BYTES, META_HEADER_LEN, META_MAGIC};

/// The metadata block's header and what this crate reads of its property list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Virtual offset of the block (`metadata_chunk × chunk_size`).
    pub offset: u64,
    /// `header_version`.
    pub version: u32,
    /// `header_size`: where the property list starts in the block.
    pub header_size: u32,
    /// `data_size`: bytes of the property list.
    pub data_size: u64,
    /// The property list's encoding: `xml`, `binary` or `unknown`.
    pub plist: &'static str,
    /// `internal metadata` → `stable uuid`, when the list is XML and has it.
    pub stable_uuid: Option<String>,
}

impl Metadata {
    /// Reads the block at virtual offset `offset` through `read` (which reads the disk's
    /// address space, reserved area included).
    pub fn read(offset: u64, read: impl Fn(u64, &mut [u8]) -> Result<()>) -> Result<Self> {
        let mut head = [0u8; META_HEADER_LEN];
        read(offset, &mut head)?;
        if !head.starts_with(META_MAGIC) {
            return Err(Error::malformed(
                offset,
                "the metadata block has no `meta` signature",
            ));
        }
        let b = Bytes::new(&head, offset);
        let version = b.u32_be(4)?;
        let header_size = b.u32_be(8)?;
        let data_size = b.u64_be(12)?;
        if data_size > MAX_METADATA_BYTES {
            return Err(Error::limit("ASIF metadata", data_size, MAX_METADATA_BYTES).at(offset));
        }
        let mut data = vec![0u8; data_size as usize];
        let start = offset
            .checked_add(u64::from(header_size))
            .ok_or_else(|| Error::malformed(offset, "metadata header size"))?;
        read(start, &mut data)?;
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let start = data.iter().position(|&b| b != 0).unwrap_or(end);
        let text = data.get(start..end).unwrap_or_default();
        let (plist, stable_uuid) = if text.starts_with(b"bplist") {
            ("binary", None)
        } else if text.starts_with(b"<?xml") || text.starts_with(b"<plist") {
            ("xml", stable_uuid(&String::from_utf8_lossy(text)))
        } else {
            ("unknown", None)
        };
        Ok(Metadata {
            offset,
            version,
            header_size,
            data_size,
            plist,
            stable_uuid,
        })
    }

    /// As JSON for `describe`.
    pub fn to_json(&self) -> Value {
        json!({
            "offset": self.offset,
            "version": self.version,
            "header_size": self.header_size,
            "data_size": self.data_size,
            "plist": self.plist,
            "stable_uuid": self.stable_uuid,
        })
    }
}

/// The string after `<key>stable uuid</key>` in an XML property list.
fn stable_uuid(xml: &str) -> Option<String> {
    let key = "<key>stable uuid</key>";
    let rest = xml.get(xml.find(key)? + key.len()..)?.trim_start();
    let rest = rest.strip_prefix("<string>")?;
    let value = rest.get(..rest.find("</string>")?)?.trim();
    (value.len() <= 64).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_stable_uuid() {
        let xml = "<plist><dict><key>internal metadata</key><dict>\n\t<key>stable uuid</key>\n\t\
                   <string>dc5c7a3b-1915-43c2-944d-46c6c304b3b7</string></dict></dict></plist>";
        assert_eq!(
            stable_uuid(xml).as_deref(),
            Some("dc5c7a3b-1915-43c2-944d-46c6c304b3b7")
        );
        assert_eq!(stable_uuid("<key>stable uuid</key><integer>1"), None);
    }
}

//! Parsing the descriptor as bounded XML, and reading elements and attributes by local
//! name (the namespace prefixes differ between writers: `ovf:`, `rasd:`, `sasd:`).

use roxmltree::{Document, Node};
pub use vmsnap_core::xml::{at, attr, child, children};
use vmsnap_core::Result;

use crate::raw::{MAX_XML_LEN, MAX_XML_NODES};

/// Parses `bytes` as a bounded XML document (`vmsnap_core::xml::parse`): no DTD (so no
/// entity expansion), at most [`MAX_XML_NODES`] nodes and [`MAX_XML_LEN`] bytes.
pub fn parse(bytes: &[u8]) -> Result<Document<'_>> {
    vmsnap_core::xml::parse(bytes, "OVF descriptor", MAX_XML_LEN, MAX_XML_NODES)
}

/// The trimmed text of the child `name`, if there is one and it is not empty.
pub fn text<'a>(node: Node<'a, '_>, name: &'static str) -> Option<&'a str> {
    child(node, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

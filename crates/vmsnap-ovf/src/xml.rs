//! Parsing the descriptor as bounded XML, and reading elements and attributes by local
//! name (the namespace prefixes differ between writers: `ovf:`, `rasd:`, `sasd:`).

use roxmltree::{Document, Node, ParsingOptions};
use vmsnap_core::{Error, Result};

use crate::raw::{MAX_XML_LEN, MAX_XML_NODES};

/// Parses `bytes` (UTF-8, an optional byte order mark) as XML: no DTD (so no entity
/// expansion), at most [`MAX_XML_NODES`] nodes and [`MAX_XML_LEN`] bytes.
pub fn parse(bytes: &[u8]) -> Result<Document<'_>> {
    let len = bytes.len() as u64;
    if len > MAX_XML_LEN {
        return Err(Error::limit("OVF descriptor bytes", len, MAX_XML_LEN));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::malformed(e.valid_up_to() as u64, "the OVF descriptor is not UTF-8"))?;
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, opts)
        .map_err(|e| Error::malformed(0, format!("the OVF descriptor does not parse: {e}")))
}

/// The element children of `node` whose local name is `name`.
pub fn children<'a, 'i>(
    node: Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The first element child of `node` whose local name is `name`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> Option<Node<'a, 'i>> {
    children(node, name).next()
}

/// The trimmed text of the child `name`, if there is one and it is not empty.
pub fn text<'a>(node: Node<'a, '_>, name: &'static str) -> Option<&'a str> {
    child(node, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The attribute whose local name is `name`, in any namespace (`ovf:href` and, as some
/// writers have it, `href`).
pub fn attr<'a>(node: Node<'a, '_>, name: &'static str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == name)
        .map(|a| a.value())
}

/// The byte offset of `node` in the document, for findings and errors.
pub fn at(node: Node<'_, '_>) -> u64 {
    node.range().start as u64
}

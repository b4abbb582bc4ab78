//! Parsing a bounded XML document and reading its elements with errors that name them.

use roxmltree::{Document, Node, ParsingOptions};
use vmsnap_core::{Error, Result};

use crate::raw::{MAX_XML_LEN, MAX_XML_NODES};

/// Parses `bytes` (UTF-8, an optional byte order mark) as XML: no DTD, at most
/// [`MAX_XML_NODES`] nodes, at most [`MAX_XML_LEN`] bytes.
pub fn parse(bytes: &[u8]) -> Result<Document<'_>> {
    let len = bytes.len() as u64;
    if len > MAX_XML_LEN {
        return Err(Error::limit("XML descriptor bytes", len, MAX_XML_LEN));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::malformed(e.valid_up_to() as u64, "the XML descriptor is not UTF-8"))?;
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, opts)
        .map_err(|e| Error::malformed(0, format!("the XML descriptor does not parse: {e}")))
}

/// The element children of `node` named `name`.
pub fn children<'a, 'i>(
    node: Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The first element child of `node` named `name`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> Option<Node<'a, 'i>> {
    children(node, name).next()
}

/// The first element child named `name`, or an error naming it and its parent.
pub fn required<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> Result<Node<'a, 'i>> {
    child(node, name).ok_or_else(|| {
        Error::malformed(
            at(node),
            format!("<{}> has no <{name}>", node.tag_name().name()),
        )
    })
}

/// The trimmed text of the child `name`, if there is one (empty text is `Some("")`).
pub fn text<'a>(node: Node<'a, '_>, name: &'static str) -> Option<&'a str> {
    child(node, name).map(|c| c.text().unwrap_or("").trim())
}

/// The trimmed text of the required child `name`.
pub fn required_text<'a>(node: Node<'a, '_>, name: &'static str) -> Result<&'a str> {
    required(node, name).map(|c| c.text().unwrap_or("").trim())
}

/// The child `name` as a decimal number, if there is one.
pub fn number(node: Node<'_, '_>, name: &'static str) -> Result<Option<u64>> {
    let Some(c) = child(node, name) else {
        return Ok(None);
    };
    let t = c.text().unwrap_or("").trim();
    t.parse::<u64>()
        .map(Some)
        .map_err(|_| Error::malformed(at(c), format!("<{name}> is not a decimal number: {t:?}")))
}

/// The required child `name` as a decimal number.
pub fn required_number(node: Node<'_, '_>, name: &'static str) -> Result<u64> {
    number(node, name)?.ok_or_else(|| {
        Error::malformed(
            at(node),
            format!("<{}> has no <{name}>", node.tag_name().name()),
        )
    })
}

/// The byte offset of `node` in the document, for errors.
pub fn at(node: Node<'_, '_>) -> u64 {
    node.range().start as u64
}

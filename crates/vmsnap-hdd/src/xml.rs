//! Parsing a bounded XML document and reading its elements with errors that name them.

use roxmltree::{Document, Node};
pub use vmsnap_core::xml::{at, child, children};
use vmsnap_core::{Error, Result};

use crate::raw::{MAX_XML_LEN, MAX_XML_NODES};

/// Parses `bytes` as a bounded XML document (`vmsnap_core::xml::parse`): no DTD, at most
/// [`MAX_XML_NODES`] nodes and [`MAX_XML_LEN`] bytes.
pub fn parse(bytes: &[u8]) -> Result<Document<'_>> {
    vmsnap_core::xml::parse(bytes, "XML descriptor", MAX_XML_LEN, MAX_XML_NODES)
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

//! Bounded XML for the formats whose configuration is XML (Parallels `DiskDescriptor.xml`
//! and `config.pvs`, VirtualBox `.vbox`, OVF): one parse with the same defences for all —
//! no DTD (so no entity expansion), a byte limit and a node limit — and element lookup by
//! local name, since writers differ in namespace prefixes (`ovf:`, `rasd:`).
//! Behind the `xml` feature.

use roxmltree::{Document, Node, ParsingOptions};

use crate::error::{Error, Result};

/// Parses `bytes` — UTF-8, an optional byte order mark — as the XML document `what`
/// ("OVF descriptor"): refused past `max_len` bytes or `max_nodes` nodes, or with a DTD.
pub fn parse<'i>(
    bytes: &'i [u8],
    what: &str,
    max_len: u64,
    max_nodes: u32,
) -> Result<Document<'i>> {
    let len = bytes.len() as u64;
    if len > max_len {
        return Err(Error::limit(&format!("{what} bytes"), len, max_len));
    }
    // The byte order mark stays in the text (roxmltree skips it), so offsets count from the
    // file's first byte.
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::malformed(e.valid_up_to() as u64, format!("the {what} is not UTF-8"))
    })?;
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: max_nodes,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, opts).map_err(|e| {
        let pos = e.pos();
        Error::malformed(
            byte_offset(text, pos.row, pos.col),
            format!("the {what} does not parse: {e}"),
        )
    })
}

/// The byte offset of the 1-based `row` and `col` (counted in characters) roxmltree gives
/// its errors: the end of the text when they lie past it.
fn byte_offset(text: &str, row: u32, col: u32) -> u64 {
    // Row 1 starts at 0; row n after the (n-1)th newline.
    let line_start = match (row as usize).checked_sub(2) {
        None => 0,
        Some(n) => text
            .match_indices('\n')
            .nth(n)
            .map_or(text.len(), |(i, _)| i + 1),
    };
    let rest = text.get(line_start..).unwrap_or("");
    let in_line = rest
        .char_indices()
        .nth((col as usize).saturating_sub(1))
        .map_or(rest.len(), |(i, _)| i);
    (line_start + in_line) as u64
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

/// The attribute whose local name is `name`, in any namespace.
pub fn attr<'a>(node: Node<'a, '_>, name: &'static str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == name)
        .map(|a| a.value())
}

/// The byte offset of `node` in the document, for findings and errors.
pub fn at(node: Node<'_, '_>) -> u64 {
    node.range().start as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dtds_and_limits_and_finds_by_local_name() {
        let doc = parse(
            b"\xef\xbb\xbf<a xmlns:o='urn:x'><o:b o:id='1'/><b id='2'/></a>",
            "test document",
            1000,
            100,
        )
        .unwrap();
        let root = doc.root_element();
        let ids: Vec<_> = children(root, "b").filter_map(|b| attr(b, "id")).collect();
        assert_eq!(ids, ["1", "2"]);
        // Offsets count from the file's first byte, byte order mark included.
        assert_eq!(at(child(root, "b").unwrap()), 22);
        // A parse error names the byte where it lies: the stray `</c>` on the second line,
        // after a two-byte character.
        let e = parse("\u{feff}<a>\né</c>".as_bytes(), "test document", 1000, 100).unwrap_err();
        assert_eq!(e.context().offset, Some(9), "{e}");
        let bomb = b"<!DOCTYPE a [<!ENTITY x 'xx'>]><a>&x;</a>";
        assert!(parse(bomb, "test document", 1000, 100).is_err());
        let e = parse(b"<a/>", "test document", 3, 100).unwrap_err();
        assert!(e.to_string().contains("test document"), "{e}");
        let many = format!("<a>{}</a>", "<b/>".repeat(200));
        assert!(parse(many.as_bytes(), "test document", 10_000, 100).is_err());
        assert!(parse(b"<a>\xff</a>", "test document", 100, 100)
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
    }
}

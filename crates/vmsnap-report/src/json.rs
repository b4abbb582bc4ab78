//! The JSON contract every `--json` output keeps (`docs/json.md`, `docs/schema/`): one
//! object with `schema_version`, and errors as one `error` object of the same shape in
//! every command.

use std::path::Path;

use serde_json::{json, Value};
use vmsnap::core::{Error, ErrorKind};

/// Bumped on a breaking change of any command's JSON.
pub const SCHEMA_VERSION: u64 = 1;

/// `value` (an object) with `schema_version` added.
pub fn envelope(mut value: Value) -> Value {
    if let Some(o) = value.as_object_mut() {
        o.insert("schema_version".into(), json!(SCHEMA_VERSION));
    }
    value
}

/// The error object: `kind`, `message` (without the context the other fields carry),
/// `file`, `layer`, `offset` (null where unknown).
pub fn error_object(e: &Error, input: Option<&Path>) -> Value {
    let ctx = e.context();
    let message = match ctx.op {
        Some(op) => format!("{op}: {}", e.message()),
        None => e.message().to_string(),
    };
    let file = ctx
        .path
        .as_deref()
        .or(input.filter(|_| names_the_input(e)))
        .map(|p| p.display().to_string());
    json!({
        "kind": e.kind().as_str(),
        "message": message,
        "file": file,
        "layer": ctx.layer,
        "offset": ctx.offset,
    })
}

/// `{"schema_version":1,"error":{…}}`, what a command prints on stdout when it fails in
/// `--json` mode.
pub fn error_document(e: &Error, input: Option<&Path>) -> Value {
    envelope(json!({ "error": error_object(e, input) }))
}

/// An error's one line, led by the input file when the error is about it and names no
/// other file (`disk.qcow2: qcow2: at offset 0x30: …`).
pub fn error_line(e: &Error, input: Option<&Path>) -> String {
    match input.filter(|_| e.context().path.is_none() && names_the_input(e)) {
        Some(p) => format!("{}: {e}", p.display()),
        None => e.to_string(),
    }
}

/// Whether an error is about the input (so it names the input file when it names no other):
/// a bad argument is about the command line.
pub fn names_the_input(e: &Error) -> bool {
    e.kind() != ErrorKind::InvalidArgument
}

/// A policy name as JSON spells enum values (`same_dir`).
pub fn snake(s: &str) -> String {
    s.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_object_has_every_field() {
        let e = Error::malformed(0x40, "bad BAT")
            .in_layer("parallels")
            .during("opening");
        let v = error_document(&e, Some(Path::new("a.hds")));
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["error"]["kind"], "malformed");
        assert_eq!(v["error"]["message"], "opening: bad BAT");
        assert_eq!(v["error"]["file"], "a.hds");
        assert_eq!(v["error"]["layer"], "parallels");
        assert_eq!(v["error"]["offset"], 0x40);
        let arg = Error::new(ErrorKind::InvalidArgument, "\"x\" is not an address");
        assert_eq!(
            error_object(&arg, Some(Path::new("a")))["file"],
            Value::Null
        );
    }
}

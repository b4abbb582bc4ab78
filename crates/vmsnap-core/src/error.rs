//! The one public error type: a stable [`ErrorKind`], the context it happened in
//! (file, layer, offset, operation) and an optional source.

use std::fmt;
use std::path::{Path, PathBuf};

/// Result alias used across vmsnap.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as a small stable set a caller can switch on.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The operating system failed a read or an open.
    Io,
    /// The data contradicts its format (bad magic, inconsistent field, bad checksum that
    /// makes reading impossible).
    Malformed,
    /// The data ends before a structure it declares.
    Truncated,
    /// A valid feature this reader does not implement.
    Unsupported,
    /// A count or size from the file exceeds a named limit.
    LimitExceeded,
    /// A read or reference outside an address space.
    OutOfBounds,
    /// An external reference the policy refused.
    PolicyDenied,
    /// Opening is refused because reading would be unsafe or undefined.
    Unsafe,
    /// More than one interpretation, none preferred.
    Ambiguous,
    /// The caller asked for something that does not exist (layer name, option).
    NotFound,
    /// The caller passed an invalid argument.
    InvalidArgument,
    /// The bytes read come from an external reference (backing file, parent, extent,
    /// companion) that was not opened: missing, or refused by the policy.
    Unavailable,
    /// Not an error: a plugin's `open` found the layer is not its format after all (see
    /// [`crate::OpenFn`]). The stacker reports it as a refusal and tries the next plugin.
    Declined,
}

impl ErrorKind {
    /// A short stable name, used in JSON and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Truncated => "truncated",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::OutOfBounds => "out_of_bounds",
            ErrorKind::PolicyDenied => "policy_denied",
            ErrorKind::Unsafe => "unsafe",
            ErrorKind::Ambiguous => "ambiguous",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Declined => "declined",
        }
    }
}

/// Where an error happened. Every field is optional; outer code fills in what inner code
/// could not know (the file path, the layer name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The file the failing layer reads, when known.
    pub path: Option<PathBuf>,
    /// The layer (format) name, e.g. `qcow2`.
    pub layer: Option<String>,
    /// The offset in that layer's input where the bad data or failed read is.
    pub offset: Option<u64>,
    /// What was being done, e.g. `reading L2 table`.
    pub op: Option<&'static str>,
}

/// The vmsnap error: kind, context, a message and an optional underlying cause. One
/// pointer wide, so `Result`s stay small on hot paths.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    ctx: Context,
    rule: Option<&'static str>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a human message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            ctx: Context::default(),
            rule: None,
            source: None,
        }))
    }

    /// Shorthand for a [`ErrorKind::Malformed`] error at `offset`.
    pub fn malformed(offset: u64, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Malformed, message).at(offset)
    }

    /// Shorthand for a [`ErrorKind::Truncated`] error at `offset`.
    pub fn truncated(offset: u64, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Truncated, message).at(offset)
    }

    /// A plugin's "not this format after all" ([`ErrorKind::Declined`]), with the reason
    /// `info --explain` shows.
    pub fn declined(reason: impl Into<String>) -> Self {
        Error::new(ErrorKind::Declined, reason)
    }

    /// Shorthand for a [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for a [`ErrorKind::LimitExceeded`] error naming the limit.
    pub fn limit(what: &str, value: u64, limit: u64) -> Self {
        Error::new(
            ErrorKind::LimitExceeded,
            format!("{what} is {value}, above the limit of {limit}"),
        )
    }

    /// A read of `len` bytes at `offset` past the end of an address space of `size` bytes.
    pub fn out_of_bounds(offset: u64, len: u64, size: u64) -> Self {
        Error::new(
            ErrorKind::OutOfBounds,
            format!("read of {len} bytes at {offset:#x} is past the end ({size:#x} bytes)"),
        )
        .at(offset)
    }

    /// Sets the offset if none is set yet.
    pub fn at(mut self, offset: u64) -> Self {
        self.0.ctx.offset.get_or_insert(offset);
        self
    }

    /// Sets the layer name if none is set yet.
    pub fn in_layer(mut self, layer: impl Into<String>) -> Self {
        if self.0.ctx.layer.is_none() {
            self.0.ctx.layer = Some(layer.into());
        }
        self
    }

    /// Sets the file path if none is set yet.
    pub fn in_file(mut self, path: impl AsRef<Path>) -> Self {
        if self.0.ctx.path.is_none() {
            self.0.ctx.path = Some(path.as_ref().to_path_buf());
        }
        self
    }

    /// Sets the operation if none is set yet.
    pub fn during(mut self, op: &'static str) -> Self {
        self.0.ctx.op.get_or_insert(op);
        self
    }

    /// Names the safety rule (a [`crate::Finding`] rule id such as `unknown_features`) that
    /// refusing to open this image amounts to, so an inspector can report the refusal under
    /// that rule instead of as a bare error.
    pub fn for_rule(mut self, rule: &'static str) -> Self {
        self.0.rule = Some(rule);
        self
    }

    /// The safety rule this error stands for, if any (see [`Error::for_rule`]).
    pub fn rule(&self) -> Option<&'static str> {
        self.0.rule
    }

    /// Attaches an underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// The stable kind.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message without context.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The context.
    pub fn context(&self) -> &Context {
        &self.0.ctx
    }

    /// The error and all its causes as lines, outermost first.
    pub fn chain(&self) -> Vec<String> {
        let mut out = vec![self.to_string()];
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push(e.to_string());
            cur = e.source();
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.0.ctx.path {
            write!(f, "{}: ", p.display())?;
        }
        if let Some(l) = &self.0.ctx.layer {
            write!(f, "{l}: ")?;
        }
        if let Some(o) = self.0.ctx.offset {
            write!(f, "at offset {o:#x}: ")?;
        }
        if let Some(op) = self.0.ctx.op {
            write!(f, "{op}: ")?;
        }
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("ctx", &self.0.ctx)
            .field("source", &self.0.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let kind = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ErrorKind::Truncated
        } else {
            ErrorKind::Io
        };
        Error::new(kind, e.to_string()).with_source(e)
    }
}

/// Adds context to any `Result<_, Error>`.
pub trait ResultExt<T> {
    /// Sets the layer name on the error, if not yet set.
    fn in_layer(self, layer: &str) -> Result<T>;
    /// Sets the offset on the error, if not yet set.
    fn at(self, offset: u64) -> Result<T>;
    /// Sets the operation on the error, if not yet set.
    fn during(self, op: &'static str) -> Result<T>;
    /// Sets the file on the error, if not yet set and there is one (a layer's
    /// [`crate::Layer::path`]), so lazy-read errors name the file they are about.
    fn in_file_of(self, path: Option<&Path>) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn in_layer(self, layer: &str) -> Result<T> {
        self.map_err(|e| e.in_layer(layer))
    }
    fn at(self, offset: u64) -> Result<T> {
        self.map_err(|e| e.at(offset))
    }
    fn during(self, op: &'static str) -> Result<T> {
        self.map_err(|e| e.during(op))
    }
    fn in_file_of(self, path: Option<&Path>) -> Result<T> {
        self.map_err(|e| match path {
            Some(p) => e.in_file(p),
            None => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_layer_offset_and_cause() {
        let e = Error::malformed(0x30, "L1 table outside the file")
            .in_layer("qcow2")
            .in_file("/tmp/a.qcow2")
            .during("opening");
        assert_eq!(
            e.to_string(),
            "/tmp/a.qcow2: qcow2: at offset 0x30: opening: L1 table outside the file"
        );
        assert_eq!(e.kind(), ErrorKind::Malformed);
    }

    #[test]
    fn inner_context_wins() {
        let e = Error::malformed(1, "x")
            .in_layer("inner")
            .in_layer("outer")
            .at(9);
        assert_eq!(e.context().layer.as_deref(), Some("inner"));
        assert_eq!(e.context().offset, Some(1));
    }

    #[test]
    fn io_eof_is_truncated_and_keeps_source() {
        let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short");
        let e: Error = io.into();
        assert_eq!(e.kind(), ErrorKind::Truncated);
        assert_eq!(e.chain().len(), 2);
    }
}

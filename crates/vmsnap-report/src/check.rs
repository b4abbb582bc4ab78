//! `check`: the `check --json` document, and streaming inspection stopped at a named
//! length so that an endless stream (`/dev/zero`) ends as "could not inspect", not a hang.

use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};
use vmsnap::core::limits::MAX_STREAM_BYTES;
use vmsnap::core::{Error, ErrorKind, Registry, Result};
use vmsnap::inspect::{CheckOptions, Failure, Inspector, Overall, Report};

use crate::json::{envelope, error_object};

/// The longest stream inspected by default ([`MAX_STREAM_BYTES`]).
pub const DEFAULT_MAX_STREAM: u64 = MAX_STREAM_BYTES;

/// The streaming inspector with the format hints of this build and a length limit: past
/// `max` bytes it keeps nothing more, and [`LimitedInspector::finish`] says the stream
/// could not be inspected.
#[derive(Debug)]
pub struct LimitedInspector {
    inner: Inspector,
    max: u64,
    /// How the caller raises the limit, said in the error (`--max-stream raises it`).
    raise: &'static str,
    over: bool,
}

impl LimitedInspector {
    /// An inspector that reads at most `max` bytes; `raise` names how to raise the limit.
    pub fn new(max: u64, raise: &'static str) -> Self {
        LimitedInspector {
            inner: Inspector::with_hints(vmsnap::stream_hints()),
            max,
            raise,
            over: false,
        }
    }

    /// Feeds the next chunk. Returns false once the stream is longer than the limit: the
    /// rest need not be fed.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        if self.over {
            return false;
        }
        let total = self.inner.total().saturating_add(data.len() as u64);
        if total > self.max {
            self.over = true;
            return false;
        }
        self.inner.feed(data);
        true
    }

    /// Bytes fed so far.
    pub fn total(&self) -> u64 {
        self.inner.total()
    }

    /// Bytes held in memory now.
    pub fn retained(&self) -> usize {
        self.inner.retained()
    }

    /// Ends the stream and inspects what was kept.
    pub fn finish(self, registry: &Registry, opts: &CheckOptions) -> Report {
        if self.over {
            return Report::could_not_inspect(&Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "stream longer than {} bytes (the limit; {})",
                    self.max, self.raise
                ),
            ));
        }
        self.inner.finish(registry, opts)
    }
}

/// Reads `stream` to its end (or past `max` bytes) through a [`LimitedInspector`].
pub fn inspect_stream(
    mut stream: impl Read,
    max: u64,
    raise: &'static str,
    registry: &Registry,
    opts: &CheckOptions,
) -> Result<Report> {
    let mut inspector = LimitedInspector::new(max, raise);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from(e).during("reading the stream")),
        };
        if n == 0 || !inspector.feed(buf.get(..n).unwrap_or_default()) {
            break;
        }
    }
    Ok(inspector.finish(registry, opts))
}

/// The error a report stands for: a refusal judged under a rule is in the rules; only
/// "could not inspect" is an error.
pub fn error_of(report: &Report) -> Option<Error> {
    report
        .failure
        .as_ref()
        .filter(|_| report.verdict == Overall::Error)
        .map(Failure::to_error)
}

/// The `check --json` object: the same names as `info` (`rule`, `message`, `layer`,
/// `error`, `file`).
pub fn report_json(name: &str, report: &Report, error: Option<&Error>) -> Value {
    let rules: Vec<Value> = report
        .rules
        .iter()
        .map(|r| {
            json!({
                "rule": r.id,
                "verdict": r.verdict,
                "message": r.reason,
                "layer": r.layer,
            })
        })
        .collect();
    envelope(json!({
        "file": name,
        "format": report.format,
        "detected": report.detected,
        "virtual_size": report.virtual_size,
        "payload_offset": report.payload_offset,
        "verdict": report.verdict,
        "rules": rules,
        "error": error.map(|e| error_object(e, Some(Path::new(name)))),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_past_the_limit_is_not_inspected() {
        let registry = vmsnap::registry().unwrap();
        let zeros = std::io::repeat(0).take(3 << 20);
        let r = inspect_stream(
            zeros,
            2 << 20,
            "raise it",
            &registry,
            &CheckOptions::default(),
        )
        .unwrap();
        assert_eq!(r.verdict, Overall::Error);
        let e = error_of(&r).unwrap();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert!(
            e.to_string()
                .contains("stream longer than 2097152 bytes (the limit; raise it)"),
            "{e}"
        );
        // Under the limit the same bytes are inspected: a raw image of 3 MiB.
        let zeros = std::io::repeat(0).take(3 << 20);
        let r = inspect_stream(zeros, 4 << 20, "", &registry, &CheckOptions::default()).unwrap();
        assert_eq!(r.verdict, Overall::Safe);
        assert_eq!(r.format, "raw");
        assert_eq!(r.virtual_size, 3 << 20);
    }
}

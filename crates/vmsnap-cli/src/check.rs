//! `vmsnap check`: is this image safe to hand to a hypervisor? Nothing outside the file is
//! opened; every external reference is a finding. A pipe, FIFO, socket or character device
//! (and `-` when standard input is one) is inspected as a stream, up to a named length.

use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};
use vmsnap::core::limits::MAX_STREAM_BYTES;
use vmsnap::core::{Error, ErrorKind, Result};
use vmsnap::inspect::{inspect, names, CheckOptions, Failure, Inspector, Overall, Report, Verdict};

use crate::cli::CheckArgs;
use crate::input::{open_for_check, Input};
use crate::json::{envelope, error_object};
use crate::output::{located, parse_size, print_json};
use crate::Outcome;

/// Runs `check`.
pub fn run(args: &CheckArgs) -> Result<Outcome> {
    let registry = crate::open::registry()?;
    // Unknown names are argument errors; aliases (vpc, ploop) are resolved here.
    let expected_format = match &args.format {
        Some(f) => Some(names::format_list(f, &registry)?.join(",")),
        None => None,
    };
    let allow = args
        .allow
        .iter()
        .map(|a| names::combination(a, &registry).map(|v| v.join("+")))
        .collect::<Result<Vec<_>>>()?;
    let opts = CheckOptions {
        expected_format,
        allow,
    };
    let name = args.file.display().to_string();
    let max_stream = match &args.max_stream {
        Some(s) => parse_size(s)?,
        None => MAX_STREAM_BYTES,
    };
    let report = match open_for_check(&args.file)? {
        Input::File(file) => inspect(file, &registry, &opts),
        Input::Stream(stream) => inspect_stream(stream, max_stream, &registry, &opts)?,
    };
    // A refusal judged under a rule is in the rules; only "could not inspect" is an error.
    let error = report
        .failure
        .as_ref()
        .filter(|_| report.verdict == Overall::Error)
        .map(Failure::to_error);
    print(&name, &report, error.as_ref(), args.json)?;
    Ok(match (report.verdict, error) {
        (Overall::Safe, _) => Outcome::Ok,
        (Overall::Unsafe, _) => Outcome::Findings,
        // The text report's headline already is the error's line.
        (Overall::Error, _) if !args.json => Outcome::Reported,
        (Overall::Error, Some(e)) => Outcome::Failed(e),
        (Overall::Error, None) => Outcome::Failed(Error::new(
            ErrorKind::Malformed,
            "could not inspect the image",
        )),
    })
}

/// Feeds a stream to the streaming inspector, at most `max` bytes: past that the verdict
/// is "could not inspect", so an endless stream ends instead of hanging.
fn inspect_stream(
    mut stream: Box<dyn Read>,
    max: u64,
    registry: &vmsnap::core::Registry,
    opts: &CheckOptions,
) -> Result<Report> {
    let mut inspector = Inspector::with_hints(vmsnap::stream_hints());
    let mut buf = vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from(e).during("reading the stream")),
        };
        if n == 0 {
            break;
        }
        total = total.saturating_add(n as u64);
        if total > max {
            return Ok(Report::could_not_inspect(&Error::new(
                ErrorKind::LimitExceeded,
                format!("stream longer than {max} bytes (the limit; --max-stream raises it)"),
            )));
        }
        inspector.feed(buf.get(..n).unwrap_or_default());
    }
    Ok(inspector.finish(registry, opts))
}

/// The `check --json` object: the same names as `info` (`rule`, `message`, `layer`,
/// `error`, `file`).
fn report_json(name: &str, report: &Report, error: Option<&Error>) -> Value {
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

fn print(name: &str, report: &Report, error: Option<&Error>, json: bool) -> Result<()> {
    if json {
        return print_json(&report_json(name, report, error));
    }
    match report.verdict {
        Overall::Safe => println!(
            "{name}: safe ({}, {} bytes)",
            report.format, report.virtual_size
        ),
        Overall::Unsafe => println!(
            "{name}: UNSAFE ({}, {} bytes)",
            report.format, report.virtual_size
        ),
        // What failed is the headline: the format tried and the error's own line.
        Overall::Error => match error {
            Some(e) => println!("{name}: could not inspect: {}", located(e)),
            None => println!("{name}: could not inspect ({})", report.format),
        },
    }
    if let Some(p) = report.payload_offset {
        println!("  payload offset: {p}");
    }
    for r in &report.rules {
        let v = match r.verdict {
            Verdict::Pass => continue,
            Verdict::Info => "info",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        println!("  {v:<5} {}: {}", r.id, r.reason);
    }
    Ok(())
}

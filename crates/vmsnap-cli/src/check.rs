//! `vmsnap check`: is this image safe to hand to a hypervisor? Nothing outside the file is
//! opened; every external reference is a finding. A pipe, FIFO, socket or character device
//! (and `-` when standard input is one) is inspected as a stream, up to a named length.

use std::io::Read;

use vmsnap::core::limits::MAX_STREAM_BYTES;
use vmsnap::core::{Error, Result};
use vmsnap::inspect::{inspect, names, CheckOptions, Inspector, Overall, Report, Verdict};

use crate::cli::CheckArgs;
use crate::input::{open_for_check, Input};
use crate::output::{parse_size, print_json};
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
    print(&name, &report, args.json)?;
    Ok(match report.verdict {
        Overall::Safe => Outcome::Ok,
        Overall::Unsafe => Outcome::Findings,
        Overall::Error => Outcome::CouldNotInspect,
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
            return Ok(Report::could_not_inspect(format!(
                "stream longer than {max} bytes (the limit; --max-stream raises it)"
            )));
        }
        inspector.feed(buf.get(..n).unwrap_or_default());
    }
    Ok(inspector.finish(registry, opts))
}

fn print(name: &str, report: &Report, json: bool) -> Result<()> {
    if json {
        let mut v = serde_json::to_value(report)
            .map_err(|e| Error::new(vmsnap::core::ErrorKind::Io, e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("file".into(), name.into());
        }
        return print_json(&v);
    }
    let verdict = match report.verdict {
        Overall::Safe => "safe",
        Overall::Unsafe => "UNSAFE",
        Overall::Error => "could not inspect",
    };
    println!(
        "{name}: {verdict} ({}, {} bytes)",
        report.format, report.virtual_size
    );
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
    // A refusal judged under a rule is already listed above.
    if let Some(e) = report
        .error
        .as_ref()
        .filter(|_| report.verdict == Overall::Error)
    {
        println!("  error: {e}");
    }
    Ok(())
}

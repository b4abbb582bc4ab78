//! `vmsnap check`: is this image safe to hand to a hypervisor? Nothing outside the file is
//! opened; every external reference is a finding. A pipe, FIFO, socket or character device
//! (and `-` when standard input is one) is inspected as a stream, up to a named length.

use vmsnap::core::{Error, ErrorKind, Result};
use vmsnap::inspect::{inspect, names, CheckOptions, Overall, Report, Verdict};
use vmsnap_report::check::{error_of, inspect_stream, report_json, DEFAULT_MAX_STREAM};

use crate::cli::CheckArgs;
use crate::input::{open_for_check, Input};
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
        None => DEFAULT_MAX_STREAM,
    };
    let report = match open_for_check(&args.file)? {
        Input::File(file) => inspect(file, &registry, &opts),
        Input::Stream(stream) => inspect_stream(
            stream,
            max_stream,
            "--max-stream raises it",
            &registry,
            &opts,
        )?,
    };
    // A refusal judged under a rule is in the rules; only "could not inspect" is an error.
    let error = error_of(&report);
    print(&name, &report, error.as_ref(), args.json)?;
    Ok(match (report.verdict, error) {
        (Overall::Safe, _) => Outcome::Ok,
        (Overall::Unsafe, _) => Outcome::Findings,
        // The text report's headline already is the error's line.
        (Overall::Error, _) if !args.json => Outcome::Reported,
        // An error, or a verdict this CLI does not know: never exit 0.
        (_, Some(e)) => Outcome::Failed(e),
        (_, None) => Outcome::Failed(Error::new(
            ErrorKind::Malformed,
            "could not inspect the image",
        )),
    })
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
        // What failed is the headline: the format tried and the error's own line (a
        // verdict this CLI does not know is reported the same way).
        _ => match error {
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
            other => other.as_str(),
        };
        println!("  {v:<5} {}: {}", r.id, r.reason);
    }
    Ok(())
}

//! `vmsnap check`: is this image safe to hand to a hypervisor? Nothing outside the file is
//! opened; every external reference is a finding. `-` inspects standard input as a stream.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap::core::{Error, ErrorKind, ExternalPolicy, FileLayer, Layer, Options, Resolver, Result};
use vmsnap::inspect::{inspect, CheckOptions, Inspector, Overall, Report, Verdict};
use vmsnap::stack::Stacker;

use crate::cli::CheckArgs;
use crate::json::{envelope, error_object};
use crate::output::{located, print_json};
use crate::Outcome;

/// Runs `check`.
pub fn run(args: &CheckArgs) -> Result<Outcome> {
    let registry = crate::open::registry()?;
    let opts = CheckOptions {
        expected_format: args.format.clone(),
        allow: args.allow.clone(),
    };
    let name = args.file.display().to_string();
    let mut file_layer: Option<Arc<dyn Layer>> = None;
    let report = if name == "-" {
        let mut inspector = Inspector::with_hints(vmsnap::stream_hints());
        let mut buf = vec![0u8; 1 << 20];
        let mut stdin = std::io::stdin().lock();
        loop {
            let n = stdin
                .read(&mut buf)
                .map_err(|e| Error::from(e).during("reading standard input"))?;
            if n == 0 {
                break;
            }
            inspector.feed(buf.get(..n).unwrap_or_default());
        }
        inspector.finish(&registry, &opts)
    } else {
        let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&args.file)?);
        file_layer = Some(file.clone());
        inspect(file, &registry, &opts)
    };
    let error = report
        .error
        .as_ref()
        .map(|msg| structured_error(msg, file_layer, &registry));
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

/// The inspector reports why it could not inspect as text; the error with its kind, layer
/// and offset is the one opening the image's own format gives, under the same rules as
/// `inspect` (nothing else opened, one layer).
fn structured_error(
    message: &str,
    file: Option<Arc<dyn Layer>>,
    registry: &vmsnap::core::Registry,
) -> Error {
    if let Some(file) = file {
        let resolver = Resolver::new(ExternalPolicy::Deny);
        let options = Options::new();
        let stack = Stacker::new(registry, &resolver, &options)
            .max_layers(1)
            .branches(false)
            .stack(file);
        if let Some(e) = stack.error.filter(|e| e.to_string() == message) {
            return e;
        }
    }
    Error::new(ErrorKind::Malformed, message.to_string())
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

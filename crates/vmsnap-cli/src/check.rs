//! `vmsnap check`: is this image safe to hand to a hypervisor? Nothing outside the file is
//! opened; every external reference is a finding. `-` inspects standard input as a stream.

use std::io::Read;
use std::sync::Arc;

use vmsnap::core::{Error, FileLayer, Layer, Result};
use vmsnap::inspect::{inspect, names, CheckOptions, Inspector, Overall, Report, Verdict};

use crate::cli::CheckArgs;
use crate::output::print_json;
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
        inspect(file, &registry, &opts)
    };
    print(&name, &report, args.json)?;
    Ok(match report.verdict {
        Overall::Safe => Outcome::Ok,
        Overall::Unsafe => Outcome::Findings,
        Overall::Error => Outcome::CouldNotInspect,
    })
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

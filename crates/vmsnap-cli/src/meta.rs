//! `vmsnap meta`: a layer's whole metadata tree, or one extracted item.

use std::path::Path;

use serde_json::{json, Value};
use vmsnap::core::sink::{Output, OutputOptions};
use vmsnap::core::{Error, ErrorKind, Result};

use crate::cli::MetaArgs;
use crate::json::{envelope, error_object};
use crate::open::{open, Opened};
use crate::output::print_json;
use crate::Outcome;

/// Runs `meta`.
pub fn run(args: &MetaArgs) -> Result<Outcome> {
    let opened = open(&args.open, false)?;
    let stack = &opened.stack;
    if let Some(item) = &args.extract {
        let targets: Vec<_> = match &args.layer.layer {
            Some(spec) => vec![stack.select(spec)?.layer],
            None => stack
                .entries
                .iter()
                .rev()
                .map(|e| e.layer.clone())
                .collect(),
        };
        for l in targets {
            if let Some(bytes) = l.extract(item)? {
                let out = args.output.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::InvalidArgument, "--extract needs --output PATH")
                })?;
                write_item(&opened, out, &bytes)?;
                let shown = if out == Path::new("-") {
                    "standard output".into()
                } else {
                    out.display().to_string()
                };
                eprintln!("wrote {} bytes of {item} to {shown}", bytes.len());
                return Ok(Outcome::Ok);
            }
        }
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no item named {item:?} in any layer"),
        ));
    }
    // Without --extract, `--output` is the qemu-img spelling of the JSON switch
    // (`--output=json`, the contract's alias); a path there would be silently ignored.
    let json =
        match args.output.as_deref() {
            None => args.json,
            Some(p) if p == Path::new("json") => true,
            Some(_) => return Err(Error::new(
                ErrorKind::InvalidArgument,
                "--output PATH goes with --extract NAME (for JSON, use --json or --output=json)",
            )),
        };
    let trees: Vec<Value> = match &args.layer.layer {
        Some(spec) => {
            let s = stack.select(spec)?;
            vec![json!({"name": s.name, "meta": s.layer.meta()})]
        }
        None => stack
            .entries
            .iter()
            .map(|e| json!({"name": e.name, "meta": e.layer.meta()}))
            .collect(),
    };
    if json {
        print_json(&envelope(json!({
            "file": args.open.file.display().to_string(),
            "layers": trees,
            "error": stack.error.as_ref().map(|e| error_object(e, Some(&args.open.file))),
        })))?;
    } else {
        for t in &trees {
            println!("== {} ==", t["name"].as_str().unwrap_or(""));
            let s = serde_json::to_string_pretty(&t["meta"]).unwrap_or_default();
            println!("{s}");
        }
    }
    // The JSON holds the error; its one line goes to stderr, by `main`.
    let mut opened = opened;
    if let Some(e) = opened.stack.error.take() {
        return Ok(Outcome::Failed(e));
    }
    Ok(Outcome::Ok)
}

/// Writes an extracted item through the output writer: never over a file the image reads,
/// a file replaced only when complete, `-` to standard output.
fn write_item(opened: &Opened, out: &Path, bytes: &[u8]) -> Result<()> {
    let options = OutputOptions::new().protect(opened.files());
    crate::interrupt::remove_unfinished_outputs_on_signal();
    match Output::create(out, bytes.len() as u64, &options)? {
        Output::Positional(p) => {
            p.write_at(0, bytes)?;
            p.commit()
        }
        Output::Stream(mut s) => {
            s.write_all(bytes)?;
            s.commit()
        }
        // An output kind this writer does not know.
        _ => Err(Error::unsupported(
            "this kind of output is not supported here",
        )),
    }
}

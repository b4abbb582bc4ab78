//! `vmsnap meta`: a layer's whole metadata tree, or one extracted item.

use serde_json::{json, Value};
use vmsnap::core::{Error, ErrorKind, Result};

use crate::cli::MetaArgs;
use crate::json::{envelope, error_object};
use crate::open::open;
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
                let out = args.out.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::InvalidArgument, "--extract needs -O/--out FILE")
                })?;
                std::fs::write(out, &bytes).map_err(|e| {
                    Error::from(e)
                        .in_file(out)
                        .during("writing the extracted item")
                })?;
                eprintln!("wrote {} bytes of {item} to {}", bytes.len(), out.display());
                return Ok(Outcome::Ok);
            }
        }
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no item named {item:?} in any layer"),
        ));
    }
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
    if args.json {
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

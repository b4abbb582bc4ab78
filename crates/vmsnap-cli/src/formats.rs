//! `vmsnap formats`: the registered plugins and the `-o` options each declares.

use serde_json::json;
use vmsnap::core::{OptionType, Result};

use crate::cli::FormatsArgs;
use crate::json::envelope;
use crate::output::print_json;
use crate::Outcome;

/// Runs `formats`.
pub fn run(args: &FormatsArgs) -> Result<Outcome> {
    let reg = crate::open::registry()?;
    if args.json {
        let v: Vec<_> = reg
            .plugins()
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "plugin_kind": p.kind.as_str(),
                    "priority": p.priority,
                    "stacks_on": p.stacks_on,
                    "summary": p.summary,
                    "options": p.options,
                })
            })
            .collect();
        print_json(&envelope(json!({ "formats": v })))?;
        return Ok(Outcome::Ok);
    }
    println!("{:<18} {:<12} {:>8}  summary", "name", "kind", "priority");
    println!(
        "{:<18} {:<12} {:>8}  the base of every stack",
        "file", "base", "-"
    );
    for p in reg.plugins() {
        println!(
            "{:<18} {:<12} {:>8}  {}",
            p.name,
            p.kind.as_str(),
            p.priority,
            p.summary
        );
    }
    let with_options: Vec<_> = reg
        .plugins()
        .iter()
        .filter(|p| !p.options.is_empty())
        .collect();
    if !with_options.is_empty() {
        println!();
        println!("options (-o KEY=VALUE):");
        for p in with_options {
            for o in p.options {
                let ty = match o.ty {
                    OptionType::Choice(words) => words.join("|"),
                    t => t.name().to_string(),
                };
                println!("  {:<22} {:<20} {}", o.name, ty, o.help);
            }
        }
    }
    Ok(Outcome::Ok)
}

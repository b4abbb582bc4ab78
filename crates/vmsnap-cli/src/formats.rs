//! `vmsnap formats`: the registered plugins.

use serde_json::json;
use vmsnap::core::Result;

use crate::cli::FormatsArgs;
use crate::output::print_json;
use crate::Outcome;

/// Runs `formats`.
pub fn run(args: &FormatsArgs) -> Result<Outcome> {
    let reg = crate::open::registry()?;
    if args.json {
        let v: Vec<_> = reg
            .plugins()
            .iter()
            .map(|p| json!({"name": p.name, "kind": p.kind.as_str(), "priority": p.priority, "summary": p.summary}))
            .collect();
        print_json(&json!(v))?;
    } else {
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
    }
    Ok(Outcome::Ok)
}

//! Printing: errors as one line, JSON, sizes, and no panic output ever.

use std::path::Path;

use vmsnap::core::{Error, ErrorKind};

/// Prints `e` as one line naming the file (the input, when the error names no other), the
/// layer and the offset; with `--verbose` also its chain of causes and its kind.
pub fn print_error(e: &Error, input: Option<&Path>, verbose: bool) {
    let chain = e.chain();
    let mut lines = chain.iter();
    if let Some(first) = lines.next() {
        match input.filter(|_| e.context().path.is_none() && crate::json::names_the_input(e)) {
            Some(p) => eprintln!("vmsnap: error: {}: {first}", p.display()),
            None => eprintln!("vmsnap: error: {first}"),
        }
    }
    if verbose {
        for cause in lines {
            eprintln!("  caused by: {cause}");
        }
        eprintln!("  kind: {}", e.kind().as_str());
    }
}

/// An error's line without its file (the caller names the file): `parallels: at offset
/// 0x40: …`.
pub fn located(e: &Error) -> String {
    let ctx = e.context();
    let mut s = String::new();
    if let Some(l) = &ctx.layer {
        s.push_str(&format!("{l}: "));
    }
    if let Some(o) = ctx.offset {
        s.push_str(&format!("at offset {o:#x}: "));
    }
    if let Some(op) = ctx.op {
        s.push_str(&format!("{op}: "));
    }
    s.push_str(e.message());
    s
}

/// Replaces Rust's panic output with one line; a panic is a bug and exits with code 2.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        // `vmsnap info … | head`: the reader went away; stop quietly, as `cat` would.
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        eprintln!("vmsnap: internal error (a bug, please report it): {msg}");
        std::process::exit(2);
    }));
}

/// Prints a JSON value, pretty, to stdout.
pub fn print_json(v: &serde_json::Value) -> vmsnap::core::Result<()> {
    let s =
        serde_json::to_string_pretty(v).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    println!("{s}");
    Ok(())
}

/// `1.5 GiB (1610612736 bytes)`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    let unit = UNITS.get(u).copied().unwrap_or("B");
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {unit} ({n} bytes)")
    }
}

/// Parses an address: `0xffffffff81000000` or decimal, no size suffix.
pub fn parse_address(s: &str) -> vmsnap::core::Result<u64> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16).ok(),
        None => t.parse::<u64>().ok(),
    };
    parsed.ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("{s:?} is not an address (use hex like 0xffffffff81000000, or decimal)"),
        )
    })
}

/// Parses `4096`, `0x1000`, `4K`, `1M`, `2G`, `1T`.
pub fn parse_size(s: &str) -> vmsnap::core::Result<u64> {
    let bad = || {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("{s:?} is not a size (use 4096, 0x1000, 4K, 1M, 2G)"),
        )
    };
    let t = s.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| bad());
    }
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(bad()),
            };
            (t.get(..i).unwrap_or(""), m)
        }
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("0x10").unwrap(), 16);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("3k").unwrap(), 3072);
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human_size(512), "512 B");
        assert_eq!(
            parse_address("0xffff_ffff_8100_0000").unwrap(),
            0xffff_ffff_8100_0000
        );
        assert_eq!(parse_address("4096").unwrap(), 4096);
        let e = parse_address("4K").unwrap_err();
        assert!(e.to_string().contains("is not an address"), "{e}");
        assert_eq!(human_size(1 << 30), "1.0 GiB (1073741824 bytes)");
    }
}

//! Printing: errors as one line, JSON, sizes, and no panic output ever.

use vmsnap::core::Error;

/// Prints `e` as one line (and its causes with `--verbose`).
pub fn print_error(e: &Error, verbose: bool) {
    let chain = e.chain();
    let mut lines = chain.iter();
    if let Some(first) = lines.next() {
        eprintln!("vmsnap: error: {first}");
    }
    if verbose {
        for cause in lines {
            eprintln!("  caused by: {cause}");
        }
        eprintln!("  kind: {}", e.kind().as_str());
    }
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
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| Error::new(vmsnap::core::ErrorKind::Io, e.to_string()))?;
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

/// Parses `4096`, `0x1000`, `4K`, `1M`, `2G`, `1T`.
pub fn parse_size(s: &str) -> vmsnap::core::Result<u64> {
    let bad = || {
        Error::new(
            vmsnap::core::ErrorKind::InvalidArgument,
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
        assert_eq!(human_size(1 << 30), "1.0 GiB (1073741824 bytes)");
    }
}

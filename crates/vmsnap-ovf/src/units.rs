//! `ovf:capacityAllocationUnits`: DSP0004 programmatic units (`byte`, `byte * 2^30`,
//! `byte * 1024`), and the words some writers use instead (`MegaBytes`, `GigaBytes`).

/// The number of bytes one unit of `units` is, or `None` when `units` is not a byte
/// multiple this reader knows (or overflows 64 bits).
pub fn bytes_per_unit(units: &str) -> Option<u64> {
    let units = units.trim();
    let word = match units.to_ascii_lowercase().as_str() {
        "bytes" | "byte" => Some(1),
        "kilobytes" => Some(1 << 10),
        "megabytes" => Some(1 << 20),
        "gigabytes" => Some(1 << 30),
        "terabytes" => Some(1 << 40),
        _ => None,
    };
    if word.is_some() {
        return word;
    }
    let mut parts = units.split('*').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("byte") {
        return None;
    }
    let mut n: u64 = 1;
    for p in parts {
        let factor = match p.split_once('^') {
            Some((base, exp)) => {
                let base: u64 = base.trim().parse().ok()?;
                let exp: u32 = exp.trim().parse().ok()?;
                base.checked_pow(exp)?
            }
            None => p.parse().ok()?,
        };
        n = n.checked_mul(factor)?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programmatic_units_and_words() {
        assert_eq!(bytes_per_unit("byte"), Some(1));
        assert_eq!(bytes_per_unit("byte * 2^30"), Some(1 << 30));
        assert_eq!(bytes_per_unit(" byte*2^20 "), Some(1 << 20));
        assert_eq!(bytes_per_unit("byte * 1024"), Some(1024));
        assert_eq!(bytes_per_unit("MegaBytes"), Some(1 << 20));
        assert_eq!(bytes_per_unit("byte * 2^64"), None);
        assert_eq!(bytes_per_unit("bit * 2^3"), None);
        assert_eq!(bytes_per_unit("byte * x"), None);
    }
}

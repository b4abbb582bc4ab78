//! The `--format` / `--allow` vocabulary: every plugin name plus the `check` detectors,
//! with Glance's and QEMU's aliases (`vpc` → `vhd`, `ploop` → `parallels`).

use vmsnap_core::{Error, ErrorKind, PluginKind, Registry, Result};

use crate::signature::DETECTORS;

/// Aliases other tools use, and the name vmsnap uses.
const ALIASES: [(&str, &str); 2] = [("vpc", "vhd"), ("ploop", "parallels")];

/// A format name as vmsnap spells it: lower case, aliases resolved.
pub fn canonical(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == n)
        .map_or(n, |(_, to)| (*to).to_string())
}

/// Every name `--format` and `--allow` accept (aliases excluded), sorted.
pub fn vocabulary(registry: &Registry) -> Vec<String> {
    let mut v: Vec<String> = registry
        .plugins()
        .iter()
        .filter(|p| p.kind != PluginKind::Translation)
        .map(|p| p.name.to_string())
        .chain(DETECTORS.iter().map(|d| (*d).to_string()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Checks one name against the vocabulary and returns it canonical.
pub fn known(name: &str, registry: &Registry) -> Result<String> {
    let c = canonical(name);
    let all = vocabulary(registry);
    if all.contains(&c) {
        Ok(c)
    } else {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "unknown format {name:?}: expected one of {} (or the aliases vpc, ploop)",
                all.join(", ")
            ),
        ))
    }
}

/// A `--format` value: one name or a comma-separated list of allowed names.
pub fn format_list(value: &str, registry: &Registry) -> Result<Vec<String>> {
    value.split(',').map(|n| known(n, registry)).collect()
}

/// An `--allow` value: formats joined by `+` (`iso+gpt`), as a sorted set.
pub fn combination(value: &str, registry: &Registry) -> Result<Vec<String>> {
    let mut v = value
        .split('+')
        .map(|n| known(n, registry))
        .collect::<Result<Vec<_>>>()?;
    v.sort();
    v.dedup();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_case() {
        assert_eq!(canonical("VPC"), "vhd");
        assert_eq!(canonical(" ploop"), "parallels");
        assert_eq!(canonical("qcow2"), "qcow2");
    }
}

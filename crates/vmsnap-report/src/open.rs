//! Opening a file into a stack and choosing a layer, with one policy for every front end:
//! the CLI, the Python package and the nbdkit plugin parse `external`, `missing` and the
//! plugin options, open, stack and select here, so that they see the same layers.

use std::path::Path;
use std::sync::Arc;

use vmsnap::core::{
    check_options, Error, ErrorKind, ExternalPolicy, FileLayer, Layer, MissingPolicy, Options,
    Registry, Resolver, Result,
};
use vmsnap::stack::{Selection, Stack, Stacker};

/// How to open a file: which external references may be opened, what reads of one that
/// was not opened do, and the plugin options. The default is the CLI's: same directory,
/// reads of missing bytes fail, no options.
#[derive(Debug, Clone)]
pub struct OpenSettings {
    /// Which external references (backing files, parents, extents, companions) may be
    /// opened.
    pub external: ExternalPolicy,
    /// What reads do where they need bytes of a reference that was not opened.
    pub missing: MissingPolicy,
    /// Plugin options (`qemu.ram-below-4g=2G`).
    pub options: Options,
}

impl Default for OpenSettings {
    fn default() -> Self {
        OpenSettings {
            external: ExternalPolicy::SameDir,
            missing: MissingPolicy::Error,
            options: Options::new(),
        }
    }
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// An external policy by name: `none` (or `deny`), `same_dir` (or `same-dir`), `any`.
pub fn parse_external(s: &str) -> Result<ExternalPolicy> {
    match s.replace('-', "_").as_str() {
        "none" | "deny" => Ok(ExternalPolicy::Deny),
        "same_dir" => Ok(ExternalPolicy::SameDir),
        "any" => Ok(ExternalPolicy::Any),
        _ => Err(invalid(format!(
            "external={s:?}: expected \"none\", \"same_dir\" or \"any\""
        ))),
    }
}

/// A missing policy by name: `error` or `zeros`.
pub fn parse_missing(s: &str) -> Result<MissingPolicy> {
    match s {
        "error" => Ok(MissingPolicy::Error),
        "zeros" => Ok(MissingPolicy::Zeros),
        _ => Err(invalid(format!(
            "missing={s:?}: expected \"error\" or \"zeros\""
        ))),
    }
}

/// Splits a `key=value` option, both trimmed.
pub fn parse_option(kv: &str) -> Result<(&str, &str)> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| invalid(format!("option {kv:?} is not KEY=VALUE")))?;
    Ok((k.trim(), v.trim()))
}

/// `key=value` options as [`Options`].
pub fn options_of<S: AsRef<str>>(raw: &[S]) -> Result<Options> {
    let mut o = Options::new();
    for kv in raw {
        let (k, v) = parse_option(kv.as_ref())?;
        o.set(k, v);
    }
    Ok(o)
}

/// A stack with the resolver that opened (or refused) every external reference it names.
#[derive(Debug)]
pub struct Opened {
    /// The stack.
    pub stack: Stack,
    /// The external policy in force.
    pub policy: ExternalPolicy,
    /// The resolver: its log says which references were opened, refused or missing.
    pub resolver: Resolver,
}

/// Checks `settings.options` against every plugin of `registry` (an unknown key or a bad
/// value is an error before anything is opened).
pub fn check_settings(registry: &Registry, settings: &OpenSettings) -> Result<()> {
    check_options(registry.plugins().iter().copied(), &settings.options)
}

/// Stacks `file` under `settings` (whose options [`check_settings`] accepted). An accepted
/// format that failed to open stays in `stack.error`, for `info` to report; `explain` keeps
/// every probe.
pub fn stack(
    registry: &Registry,
    file: Arc<dyn Layer>,
    settings: &OpenSettings,
    explain: bool,
) -> Opened {
    let resolver = Resolver::new(settings.external).with_missing(settings.missing);
    let stack = Stacker::new(registry, &resolver, &settings.options)
        .explain(explain)
        .stack(file);
    Opened {
        stack,
        policy: settings.external,
        resolver,
    }
}

/// Opens `path` to read data from it: checks the options, opens the file, stacks it, and
/// makes an accepted format that failed to open an error (as `cat`, `map` and `convert`
/// do).
pub fn open_for_data(registry: &Registry, path: &Path, settings: &OpenSettings) -> Result<Opened> {
    check_settings(registry, settings)?;
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(path)?);
    let mut opened = stack(registry, file, settings, false);
    if let Some(e) = opened.stack.error.take() {
        return Err(e);
    }
    Ok(opened)
}

/// The layer `spec` names (an index, a name, `qcow2/snapshot:1`), or without one the
/// default: the top of the main chain.
pub fn select(stack: &Stack, spec: Option<&str>) -> Result<Selection> {
    match spec {
        Some(spec) => stack.select(spec),
        None => Ok(stack.default_selection()),
    }
}

/// Under [`MissingPolicy::Zeros`], one line per reference that was not opened, saying its
/// bytes read as zeros (so that it is never silent), ending with how the option that asked
/// for it is spelt (`--missing=zeros`); empty otherwise.
pub fn zeros_warnings(resolver: &Resolver, spelling: &str) -> Vec<String> {
    if resolver.missing() != MissingPolicy::Zeros {
        return Vec::new();
    }
    resolver
        .unavailable_refs()
        .iter()
        .map(|u| {
            let file = u
                .referrer_path
                .as_ref()
                .map(|p| format!("{}: ", p.display()))
                .unwrap_or_default();
            format!(
                "vmsnap: warning: {file}{}: {}; it reads as zeros ({spelling})",
                u.referrer,
                u.description()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_every_front_end_spells_them() {
        assert_eq!(parse_external("same-dir").unwrap(), ExternalPolicy::SameDir);
        assert_eq!(parse_external("same_dir").unwrap(), ExternalPolicy::SameDir);
        assert_eq!(parse_external("none").unwrap(), ExternalPolicy::Deny);
        assert_eq!(parse_external("any").unwrap(), ExternalPolicy::Any);
        assert_eq!(
            parse_external("all").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(parse_missing("zeros").unwrap(), MissingPolicy::Zeros);
        assert!(parse_missing("zero").is_err());
        assert_eq!(parse_option(" a = b=c ").unwrap(), ("a", "b=c"));
        assert!(parse_option("novalue").is_err());
    }
}

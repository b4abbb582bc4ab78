//! Opening a file into a stack with the CLI's policy and options.

use std::path::PathBuf;
use std::sync::Arc;

use vmsnap::core::{
    Error, ErrorKind, ExternalPolicy, FileLayer, Layer, Options, RefDecision, Registry, Resolver,
    Result,
};
use vmsnap::stack::{Selection, Stack, Stacker};

use crate::cli::{External, LayerArg, OpenArgs};

/// An opened input: the registry, resolver and stack stay alive together.
pub struct Opened {
    /// The stack.
    pub stack: Stack,
    /// The policy in force.
    pub policy: ExternalPolicy,
    /// The resolver that opened (or refused) every external reference.
    pub resolver: Resolver,
    /// The input as given.
    pub input: PathBuf,
}

impl Opened {
    /// Every file the stack reads: the input and each external reference that was opened.
    /// An output must be none of these.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.input.clone()];
        for r in self.resolver.log() {
            if let RefDecision::Opened { path } = r.decision {
                files.push(path);
            }
        }
        files
    }
}

/// The global registry.
pub fn registry() -> Result<Registry> {
    vmsnap::registry()
}

fn policy_of(e: External) -> ExternalPolicy {
    match e {
        External::None => ExternalPolicy::Deny,
        External::SameDir => ExternalPolicy::SameDir,
        External::Any => ExternalPolicy::Any,
    }
}

/// Parses `-o key=value` options.
pub fn options_of(raw: &[String]) -> Result<Options> {
    let mut o = Options::new();
    for kv in raw {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("option {kv:?} is not KEY=VALUE"),
            )
        })?;
        o.set(k.trim(), v.trim());
    }
    Ok(o)
}

/// Opens `args.file` and stacks it.
pub fn open(args: &OpenArgs, explain: bool) -> Result<Opened> {
    open_with(args, explain, policy_of(args.external))
}

/// Opens with an explicit policy.
pub fn open_with(args: &OpenArgs, explain: bool, policy: ExternalPolicy) -> Result<Opened> {
    let registry = registry()?;
    let options = options_of(&args.options)?;
    vmsnap::core::check_options(registry.plugins().iter().copied(), &options)?;
    let resolver = Resolver::new(policy);
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&args.file)?);
    let stack = Stacker::new(&registry, &resolver, &options)
        .explain(explain)
        .stack(file);
    Ok(Opened {
        stack,
        policy,
        resolver,
        input: args.file.clone(),
    })
}

/// Opens for reading data: an accepted format that failed to open is an error.
pub fn open_for_data(args: &OpenArgs) -> Result<Opened> {
    let mut o = open(args, false)?;
    if let Some(e) = o.stack.error.take() {
        return Err(e);
    }
    Ok(o)
}

/// The layer `--layer` names, or the default.
pub fn select(stack: &Stack, arg: &LayerArg) -> Result<Selection> {
    match &arg.layer {
        Some(spec) => stack.select(spec),
        None => Ok(stack.default_selection()),
    }
}

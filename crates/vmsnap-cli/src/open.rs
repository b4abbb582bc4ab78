//! Opening a file into a stack with the CLI's policy and options.

use std::path::PathBuf;
use std::sync::Arc;

use vmsnap::core::{
    ExternalPolicy, Layer, MissingPolicy, Options, RefDecision, Registry, Resolver, Result,
};
use vmsnap::stack::{Selection, Stack};
use vmsnap_report::open::{self as shared, OpenSettings};

use crate::cli::{External, LayerArg, Missing, OpenArgs};

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
        // `-` is standard input: the file it was redirected from is what must be kept.
        let input = if crate::input::is_stdin(&self.input) {
            PathBuf::from("/proc/self/fd/0")
        } else {
            self.input.clone()
        };
        let mut files = vec![input];
        for r in self.resolver.log() {
            if let RefDecision::Opened { path, .. } = r.decision {
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

/// The settings `args` give.
pub fn settings_of(args: &OpenArgs) -> Result<OpenSettings> {
    Ok(OpenSettings {
        external: args.external.map(policy_of),
        missing: match args.missing {
            Missing::Error => MissingPolicy::Error,
            Missing::Zeros => MissingPolicy::Zeros,
        },
        options: options_of(&args.options)?,
    })
}

/// The policy `--external` names.
pub fn policy_of(e: External) -> ExternalPolicy {
    match e {
        External::None => ExternalPolicy::Deny,
        External::SameDir => ExternalPolicy::SameDir,
        External::VmDir => ExternalPolicy::VmDir,
        External::Any => ExternalPolicy::Any,
    }
}

/// Parses `-o key=value` options.
pub fn options_of(raw: &[String]) -> Result<Options> {
    vmsnap_report::open::options_of(raw)
}

/// Opens `args.file` and stacks it.
pub fn open(args: &OpenArgs, explain: bool) -> Result<Opened> {
    let registry = registry()?;
    let settings = settings_of(args)?;
    shared::check_settings(&registry, &settings)?;
    let file: Arc<dyn Layer> = crate::input::open_file(&args.file)?;
    let shared::Opened {
        stack,
        policy,
        resolver,
    } = shared::stack(&registry, file, &settings, explain);
    // Under `--missing=zeros`, say once per reference that was not opened that its bytes
    // read as zeros (never silently).
    for w in shared::zeros_warnings(&resolver, "--missing=zeros") {
        eprintln!("{w}");
    }
    Ok(Opened {
        stack,
        policy,
        resolver,
        input: shared::input_file(&args.file)?,
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
    shared::select(stack, arg.layer.as_deref())
}

//! The `stack` target's structured mode: the command line around an image. An input
//! starting with [`crate::STRUCTURED`] is an `arbitrary` [`CommandLine`] (the `-o
//! key=value` options, `--external`, `--missing`, `--layer`, and whether the image comes
//! from a file read with `pread` or memory-mapped, as the CLI opens it) followed by the
//! image's bytes as they are. It runs what `vmsnap` runs before and after the parsers:
//! option validation against every plugin's declared options, the external-file policy
//! (every reference is refused by the opener, so the missing-file policy decides), layer
//! selection, bulk reads into the CLI's copy buffer, and error rendering.

use std::path::PathBuf;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use vmsnap::core::{
    check_options, Error, ErrorKind, ExternalPolicy, FileLayer, InputKind, IoBuffer, Layer,
    MemSource, MissingPolicy, Options, Resolver, Source,
};
use vmsnap::stack::Stacker;

/// An option key: one a plugin declares (index modulo their number), or anything.
#[derive(Arbitrary, Debug)]
enum Key {
    Declared(u8),
    Text(String),
}

/// An option value: numbers in the spellings sizes and addresses take, a choice, or
/// anything.
#[derive(Arbitrary, Debug)]
enum Value {
    Decimal(u64),
    Hex(u64),
    Suffixed(u16, u8),
    Choice(u8),
    Text(String),
}

/// What the command line says besides the image.
#[derive(Arbitrary, Debug)]
struct CommandLine {
    options: Vec<(Key, Value)>,
    /// `--external`: none, same-dir, any.
    external: u8,
    /// `--missing=zeros` rather than `error`.
    zeros: bool,
    /// `--layer`: an index or name of the stack (modulo their number), or anything.
    layer: Option<Key>,
    /// The image is a file (memory-mapped when `mapped`), not memory.
    from_file: bool,
    mapped: bool,
}

/// Runs `data` when it selects the structured mode; false otherwise.
pub fn run(data: &[u8]) -> bool {
    let Some(rest) = data.strip_prefix(crate::STRUCTURED) else {
        return false;
    };
    let mut u = Unstructured::new(rest);
    let Ok(cl) = CommandLine::arbitrary(&mut u) else {
        return true;
    };
    let image = u.take_rest();
    let Ok(registry) = vmsnap::registry() else {
        return true;
    };
    let declared: Vec<&vmsnap::core::PluginOption> = registry
        .plugins()
        .iter()
        .flat_map(|p| p.options.iter())
        .collect();
    let mut options = Options::new();
    for (k, v) in cl.options.iter().take(8) {
        let opt = match k {
            Key::Declared(i) => declared
                .get(usize::from(*i) % declared.len().max(1))
                .copied(),
            Key::Text(_) => None,
        };
        let key = match (k, opt) {
            (_, Some(o)) => o.name.to_string(),
            (Key::Text(t), None) => t.clone(),
            (Key::Declared(_), None) => continue,
        };
        options.set(key.trim(), spell(v, opt).trim());
    }
    if let Err(e) = check_options(registry.plugins().iter().copied(), &options) {
        render(&e);
        return true;
    }
    let policy = match cl.external % 3 {
        0 => ExternalPolicy::Deny,
        1 => ExternalPolicy::SameDir,
        _ => ExternalPolicy::Any,
    };
    let missing = if cl.zeros {
        MissingPolicy::Zeros
    } else {
        MissingPolicy::Error
    };
    // No reference is ever opened: the policy decides what is asked for, the opener
    // refuses it, and the missing-file policy decides what follows.
    let resolver = Resolver::with_opener(policy, |p| {
        Err::<Arc<dyn Source>, _>(Error::new(
            ErrorKind::NotFound,
            format!("{} is not opened while fuzzing", p.display()),
        ))
    })
    .with_missing(missing);
    let file = TempImage::new(image, cl.from_file);
    let Some(lower) = file.open(cl.mapped) else {
        return true;
    };
    let stack = Stacker::new(&registry, &resolver, &options)
        .explain(true)
        .stack(lower);
    if let Some(e) = &stack.error {
        render(e);
    }
    let names = stack.layer_names();
    let selection = match &cl.layer {
        None => Ok(stack.default_selection()),
        Some(Key::Declared(i)) => {
            let i = usize::from(*i) % names.len().max(1);
            stack.select(names.get(i).map_or("0", String::as_str))
        }
        Some(Key::Text(t)) => stack.select(t),
    };
    match selection {
        Ok(sel) => copy(sel.layer.as_ref()),
        Err(e) => render(&e),
    }
    for r in resolver.log() {
        reference(&r);
    }
    for r in resolver.unavailable_refs() {
        let _ = r.description();
    }
    for e in &stack.entries {
        for r in e.layer.external_refs() {
            reference(&r);
        }
    }
    let _ = stack.all_findings();
    true
}

/// A value as a user may write it for `opt`.
fn spell(v: &Value, opt: Option<&vmsnap::core::PluginOption>) -> String {
    match v {
        Value::Decimal(n) => n.to_string(),
        Value::Hex(n) => format!("{n:#x}"),
        Value::Suffixed(n, s) => {
            let suffix = ["", "K", "M", "G", "T", "k", "KiB", "b"];
            format!("{n}{}", suffix[usize::from(*s) % suffix.len()])
        }
        Value::Choice(i) => match opt.map(|o| o.ty) {
            Some(vmsnap::core::OptionType::Choice(list)) if !list.is_empty() => {
                list[usize::from(*i) % list.len()].to_string()
            }
            _ => i.to_string(),
        },
        Value::Text(t) => t.clone(),
    }
}

/// Renders a reference as `info` and `check --json` do.
fn reference(r: &vmsnap::core::ExternalRef) {
    let _ = (
        r.decision.describe(),
        r.kind.noun(),
        r.finding(),
        serde_json::to_string(r),
    );
}

/// Renders an error as the CLI does (message, causes, kind).
fn render(e: &Error) {
    let _ = (
        e.to_string(),
        e.chain(),
        format!("{e:?}"),
        e.kind().as_str(),
    );
}

/// Reads `layer` whole through the CLI's copy buffer, as `convert` and `cat` do (at most
/// 64 MiB).
fn copy(layer: &dyn Layer) {
    let mut buf = IoBuffer::new(4 << 20);
    let len = layer.len().min(64 << 20);
    let mut at = 0;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        if let Err(e) = layer.read_at(at, &mut buf[..n]) {
            render(&e);
        }
        at += n as u64;
    }
}

/// The image: in memory, or in a scratch file removed on drop.
struct TempImage<'a> {
    bytes: &'a [u8],
    path: Option<PathBuf>,
}

impl<'a> TempImage<'a> {
    fn new(bytes: &'a [u8], to_file: bool) -> Self {
        let path = to_file.then(|| {
            std::env::temp_dir().join(format!(
                "vmsnap-fuzz-{}-{:?}.img",
                std::process::id(),
                std::thread::current().id()
            ))
        });
        let path = path.filter(|p| std::fs::write(p, bytes).is_ok());
        TempImage { bytes, path }
    }

    /// The base layer, opened as the CLI opens a path (classified first), or from memory.
    fn open(&self, mapped: bool) -> Option<Arc<dyn Layer>> {
        let Some(p) = &self.path else {
            return Some(Arc::new(FileLayer::new(Arc::new(MemSource::with_path(
                self.bytes.to_vec(),
                "/nonexistent/fuzz-input",
            )))));
        };
        let kind = InputKind::of_path(p).ok()?;
        assert!(kind.is_random_access(), "{}", kind.describe());
        let layer = if mapped {
            FileLayer::open_mapped(p)
        } else {
            FileLayer::open(p)
        };
        layer.ok().map(|l| Arc::new(l) as Arc<dyn Layer>)
    }
}

impl Drop for TempImage<'_> {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

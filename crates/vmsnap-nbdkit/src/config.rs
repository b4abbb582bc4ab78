//! The plugin's parameters — `file=IMAGE` (or the image alone), `layer=L`,
//! `external=none|same_dir|vm_dir|any`, `missing=error|zeros` and any plugin option `key=value` —
//! and the layer they select, opened once before nbdkit serves it, through the same
//! open-and-select policy as the CLI and Python.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use vmsnap::core::{Error, ErrorKind, Layer, MissingPolicy, Result};
use vmsnap_report::open::{open_for_data, parse_external, parse_missing, select, OpenSettings};

/// What nbdkit was given, gathered key by key.
#[derive(Debug, Default)]
struct Params {
    file: Option<PathBuf>,
    layer: Option<String>,
    settings: OpenSettings,
}

static PARAMS: Mutex<Option<Params>> = Mutex::new(None);

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// Takes one `key=value` parameter: `file`, `layer`, `external` and `missing` are the
/// plugin's own (each given once at most); any other key is a plugin option, checked
/// against every format's options when the image is opened.
pub fn set(key: &str, value: &str) -> Result<()> {
    let mut guard = PARAMS.lock().unwrap_or_else(PoisonError::into_inner);
    let p = guard.get_or_insert_with(Params::default);
    let once = |given: bool| {
        if given {
            Err(invalid(format!("{key}= is given twice")))
        } else {
            Ok(())
        }
    };
    match key {
        "file" => {
            once(p.file.is_some())?;
            p.file = Some(PathBuf::from(value));
        }
        "layer" => {
            once(p.layer.is_some())?;
            p.layer = Some(value.to_string());
        }
        "external" => p.settings.external = Some(parse_external(value)?),
        "missing" => p.settings.missing = parse_missing(value)?,
        _ => p.settings.options.set(key.trim(), value.trim()),
    }
    Ok(())
}

/// Checks that the parameters name an image.
pub fn complete() -> Result<()> {
    let guard = PARAMS.lock().unwrap_or_else(PoisonError::into_inner);
    match guard.as_ref().and_then(|p| p.file.as_ref()) {
        Some(_) => Ok(()),
        None => Err(invalid(
            "no image: give file=IMAGE (or the image's path alone)".to_string(),
        )),
    }
}

/// The layer being served.
#[derive(Debug)]
pub struct Served {
    /// The image, as given.
    pub file: PathBuf,
    /// The layer's name in the stack (`qcow2`, `qcow2/vmstate:1/qemu`).
    pub name: String,
    /// The layer.
    pub layer: Arc<dyn Layer>,
    /// Whether bytes of references that were not opened read as zeros (`missing=zeros`).
    pub zeros: bool,
}

/// Opens the image and selects the layer; under `missing=zeros`, says on standard error
/// which references read as zeros.
pub fn open() -> Result<Served> {
    let guard = PARAMS.lock().unwrap_or_else(PoisonError::into_inner);
    let p = guard
        .as_ref()
        .ok_or_else(|| invalid("no parameters".to_string()))?;
    let file = p
        .file
        .clone()
        .ok_or_else(|| invalid("no image: give file=IMAGE".to_string()))?;
    let registry = vmsnap::registry()?;
    let opened = open_for_data(&registry, &file, &p.settings)?;
    let sel = select(&opened.stack, p.layer.as_deref())?;
    for w in vmsnap_report::open::zeros_warnings(&opened.resolver, "missing=zeros") {
        eprintln!("{w}");
    }
    Ok(Served {
        file,
        name: sel.name,
        layer: sel.layer,
        zeros: p.settings.missing == MissingPolicy::Zeros,
    })
}

/// The image named so far, for messages.
pub fn file() -> Option<PathBuf> {
    let guard = PARAMS.lock().unwrap_or_else(PoisonError::into_inner);
    guard.as_ref().and_then(|p| p.file.clone())
}

//! Opening a file into a stack and choosing a layer, with one policy for every front end:
//! the CLI, the Python package and the nbdkit plugin parse `external`, `missing` and the
//! plugin options, open, stack and select here, so that they see the same layers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnap::core::{
    check_options, Error, ErrorKind, ExternalPolicy, FileLayer, Layer, MissingPolicy, Options,
    PluginKind, Registry, Resolver, Result, Sniff,
};
use vmsnap::stack::{Selection, Stack, Stacker};

/// How to open a file: which external references may be opened, what reads of one that
/// was not opened do, and the plugin options. The default is the CLI's: the default
/// external policy ([`default_external`]), reads of missing bytes fail, no options.
#[derive(Debug, Clone)]
pub struct OpenSettings {
    /// Which external references (backing files, parents, extents, companions) may be
    /// opened; `None` for the default, [`default_external`] of the file.
    pub external: Option<ExternalPolicy>,
    /// What reads do where they need bytes of a reference that was not opened.
    pub missing: MissingPolicy,
    /// Plugin options (`qemu.ram-below-4g=2G`).
    pub options: Options,
}

impl Default for OpenSettings {
    fn default() -> Self {
        OpenSettings {
            external: None,
            missing: MissingPolicy::Error,
            options: Options::new(),
        }
    }
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// An external policy by name: `none` (or `deny`), `same_dir` (or `same-dir`), `vm_dir`
/// (or `vm-dir`), `any`.
pub fn parse_external(s: &str) -> Result<ExternalPolicy> {
    match s.replace('-', "_").as_str() {
        "none" | "deny" => Ok(ExternalPolicy::Deny),
        "same_dir" => Ok(ExternalPolicy::SameDir),
        "vm_dir" => Ok(ExternalPolicy::VmDir),
        "any" => Ok(ExternalPolicy::Any),
        _ => Err(invalid(format!(
            "external={s:?}: expected \"none\", \"same_dir\", \"vm_dir\" or \"any\""
        ))),
    }
}

/// The external policy when the user named none: `vm-dir` for a VM configuration or
/// bundle (a file a plugin of kind [`PluginKind::Vm`] recognises), whose disks and
/// snapshots live in its directory and below; `same-dir` for everything else.
pub fn default_external(registry: &Registry, file: &dyn Layer) -> ExternalPolicy {
    let Ok(sniff) = Sniff::read(file) else {
        return ExternalPolicy::SameDir;
    };
    let window = sniff.window(file);
    let vm = registry
        .plugins()
        .iter()
        .any(|p| p.kind == PluginKind::Vm && p.recognises(&window).is_yes());
    if vm {
        ExternalPolicy::VmDir
    } else {
        ExternalPolicy::SameDir
    }
}

/// The descriptor files a VM directory or bundle is opened by, in the order tried: a
/// Parallels disk bundle (`.hdd`), a Parallels VM bundle (`.pvm`).
const BUNDLE_DESCRIPTORS: [&str; 2] = ["DiskDescriptor.xml", "config.pvs"];

/// The configuration extensions one of which a VM directory holds exactly once: VMware,
/// VirtualBox, an OVF package's descriptor.
const VM_CONFIG_EXTENSIONS: [&str; 3] = ["vmx", "vbox", "ovf"];

/// The file to open for `path`: `path` itself, or for a directory (a VM folder or bundle)
/// its descriptor: `DiskDescriptor.xml`, `config.pvs`, or its single `.vmx`, `.vbox` or `.ovf`. A
/// directory with none, or with several configurations, is an error that says so.
pub fn input_file(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    for name in BUNDLE_DESCRIPTORS {
        let candidate = path.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| Error::from(e).in_file(path).during("listing the directory"))?;
    let mut configs: Vec<PathBuf> = Vec::new();
    for (i, entry) in entries.enumerate() {
        if i >= MAX_DIRECTORY_ENTRIES {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "a directory of more than {MAX_DIRECTORY_ENTRIES} entries: name its VM \
                     configuration"
                ),
            )
            .in_file(path));
        }
        let p = entry
            .map_err(|e| Error::from(e).in_file(path).during("listing the directory"))?
            .path();
        let is_config = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| VM_CONFIG_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if is_config && p.is_file() {
            configs.push(p);
        }
    }
    configs.sort();
    match configs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::new(
            ErrorKind::InvalidArgument,
            "a directory, and not a VM bundle: it holds no DiskDescriptor.xml, config.pvs, \
             .vmx, .vbox or .ovf",
        )
        .in_file(path)),
        many => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "a directory with several VM configurations ({}): name one",
                many.iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .in_file(path)),
    }
}

/// How many entries of a directory [`input_file`] looks at for its configuration.
pub const MAX_DIRECTORY_ENTRIES: usize = 4096;

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
    let policy = settings
        .external
        .unwrap_or_else(|| default_external(registry, file.as_ref()));
    let mut resolver = Resolver::new(policy).with_missing(settings.missing);
    // A VM's references are confined to the directory of the file it was opened by.
    if let Some(dir) = file.path().and_then(Path::parent) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        resolver = resolver.with_vm_dir(dir);
    }
    let stack = Stacker::new(registry, &resolver, &settings.options)
        .explain(explain)
        .stack(file);
    Opened {
        stack,
        policy,
        resolver,
    }
}

/// Opens `path` to read data from it: checks the options, opens the file, stacks it, and
/// makes an accepted format that failed to open an error (as `cat`, `map` and `convert`
/// do).
pub fn open_for_data(registry: &Registry, path: &Path, settings: &OpenSettings) -> Result<Opened> {
    check_settings(registry, settings)?;
    let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&input_file(path)?)?);
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
        assert_eq!(parse_external("vm-dir").unwrap(), ExternalPolicy::VmDir);
        assert_eq!(parse_external("vm_dir").unwrap(), ExternalPolicy::VmDir);
        assert_eq!(
            parse_external("all").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(parse_missing("zeros").unwrap(), MissingPolicy::Zeros);
        assert!(parse_missing("zero").is_err());
        assert_eq!(parse_option(" a = b=c ").unwrap(), ("a", "b=c"));
        assert!(parse_option("novalue").is_err());
    }

    fn vm_probe(w: &vmsnap::core::SniffWindow<'_>) -> vmsnap::core::Probe {
        if w.head.starts_with(b"config.version") {
            vmsnap::core::Probe::Yes
        } else {
            vmsnap::core::Probe::No("not a test VM")
        }
    }

    fn never_opened(_: Arc<dyn Layer>, _: &vmsnap::core::OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
        Err(Error::declined("test plugin"))
    }

    static TEST_VM: vmsnap::core::Plugin = vmsnap::core::Plugin {
        name: "testvm",
        kind: PluginKind::Vm,
        priority: 10,
        stacks_on: &[vmsnap::core::AddressSpace::File],
        summary: "a test VM configuration",
        options: &[],
        probe: vm_probe,
        open: never_opened,
    };

    fn bytes(b: &[u8]) -> Arc<dyn Layer> {
        Arc::new(FileLayer::new(Arc::new(vmsnap::core::MemSource::new(
            b.to_vec(),
        ))))
    }

    #[test]
    fn a_vm_configuration_defaults_to_vm_dir_and_anything_else_to_same_dir() {
        let reg = Registry::empty().with(&TEST_VM).unwrap();
        let vm = bytes(b"config.version = \"8\"\n");
        assert_eq!(default_external(&reg, vm.as_ref()), ExternalPolicy::VmDir);
        let qcow = bytes(b"QFI\xfb\0\0\0\x03");
        assert_eq!(
            default_external(&reg, qcow.as_ref()),
            ExternalPolicy::SameDir
        );
        assert_eq!(
            default_external(&reg, bytes(b"").as_ref()),
            ExternalPolicy::SameDir
        );
        // An explicit policy wins; the default is reported as the policy in force.
        let o = stack(&reg, vm.clone(), &OpenSettings::default(), false);
        assert_eq!(o.policy, ExternalPolicy::VmDir);
        assert_eq!(o.resolver.policy(), ExternalPolicy::VmDir);
        let settings = OpenSettings {
            external: Some(ExternalPolicy::Deny),
            ..OpenSettings::default()
        };
        assert_eq!(
            stack(&reg, vm, &settings, false).policy,
            ExternalPolicy::Deny
        );
    }

    #[test]
    fn a_directory_opens_by_its_descriptor() {
        let d = std::env::temp_dir().join(format!("vmsnap-input-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let bundle = d.join("disk.hdd");
        let vm = d.join("vm");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::create_dir_all(vm.join("sub.vmx")).unwrap();
        let plain = d.join("disk.qcow2");
        std::fs::write(&plain, b"x").unwrap();
        assert_eq!(input_file(&plain).unwrap(), plain);
        // A directory without a configuration (a directory named like one does not count).
        let e = input_file(&vm).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("not a VM bundle"), "{e}");
        std::fs::write(vm.join("guest.VMX"), b"x").unwrap();
        assert_eq!(input_file(&vm).unwrap(), vm.join("guest.VMX"));
        std::fs::write(vm.join("other.vbox"), b"x").unwrap();
        let e = input_file(&vm).unwrap_err();
        assert!(e.to_string().contains("guest.VMX, other.vbox"), "{e}");
        // An unpacked OVF package: its one descriptor (a manifest beside it is no config).
        let package = d.join("package");
        std::fs::create_dir_all(&package).unwrap();
        std::fs::write(package.join("vm.mf"), b"x").unwrap();
        std::fs::write(package.join("vm.ovf"), b"x").unwrap();
        assert_eq!(input_file(&package).unwrap(), package.join("vm.ovf"));
        std::fs::write(bundle.join("disk.hds"), b"x").unwrap();
        std::fs::write(bundle.join("DiskDescriptor.xml"), b"x").unwrap();
        assert_eq!(
            input_file(&bundle).unwrap(),
            bundle.join("DiskDescriptor.xml")
        );
        std::fs::remove_dir_all(&d).ok();
    }
}

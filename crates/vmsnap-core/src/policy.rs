//! The external-reference policy. Backing files, VMDK extents and parent hints, VHD/VHDX
//! parents, a `.vmem` beside a `.vmss`: nothing outside the given file is opened except
//! through a [`Resolver`], and every reference is recorded whether it was followed or not.
//!
//! # Security
//! A disk image names other files by path. Following such a name blindly lets an uploaded
//! image make the host read its own files (`/etc/shadow` as a backing file). The library
//! default is [`ExternalPolicy::Deny`]; the CLI default is [`ExternalPolicy::SameDir`].

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::finding::Finding;
use crate::source::{FileSource, MmapSource, Source};
use crate::unavailable::UnavailableRef;

/// Which external references may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExternalPolicy {
    /// Open nothing outside the given file (library default).
    #[default]
    Deny,
    /// Open plain relative names that resolve, after following symlinks, to a file in the
    /// same directory as the referring file.
    SameDir,
    /// Open relative names (either separator, no `..`) that resolve, after following
    /// symlinks, to a file in the VM's directory or below it: the directory given to
    /// [`Resolver::with_vm_dir`] (the configuration file's), else the referring file's. The
    /// CLI default for a VM configuration or bundle (`.vmx`, `.vbox`, `DiskDescriptor.xml`,
    /// `config.pvs`), whose disks and snapshots live in subdirectories.
    VmDir,
    /// Open any local path (absolute, `..`). Protocol references (`nbd:`, `http://`,
    /// `json:`) are never opened.
    Any,
}

impl ExternalPolicy {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExternalPolicy::Deny => "none",
            ExternalPolicy::SameDir => "same-dir",
            ExternalPolicy::VmDir => "vm-dir",
            ExternalPolicy::Any => "any",
        }
    }
}

/// What a read does where it needs bytes of a reference that was not opened (missing, or
/// refused by the [`ExternalPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MissingPolicy {
    /// The read fails, naming the reference, the layer and the policy (the default, as
    /// qemu-img refuses such an image).
    #[default]
    Error,
    /// The read returns zeros there; the CLI says so on stderr and `map` shows the ranges
    /// as unavailable. An explicit opt-in for analysts who want what is there.
    Zeros,
}

impl MissingPolicy {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MissingPolicy::Error => "error",
            MissingPolicy::Zeros => "zeros",
        }
    }
}

/// What an external reference is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefKind {
    /// A backing file (qcow2, QED).
    Backing,
    /// An external data file (qcow2).
    DataFile,
    /// An extent file (VMDK descriptor).
    Extent,
    /// A parent disk (VMDK, VHD, VHDX, VDI differencing).
    Parent,
    /// A companion file (`.vmem` for `.vmss`).
    Companion,
    /// A path named in configuration, never opened (Hyper-V disks).
    Configured,
}

impl RefKind {
    /// What the reference is, in words (`backing file`, `parent disk`), for messages.
    pub fn noun(self) -> &'static str {
        match self {
            RefKind::Backing => "backing file",
            RefKind::DataFile => "external data file",
            RefKind::Extent => "extent file",
            RefKind::Parent => "parent disk",
            RefKind::Companion => "companion file",
            RefKind::Configured => "configured file",
        }
    }
}

/// What became of a reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefDecision {
    /// It was opened from `path`.
    Opened {
        /// The resolved path.
        path: PathBuf,
        /// How the name was resolved when not as written: an absolute name from another
        /// host found by its trailing components inside the VM's directory.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The policy refused it.
    Denied {
        /// Why.
        reason: String,
    },
    /// It was allowed but could not be opened.
    Failed {
        /// Why.
        reason: String,
    },
    /// The format lists it but does not open it.
    Listed,
}

impl RefDecision {
    /// What became of the reference, in words: `opened PATH`, `not opened: WHY`, `could
    /// not be opened: WHY`, `not followed`.
    pub fn describe(&self) -> String {
        match self {
            RefDecision::Opened { path, note: None } => format!("opened {}", path.display()),
            RefDecision::Opened {
                path,
                note: Some(note),
            } => format!("opened {} ({note})", path.display()),
            RefDecision::Denied { reason } => format!("not opened: {reason}"),
            RefDecision::Failed { reason } => format!("could not be opened: {reason}"),
            RefDecision::Listed => "not followed".to_string(),
        }
    }
}

/// One external reference as found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalRef {
    /// What it is for.
    pub kind: RefKind,
    /// The name exactly as the file has it.
    pub name: String,
    /// What became of it.
    #[serde(flatten)]
    pub decision: RefDecision,
}

impl ExternalRef {
    /// The finding `check` reports for this reference (rule id per kind, OpenStack's
    /// `backing_file` / `data_file` / `descriptor` where those apply).
    pub fn finding(&self) -> Finding {
        let rule = match self.kind {
            RefKind::Backing => crate::rule::BACKING_FILE,
            RefKind::DataFile => crate::rule::DATA_FILE,
            RefKind::Extent => crate::rule::DESCRIPTOR,
            RefKind::Parent => crate::rule::PARENT,
            RefKind::Companion => crate::rule::COMPANION_FILE,
            RefKind::Configured => crate::rule::CONFIGURED_PATH,
        };
        let what = self.decision.describe();
        let severity = match self.kind {
            RefKind::Companion | RefKind::Configured => crate::finding::Severity::Warning,
            _ => crate::finding::Severity::Unsafe,
        };
        Finding::new(
            rule,
            severity,
            format!("references {:?} file {:?} ({what})", self.kind, self.name),
        )
    }
}

/// How a [`Resolver`] opens a path once the policy allows it (replaceable in tests, to
/// prove which files are opened).
pub type OpenFn = dyn Fn(&Path) -> Result<Arc<dyn Source>> + Send + Sync;

/// Resolves external references under a policy and logs every attempt.
pub struct Resolver {
    policy: ExternalPolicy,
    vm_dir: Option<PathBuf>,
    missing: MissingPolicy,
    open: Box<OpenFn>,
    log: Mutex<Vec<ExternalRef>>,
    unavailable: Mutex<Vec<UnavailableRef>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("policy", &self.policy)
            .field("missing", &self.missing)
            .field("vm_dir", &self.vm_dir)
            .finish_non_exhaustive()
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(ExternalPolicy::Deny)
    }
}

impl Resolver {
    /// A resolver that opens allowed paths from the file system.
    pub fn new(policy: ExternalPolicy) -> Self {
        Resolver::with_opener(policy, |p| {
            Ok(Arc::new(FileSource::open(p)?) as Arc<dyn Source>)
        })
    }

    /// A resolver that maps allowed files into memory ([`MmapSource`]) instead of reading
    /// them with `pread`: companion files read at random (a `.vmem` beside a `.vmss`, a
    /// backing file) then cost a copy instead of a system call per read. The caveat of
    /// [`MmapSource`] applies: the files must not be truncated while mapped.
    pub fn mapped(policy: ExternalPolicy) -> Self {
        Resolver::with_opener(policy, |p| {
            Ok(Arc::new(MmapSource::open(p)?) as Arc<dyn Source>)
        })
    }

    /// A resolver with a custom way of opening allowed paths.
    pub fn with_opener(
        policy: ExternalPolicy,
        open: impl Fn(&Path) -> Result<Arc<dyn Source>> + Send + Sync + 'static,
    ) -> Self {
        Resolver {
            policy,
            vm_dir: None,
            missing: MissingPolicy::default(),
            open: Box::new(open),
            log: Mutex::new(Vec::new()),
            unavailable: Mutex::new(Vec::new()),
        }
    }

    /// The policy.
    pub fn policy(&self) -> ExternalPolicy {
        self.policy
    }

    /// The same resolver, with what reads do where a reference was not opened.
    #[must_use]
    pub fn with_missing(mut self, missing: MissingPolicy) -> Self {
        self.missing = missing;
        self
    }

    /// The same resolver, with `dir` as the VM's directory: under
    /// [`ExternalPolicy::VmDir`], every reference (also those of files found in its
    /// subdirectories) must resolve inside it.
    #[must_use]
    pub fn with_vm_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.vm_dir = Some(dir.into());
        self
    }

    /// The VM's directory [`ExternalPolicy::VmDir`] confines references to, if set.
    pub fn vm_dir(&self) -> Option<&Path> {
        self.vm_dir.as_deref()
    }

    /// What reads do where a reference was not opened.
    pub fn missing(&self) -> MissingPolicy {
        self.missing
    }

    /// Every reference resolved so far, in order.
    pub fn log(&self) -> Vec<ExternalRef> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every reference stood in for by an unavailable layer ([`Resolver::unavailable`]),
    /// once each, in order: what a front end reports when it reads them as zeros.
    pub fn unavailable_refs(&self) -> Vec<UnavailableRef> {
        self.unavailable
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    pub(crate) fn record_unavailable(&self, r: UnavailableRef) {
        if let Ok(mut l) = self.unavailable.lock() {
            if l.len() < crate::limits::MAX_FINDINGS && !l.contains(&r) {
                l.push(r);
            }
        }
    }

    fn record(&self, r: ExternalRef) {
        if let Ok(mut l) = self.log.lock() {
            if l.len() < crate::limits::MAX_FINDINGS {
                l.push(r);
            }
        }
    }

    /// Decides whether `name`, found in the file at `base`, may be opened, and where it
    /// resolves to. Pure: touches the file system only to canonicalize for `SameDir`.
    pub fn check(&self, base: Option<&Path>, name: &str) -> std::result::Result<PathBuf, String> {
        check_reference(self.policy, self.vm_dir.as_deref(), base, name)
            .map(|r| r.path)
            .map_err(Refusal::into_reason)
    }

    /// Opens reference `name` of `kind`, found in the file at `base`, if the policy
    /// allows; records the outcome either way and returns it with the source.
    pub fn open(
        &self,
        kind: RefKind,
        base: Option<&Path>,
        name: &str,
    ) -> (ExternalRef, Result<Arc<dyn Source>>) {
        let (decision, result) =
            match check_reference(self.policy, self.vm_dir.as_deref(), base, name) {
                // The policy allows the name but there is no such file: a failure to open.
                Err(Refusal::Missing(reason)) => (
                    RefDecision::Failed {
                        reason: reason.clone(),
                    },
                    Err(Error::new(
                        ErrorKind::Io,
                        format!("{kind:?} reference {name:?} could not be opened: {reason}"),
                    )),
                ),
                Err(Refusal::Policy(reason)) => (
                    RefDecision::Denied {
                        reason: reason.clone(),
                    },
                    Err(Error::new(
                        ErrorKind::PolicyDenied,
                        format!("{kind:?} reference {name:?} not opened: {reason}"),
                    )),
                ),
                Ok(Resolved { path, note }) => match (self.open)(&path) {
                    Ok(src) => (RefDecision::Opened { path, note }, Ok(src)),
                    Err(e) => (
                        RefDecision::Failed {
                            reason: e.to_string(),
                        },
                        Err(e),
                    ),
                },
            };
        let r = ExternalRef {
            kind,
            name: name.to_string(),
            decision,
        };
        self.record(r.clone());
        (r, result)
    }
}

/// The finding of a VM configuration or bundle that names other files (disks, memory,
/// state files, parents): unsafe, rule [`crate::rule::REFERENCES`], because such an input is
/// never a self-contained image. `None` when it names none.
pub fn references_finding(what: &str, refs: &[ExternalRef]) -> Option<Finding> {
    if refs.is_empty() {
        return None;
    }
    let opened = refs
        .iter()
        .filter(|r| matches!(r.decision, RefDecision::Opened { .. }))
        .count();
    Some(Finding::unsafe_(
        crate::rule::REFERENCES,
        format!(
            "{what} naming {} other file(s) ({opened} opened): not a self-contained image",
            refs.len()
        ),
    ))
}

/// Whether `name` looks like a protocol reference (`nbd:`, `http://`, `json:{…}`); a
/// single letter before the colon is a Windows drive, not a protocol.
pub fn is_protocol(name: &str) -> bool {
    match name.find(':') {
        Some(i) if i >= 2 => name.get(..i).is_some_and(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-_".contains(c))
        }),
        _ => false,
    }
}

/// Whether `name` is absolute on any platform that writes image files (`/x`, `\x`, `C:\x`).
pub fn is_absolute_anywhere(name: &str) -> bool {
    let b = name.as_bytes();
    name.starts_with('/')
        || name.starts_with('\\')
        || (b.len() >= 2
            && b.first().is_some_and(u8::is_ascii_alphabetic)
            && b.get(1) == Some(&b':'))
}

/// Whether `name` has a `..` component in either separator style.
pub fn has_parent_component(name: &str) -> bool {
    name.split(['/', '\\']).any(|c| c == "..")
}

/// Why a reference is not opened: the policy refuses the name, or the policy would allow
/// it but it does not resolve to a file (it is missing, a dangling link).
enum Refusal {
    Policy(String),
    Missing(String),
}

impl Refusal {
    fn into_reason(self) -> String {
        match self {
            Refusal::Policy(r) | Refusal::Missing(r) => r,
        }
    }
}

/// Where an allowed reference resolves, and how when not as written.
struct Resolved {
    path: PathBuf,
    note: Option<String>,
}

impl From<PathBuf> for Resolved {
    fn from(path: PathBuf) -> Self {
        Resolved { path, note: None }
    }
}

impl From<&str> for Refusal {
    fn from(s: &str) -> Self {
        Refusal::Policy(s.to_string())
    }
}

impl From<String> for Refusal {
    fn from(s: String) -> Self {
        Refusal::Policy(s)
    }
}

fn check_reference(
    policy: ExternalPolicy,
    vm_dir: Option<&Path>,
    base: Option<&Path>,
    name: &str,
) -> std::result::Result<Resolved, Refusal> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.contains('\0') {
        return Err("name contains a NUL byte".into());
    }
    if is_protocol(name) {
        return Err("protocol references are never opened".into());
    }
    if policy == ExternalPolicy::Deny {
        return Err("the external-reference policy is `none`".into());
    }
    let base_dir = base.and_then(Path::parent).map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    });
    let absolute = is_absolute_anywhere(name);
    let parent = has_parent_component(name);
    let candidate = if absolute {
        PathBuf::from(name)
    } else {
        match base_dir {
            Some(d) => d.join(name),
            None => return Err("relative name but the referring file has no path".into()),
        }
    };
    match policy {
        ExternalPolicy::Deny => Err("the external-reference policy is `none`".into()),
        ExternalPolicy::Any => Ok(candidate.into()),
        ExternalPolicy::SameDir => {
            if absolute {
                return Err("absolute path refused by the `same-dir` policy".into());
            }
            if parent {
                return Err("`..` refused by the `same-dir` policy".into());
            }
            if Path::new(name)
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err("unusual path component refused by the `same-dir` policy".into());
            }
            let dir = base_dir
                .ok_or("the referring file has no directory")?
                .canonicalize()
                .map_err(|e| format!("cannot resolve the referring file's directory: {e}"))?;
            let real = candidate.canonicalize().map_err(|e| {
                Refusal::Missing(format!("cannot resolve {}: {e}", candidate.display()))
            })?;
            if real.parent() != Some(dir.as_path()) {
                return Err(format!(
                    "resolves to {}, outside {} (the `same-dir` policy)",
                    real.display(),
                    dir.display()
                )
                .into());
            }
            Ok(real.into())
        }
        ExternalPolicy::VmDir => {
            let base_dir = base_dir.ok_or("the referring file has no directory")?;
            let root = vm_dir.unwrap_or(base_dir);
            if parent {
                return Err("`..` refused by the `vm-dir` policy".into());
            }
            if absolute {
                return relocate_absolute(root, base_dir, name);
            }
            within_vm_dir(root, base_dir, name).map(Resolved::from)
        }
    }
}

/// Where `name`, found in a file of `base_dir`, resolves under the `vm-dir` policy: a
/// relative name without `..` whose components (separated by `/` or `\\`) are plain,
/// resolving after symlinks to a file inside `root`.
fn within_vm_dir(
    root: &Path,
    base_dir: &Path,
    name: &str,
) -> std::result::Result<PathBuf, Refusal> {
    let mut candidate = base_dir.to_path_buf();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            p if Path::new(p)
                .components()
                .all(|c| matches!(c, Component::Normal(_))) =>
            {
                candidate.push(p)
            }
            _ => return Err("unusual path component refused by the `vm-dir` policy".into()),
        }
    }
    let root = root
        .canonicalize()
        .map_err(|e| format!("cannot resolve the VM's directory: {e}"))?;
    let real = candidate
        .canonicalize()
        .map_err(|e| Refusal::Missing(format!("cannot resolve {}: {e}", candidate.display())))?;
    if real.is_dir() {
        return Err(format!("{} is a directory, not a file", real.display()).into());
    }
    if !real.starts_with(&root) {
        return Err(format!(
            "resolves to {}, outside {} (the `vm-dir` policy)",
            real.display(),
            root.display()
        )
        .into());
    }
    Ok(real)
}

/// How many trailing components of an absolute name [`relocate_absolute`] tries.
const MAX_RELOCATE_COMPONENTS: usize = 16;

/// Where an absolute `name` resolves under the `vm-dir` policy. Configurations record the
/// paths of the host that wrote them (`/Users/a/Parallels/Win.pvm/harddisk.hdd`,
/// `/vmfs/volumes/ds1/vm/vm.vmdk`, `C:\VMs\vm\disk.vdi`), which name nothing once the
/// VM is copied to an analyst's machine. The name is allowed as written when it resolves to a
/// file inside `root`; otherwise its trailing components are looked up, longest first, below
/// the referring file's directory and below `root` — never outside `root` — and the match is
/// reported in the decision's note, as VMware and Parallels find a moved VM's files.
fn relocate_absolute(
    root: &Path,
    base_dir: &Path,
    name: &str,
) -> std::result::Result<Resolved, Refusal> {
    let canonical_root = root
        .canonicalize()
        .map_err(|e| format!("cannot resolve the VM's directory: {e}"))?;
    if cfg!(unix) && name.starts_with('/') && !name.contains('\\') {
        if let Ok(real) = Path::new(name).canonicalize() {
            if real.starts_with(&canonical_root) && real.is_file() {
                return Ok(real.into());
            }
        }
    }
    let parts: Vec<&str> = name
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    // A drive (`C:`) or a UNC server is where the path lived, not part of the VM.
    let parts = match parts.split_first() {
        Some((first, rest)) if first.ends_with(':') || name.starts_with("\\\\") => rest,
        _ => parts.as_slice(),
    };
    let longest = parts.len().min(MAX_RELOCATE_COMPONENTS);
    for k in (1..=longest).rev() {
        let Some(tail) = parts.get(parts.len() - k..) else {
            continue;
        };
        let tail = tail.join("/");
        for dir in [base_dir, root] {
            if let Ok(path) = within_vm_dir(root, dir, &tail) {
                return Ok(Resolved {
                    path,
                    note: Some(format!(
                        "absolute name from another host, found as {tail:?} inside the VM \
                         directory"
                    )),
                });
            }
        }
    }
    Err(Refusal::Missing(format!(
        "absolute name outside the VM directory {}, and no file inside it has its trailing \
         name(s)",
        canonical_root.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vmsnap-policy-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn classifies_names() {
        assert!(is_protocol("nbd:host:1"));
        assert!(is_protocol("json:{\"a\":1}"));
        assert!(is_protocol("http://x/y"));
        assert!(!is_protocol("C:\\x.vhd"));
        assert!(!is_protocol("plain.qcow2"));
        assert!(is_absolute_anywhere("/etc/passwd"));
        assert!(is_absolute_anywhere("C:\\Users\\x.vhdx"));
        assert!(is_absolute_anywhere("\\\\server\\share"));
        assert!(!is_absolute_anywhere("a/b"));
        assert!(has_parent_component("a/../b"));
        assert!(has_parent_component("..\\b"));
        assert!(!has_parent_component("a..b"));
    }

    #[test]
    fn deny_opens_nothing_and_logs() {
        let opened = Arc::new(AtomicUsize::new(0));
        let o = opened.clone();
        let r = Resolver::with_opener(ExternalPolicy::Deny, move |p| {
            o.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(FileSource::open(p)?) as Arc<dyn Source>)
        });
        let (rec, res) = r.open(RefKind::Backing, Some(Path::new("/tmp/x.qcow2")), "y.qcow2");
        assert_eq!(res.unwrap_err().kind(), ErrorKind::PolicyDenied);
        assert!(matches!(rec.decision, RefDecision::Denied { .. }));
        assert_eq!(opened.load(Ordering::SeqCst), 0);
        assert_eq!(r.log().len(), 1);
        assert_eq!(rec.finding().rule, "backing_file");
    }

    #[test]
    fn same_dir_allows_siblings_only() {
        let d = tmpdir("same");
        let sub = d.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(d.join("base.img"), b"b").unwrap();
        std::fs::write(sub.join("deep.img"), b"d").unwrap();
        let top = d.join("top.img");
        std::fs::write(&top, b"t").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", d.join("link.img")).ok();
        let r = Resolver::new(ExternalPolicy::SameDir);
        assert!(r.check(Some(&top), "base.img").is_ok());
        assert!(r.check(Some(&top), "./base.img").is_ok());
        assert!(r
            .check(Some(&top), "/etc/passwd")
            .unwrap_err()
            .contains("absolute"));
        assert!(r.check(Some(&top), "../x.img").unwrap_err().contains(".."));
        assert!(r
            .check(Some(&top), "sub/deep.img")
            .unwrap_err()
            .contains("outside"));
        assert!(r
            .check(Some(&top), "nbd:localhost:10809")
            .unwrap_err()
            .contains("protocol"));
        #[cfg(unix)]
        assert!(r
            .check(Some(&top), "link.img")
            .unwrap_err()
            .contains("outside"));
        assert!(r.check(None, "base.img").is_err());
        let (rec, res) = r.open(RefKind::Parent, Some(&top), "base.img");
        assert!(res.is_ok());
        assert!(matches!(rec.decision, RefDecision::Opened { .. }));
        // A sibling that does not exist is allowed but missing: failed, not denied.
        let (rec, res) = r.open(RefKind::Parent, Some(&top), "missing.img");
        assert!(res.is_err());
        assert!(matches!(rec.decision, RefDecision::Failed { .. }));
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn vm_dir_allows_the_vm_directory_and_below_only() {
        let d = tmpdir("vmdir");
        let vm = d.join("vm");
        let snaps = vm.join("Snapshots");
        std::fs::create_dir_all(&snaps).unwrap();
        std::fs::write(vm.join("disk.vdi"), b"b").unwrap();
        std::fs::write(snaps.join("diff.vdi"), b"d").unwrap();
        std::fs::write(d.join("outside.img"), b"o").unwrap();
        let config = vm.join("vm.vbox");
        std::fs::write(&config, b"c").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", vm.join("link.img")).ok();
            std::os::unix::fs::symlink(&d, snaps.join("up")).ok();
        }
        let r = Resolver::new(ExternalPolicy::VmDir).with_vm_dir(&vm);
        assert_eq!(
            r.check(Some(&config), "disk.vdi").unwrap(),
            vm.canonicalize().unwrap().join("disk.vdi")
        );
        assert!(r.check(Some(&config), "Snapshots/diff.vdi").is_ok());
        assert!(r.check(Some(&config), "Snapshots\\diff.vdi").is_ok());
        assert!(r.check(Some(&config), "./Snapshots/./diff.vdi").is_ok());
        // A file in a subdirectory may name its siblings and the VM directory's files
        // through names that stay inside; `..` is refused even when it would stay inside.
        let diff = snaps.join("diff.vdi");
        assert!(r.check(Some(&diff), "diff.vdi").is_ok());
        assert!(r
            .check(Some(&diff), "../disk.vdi")
            .unwrap_err()
            .contains(".."));
        assert!(r
            .check(Some(&config), "../outside.img")
            .unwrap_err()
            .contains(".."));
        assert!(r
            .check(Some(&config), "/etc/passwd")
            .unwrap_err()
            .contains("absolute"));
        // An absolute name from another host is found by its trailing names inside the VM.
        assert_eq!(
            r.check(Some(&config), "C:\\vm\\disk.vdi").unwrap(),
            vm.canonicalize().unwrap().join("disk.vdi")
        );
        assert!(r
            .check(Some(&config), "nbd:host:1")
            .unwrap_err()
            .contains("protocol"));
        #[cfg(unix)]
        {
            assert!(r
                .check(Some(&config), "link.img")
                .unwrap_err()
                .contains("outside"));
            assert!(r
                .check(Some(&config), "Snapshots/up/outside.img")
                .unwrap_err()
                .contains("outside"));
        }
        // The directory itself is not a file of the VM.
        assert!(r
            .check(Some(&config), "Snapshots")
            .unwrap_err()
            .contains("directory"));
        let (rec, res) = r.open(RefKind::Parent, Some(&config), "missing.vdi");
        assert!(res.is_err());
        assert!(matches!(rec.decision, RefDecision::Failed { .. }));
        // Without a VM directory, the referring file's directory is the root.
        let r = Resolver::new(ExternalPolicy::VmDir);
        assert!(r.check(Some(&diff), "diff.vdi").is_ok());
        assert!(r.check(Some(&config), "Snapshots/diff.vdi").is_ok());
        assert_eq!(ExternalPolicy::VmDir.as_str(), "vm-dir");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn vm_dir_relocates_absolute_names_inside_the_vm_only() {
        let d = tmpdir("relocate");
        let vm = d.join("Win.pvm");
        let bundle = vm.join("harddisk.hdd");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(bundle.join("DiskDescriptor.xml"), b"x").unwrap();
        std::fs::write(bundle.join("disk.hds"), b"h").unwrap();
        std::fs::write(vm.join("disk.hds"), b"decoy").unwrap();
        std::fs::write(d.join("secret"), b"s").unwrap();
        let config = vm.join("config.pvs");
        std::fs::write(&config, b"c").unwrap();
        let root = vm.canonicalize().unwrap();
        let r = Resolver::new(ExternalPolicy::VmDir).with_vm_dir(&vm);
        // The longest trailing match wins: the bundle's file, not the decoy of the same
        // name in the VM directory.
        let (rec, res) = r.open(
            RefKind::Extent,
            Some(&config),
            "/Users/alice/Parallels/Win.pvm/harddisk.hdd/disk.hds",
        );
        assert!(res.is_ok());
        match &rec.decision {
            RefDecision::Opened {
                path,
                note: Some(note),
            } => {
                assert_eq!(path, &root.join("harddisk.hdd/disk.hds"));
                assert!(note.contains("\"harddisk.hdd/disk.hds\""), "{note}");
            }
            other => panic!("{other:?}"),
        }
        assert!(rec.decision.describe().contains("another host"));
        // Windows names too; a file in the bundle finds its siblings first.
        let descriptor = bundle.join("DiskDescriptor.xml");
        assert_eq!(
            r.check(Some(&descriptor), "D:\\VMs\\disk.hds").unwrap(),
            root.join("harddisk.hdd/disk.hds")
        );
        assert_eq!(
            r.check(Some(&config), "\\\\server\\share\\disk.hds")
                .unwrap(),
            root.join("disk.hds")
        );
        // A name inside the VM directory is taken as written, without a note.
        let inside = root.join("harddisk.hdd/disk.hds");
        let (rec, _) = r.open(RefKind::Extent, Some(&config), inside.to_str().unwrap());
        assert!(matches!(
            rec.decision,
            RefDecision::Opened { note: None, .. }
        ));
        // A host file is never opened: outside the VM, its names find nothing inside.
        let secret = d.canonicalize().unwrap().join("secret");
        let (rec, res) = r.open(RefKind::Extent, Some(&config), secret.to_str().unwrap());
        assert!(res.is_err());
        assert!(
            matches!(rec.decision, RefDecision::Failed { .. }),
            "{rec:?}"
        );
        assert!(r
            .check(Some(&config), "/etc/passwd")
            .unwrap_err()
            .contains("absolute"));
        assert!(r
            .check(Some(&config), "/x/../harddisk.hdd/disk.hds")
            .unwrap_err()
            .contains(".."));
        // A directory is not a file of the VM, even at the end of a relocated name.
        assert!(r.check(Some(&config), "/elsewhere/harddisk.hdd").is_err());
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn any_allows_absolute_but_never_protocols() {
        let r = Resolver::new(ExternalPolicy::Any);
        assert_eq!(
            r.check(Some(Path::new("/a/b.img")), "/etc/hosts").unwrap(),
            PathBuf::from("/etc/hosts")
        );
        assert_eq!(
            r.check(Some(Path::new("/a/b.img")), "../c.img").unwrap(),
            PathBuf::from("/a/../c.img")
        );
        assert!(r.check(Some(Path::new("/a/b.img")), "http://h/x").is_err());
    }
}

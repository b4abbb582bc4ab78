//! The one rule for references that were not opened. A backing file, parent disk, extent,
//! external data file or companion that is missing, or that the [`ExternalPolicy`]
//! refused, is stood in for by an [`UnavailableLayer`]: its bytes are never silently
//! zeros. Reading them fails with [`ErrorKind::Unavailable`], naming the reference, what
//! became of it and the layer that needs it, unless the reader opted into zeros
//! ([`MissingPolicy::Zeros`]); either way its extents are [`ExtentKind::Unavailable`].
//!
//! Formats make one with [`Resolver::unavailable`], which also records it, so a front end
//! can say once per reference that its bytes read as zeros
//! ([`Resolver::unavailable_refs`]).
//!
//! [`ExternalPolicy`]: crate::ExternalPolicy

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use crate::error::{Error, ErrorKind, Result};
use crate::extent::{Extent, ExtentKind};
use crate::layer::{check_read, AddressSpace, Layer};
use crate::policy::{ExternalRef, MissingPolicy, RefDecision, RefKind, Resolver};

/// A reference that was not opened, with the layer that needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnavailableRef {
    /// The reference as the file has it, and what became of it.
    pub reference: ExternalRef,
    /// The name of the referring layer (format), e.g. `qcow2`.
    pub referrer: String,
    /// The file holding the reference, when known.
    pub referrer_path: Option<PathBuf>,
}

impl UnavailableRef {
    /// What is unavailable and why, e.g. `the backing file "base.qcow2" is unavailable
    /// (could not be opened: No such file or directory (os error 2))`.
    pub fn description(&self) -> String {
        // A reference that was opened but is stood in for anyway (its format could not
        // be read) is reported as such by the format through `Failed`.
        let why = self.reference.decision.describe();
        format!(
            "the {} {:?} is unavailable ({why})",
            self.reference.kind.noun(),
            self.reference.name
        )
    }

    /// The error a read that needs the reference's bytes fails with: kind
    /// [`ErrorKind::Unavailable`], in the referring layer and file.
    pub fn error(&self) -> Error {
        let e = Error::new(
            ErrorKind::Unavailable,
            format!(
                "{}; reading these bytes needs it (--missing=zeros reads zeros instead)",
                self.description()
            ),
        )
        .in_layer(self.referrer.clone());
        match &self.referrer_path {
            Some(p) => e.in_file(p),
            None => e,
        }
    }
}

/// One reference standing for several candidates of which none was opened (a parent
/// looked for under each of its locator names, or by UUID among files): named `name`,
/// denied when the policy refused every candidate, failed otherwise, with every candidate
/// tried and what became of it in the reason.
pub fn none_opened(kind: RefKind, name: &str, tried: &[ExternalRef]) -> ExternalRef {
    let all_denied = !tried.is_empty()
        && tried
            .iter()
            .all(|r| matches!(r.decision, RefDecision::Denied { .. }));
    let each: Vec<String> = tried
        .iter()
        .map(|r| format!("{:?} {}", r.name, r.decision.describe()))
        .collect();
    let reason = if each.is_empty() {
        "no candidate file was found".to_string()
    } else {
        format!("tried {}", each.join("; "))
    };
    ExternalRef {
        kind,
        name: name.to_string(),
        decision: if all_denied {
            RefDecision::Denied { reason }
        } else {
            RefDecision::Failed { reason }
        },
    }
}

/// Stands in for a reference that was not opened (see the module docs): `len` bytes that
/// fail to read under [`MissingPolicy::Error`] and read as zeros under
/// [`MissingPolicy::Zeros`], all of them [`ExtentKind::Unavailable`].
///
/// ```
/// use std::path::Path;
/// use vmsnap_core::{
///     ErrorKind, ExtentKind, ExternalPolicy, Layer, MissingPolicy, RefKind, Resolver,
/// };
///
/// // A qcow2 at /images/top.qcow2 names "base.qcow2"; the `none` policy refuses it.
/// let resolver = Resolver::new(ExternalPolicy::Deny);
/// let top = Path::new("/images/top.qcow2");
/// let (reference, opened) = resolver.open(RefKind::Backing, Some(top), "base.qcow2");
/// assert!(opened.is_err());
/// let backing = resolver.unavailable(&reference, "qcow2", Some(top), 1 << 20);
///
/// let mut buf = [0xffu8; 512];
/// let err = backing.read_at(0, &mut buf).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Unavailable);
/// assert!(err.to_string().contains("backing file \"base.qcow2\""));
/// assert_eq!(backing.extents(0..4096).unwrap()[0].kind, ExtentKind::Unavailable);
///
/// // The explicit opt-in reads zeros, and the resolver lists what reads as zeros.
/// let resolver = Resolver::new(ExternalPolicy::Deny).with_missing(MissingPolicy::Zeros);
/// let (reference, _) = resolver.open(RefKind::Backing, Some(top), "base.qcow2");
/// let backing = resolver.unavailable(&reference, "qcow2", Some(top), 1 << 20);
/// backing.read_at(0, &mut buf).unwrap();
/// assert_eq!(buf, [0u8; 512]);
/// assert_eq!(resolver.unavailable_refs().len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct UnavailableLayer {
    what: UnavailableRef,
    missing: MissingPolicy,
    len: u64,
    space: AddressSpace,
}

impl UnavailableLayer {
    /// A stand-in of `len` bytes for `what`, read under `missing`. Formats use
    /// [`Resolver::unavailable`], which also records it.
    pub fn new(what: UnavailableRef, missing: MissingPolicy, len: u64) -> Self {
        UnavailableLayer {
            what,
            missing,
            len,
            space: AddressSpace::GuestDisk,
        }
    }

    /// The same stand-in speaking `space` (guest-physical for a memory companion; a guest
    /// disk by default).
    #[must_use]
    pub fn in_space(mut self, space: AddressSpace) -> Self {
        self.space = space;
        self
    }

    /// The reference it stands in for.
    pub fn reference(&self) -> &UnavailableRef {
        &self.what
    }

    /// What its reads do.
    pub fn missing(&self) -> MissingPolicy {
        self.missing
    }

    /// The error a read of its bytes fails with under [`MissingPolicy::Error`].
    pub fn error(&self) -> Error {
        self.what.error()
    }
}

impl Layer for UnavailableLayer {
    fn name(&self) -> &str {
        "unavailable"
    }
    fn space(&self) -> AddressSpace {
        self.space
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_read(self, offset, buf.len())?;
        match self.missing {
            MissingPolicy::Error => Err(self.what.error().at(offset)),
            MissingPolicy::Zeros => {
                buf.fill(0);
                Ok(())
            }
        }
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        let end = range.end.min(self.len);
        if range.start >= end {
            return Ok(Vec::new());
        }
        Ok(vec![Extent::of(
            ExtentKind::Unavailable,
            range.start,
            end - range.start,
        )])
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        Vec::new()
    }
    fn describe(&self) -> serde_json::Value {
        json!({
            "format": "unavailable",
            "reference": self.what.reference,
            "referrer": self.what.referrer,
            "reads": match self.missing {
                MissingPolicy::Error => "error",
                MissingPolicy::Zeros => "zeros",
            },
            "message": self.what.description(),
        })
    }
    fn path(&self) -> Option<&Path> {
        None
    }
}

impl Resolver {
    /// The stand-in for `reference` (one this resolver did not open), needed by layer
    /// `referrer` read from the file at `referrer_path`, `len` bytes long (usually the
    /// referring disk's size). Its reads follow this resolver's [`MissingPolicy`]; it is
    /// recorded for [`Resolver::unavailable_refs`]. See [`UnavailableLayer`].
    pub fn unavailable(
        &self,
        reference: &ExternalRef,
        referrer: &str,
        referrer_path: Option<&Path>,
        len: u64,
    ) -> Arc<UnavailableLayer> {
        let what = UnavailableRef {
            reference: reference.clone(),
            referrer: referrer.to_string(),
            referrer_path: referrer_path.map(Path::to_path_buf),
        };
        self.record_unavailable(what.clone());
        Arc::new(UnavailableLayer::new(what, self.missing(), len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ExternalPolicy;

    #[test]
    fn names_reference_decision_and_referrer() {
        let r = Resolver::new(ExternalPolicy::Deny);
        let top = Path::new("/x/top.vhd");
        let (rf, _) = r.open(RefKind::Parent, Some(top), "base.vhd");
        let l = r.unavailable(&rf, "vhd", Some(top), 4096);
        let e = l.read_at(512, &mut [0u8; 16]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.kind().as_str(), "unavailable");
        let msg = e.to_string();
        assert!(msg.starts_with("/x/top.vhd: vhd: at offset 0x200: the parent disk \"base.vhd\" is unavailable (not opened: the external-reference policy is `none`)"), "{msg}");
        // Out of bounds stays out of bounds.
        assert_eq!(
            l.read_at(4090, &mut [0u8; 16]).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
        assert_eq!(
            l.extents(100..10_000).unwrap(),
            vec![Extent::of(ExtentKind::Unavailable, 100, 3996)]
        );
        assert_eq!(r.unavailable_refs().len(), 1);
        // The same reference twice is one report.
        let _ = r.unavailable(&rf, "vhd", Some(top), 4096);
        assert_eq!(r.unavailable_refs().len(), 1);
    }

    #[test]
    fn zeros_only_when_asked() {
        let r = Resolver::new(ExternalPolicy::SameDir).with_missing(MissingPolicy::Zeros);
        let dir = std::env::temp_dir();
        let top = dir.join("vmsnap-unavailable-test-top.img");
        let (rf, res) = r.open(RefKind::Companion, Some(&top), "no-such-file.vmem");
        assert!(res.is_err());
        assert!(matches!(rf.decision, RefDecision::Failed { .. }), "{rf:?}");
        let l = r.unavailable(&rf, "vmware", Some(&top), 64);
        let mut b = [9u8; 64];
        l.read_at(0, &mut b).unwrap();
        assert_eq!(b, [0u8; 64]);
        assert!(l.reference().description().contains("could not be opened"));
    }
}

//! The OVA side: the archive's members, the descriptor among them, each disk read in
//! place as a window of the archive, and the manifest verified against the members.

use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    AddressSpace, Error, ExternalRef, Finding, Layer, LayerExt, OpenCtx, RefDecision, RefKind,
    Result, SliceLayer,
};

use crate::descriptor::FileRef;
use crate::manifest::Manifest;
use crate::package::Opened;
use crate::raw::{MAX_MANIFEST, MAX_XML_LEN};
use crate::rule::MEMBER;
use crate::tar::{members, Member};

/// An OVA's members, with the descriptor, manifest and certificate found among them.
#[derive(Debug)]
pub struct Archive {
    /// Every member, in archive order.
    pub members: Vec<Member>,
    /// The descriptor member's index.
    pub descriptor: usize,
    /// The manifest member's name and content.
    pub manifest: Option<(String, Manifest)>,
    /// The certificate member's name (listed, not verified).
    pub certificate: Option<String>,
    /// Findings about the members.
    pub findings: Vec<Finding>,
}

fn ends_with(name: &str, ext: &str) -> bool {
    name.len() > ext.len()
        && name
            .get(name.len() - ext.len()..)
            .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

impl Archive {
    /// Reads the members of `file`; an archive with no usable `.ovf` member is a broken
    /// OVA ([`Error::malformed`]: the probe saw an `.ovf` first, so it is not declined,
    /// which would let the stacker read the archive as raw bytes).
    pub fn read(file: &dyn Layer) -> Result<Archive> {
        let members = members(file)?;
        let mut findings = Vec::new();
        for m in &members {
            if let Some(why) = m.refused() {
                findings.push(Finding::warning(MEMBER, format!("{why}: not used")).at(m.header));
            }
        }
        let usable = |m: &&Member| m.refused().is_none();
        let descriptor = members
            .iter()
            .position(|m| usable(&m) && ends_with(&m.name, ".ovf"))
            .ok_or_else(|| {
                Error::malformed(0, "no regular top-level .ovf member: not a usable OVA")
            })?;
        if descriptor != 0 {
            findings.push(Finding::warning(
                MEMBER,
                "the .ovf descriptor is not the archive's first member (DSP0243 requires it)",
            ));
        }
        let manifest = match members
            .iter()
            .find(|m| usable(m) && ends_with(&m.name, ".mf"))
        {
            Some(m) => {
                let bytes = file.read_vec(m.offset, m.size, MAX_MANIFEST, "OVA manifest")?;
                Some((m.name.clone(), Manifest::parse(&bytes)))
            }
            None => None,
        };
        let certificate = members
            .iter()
            .find(|m| usable(m) && ends_with(&m.name, ".cert"))
            .map(|m| m.name.clone());
        Ok(Archive {
            members,
            descriptor,
            manifest,
            certificate,
            findings,
        })
    }

    /// The descriptor's bytes.
    pub fn descriptor_bytes(&self, file: &dyn Layer) -> Result<Vec<u8>> {
        let m = self
            .members
            .get(self.descriptor)
            .ok_or_else(|| Error::malformed(0, "no descriptor member"))?;
        file.read_vec(m.offset, m.size, MAX_XML_LEN, "OVF descriptor member")
    }

    /// The usable member named `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.name == name && m.refused().is_none())
    }

    /// Opens the member `f.href` names as a disk (its format probed among the registry's
    /// disk plugins); an `href` naming no member is a missing reference.
    pub fn open_disk(&self, file: &Arc<dyn Layer>, f: &FileRef, ctx: &OpenCtx<'_>) -> Opened {
        let Some(m) = self.member(&f.href) else {
            let reason = match self.members.iter().find(|m| m.name == f.href) {
                Some(m) => m.refused().unwrap_or_default(),
                None => "no member of the OVA has this name".to_string(),
            };
            return Opened {
                status: format!("missing: {reason}"),
                reference: Some(ExternalRef {
                    kind: RefKind::VmFile,
                    name: f.href.clone(),
                    decision: RefDecision::Failed { reason },
                }),
                layer: None,
            };
        };
        let at = format!("member {:?} at {} ({} bytes)", m.name, m.offset, m.size);
        let opened = SliceLayer::new(
            m.name.clone(),
            AddressSpace::File,
            file.clone(),
            m.offset,
            m.size,
        )
        .and_then(|s| ctx.registry.open_chained(Arc::new(s), None, ctx));
        match opened {
            Ok(l) => Opened {
                reference: None,
                layer: Some(l),
                status: at,
            },
            Err(e) => Opened {
                reference: None,
                layer: None,
                status: format!("{at}: not read: {e}"),
            },
        }
    }

    /// The files a manifest may list: every usable member, as a window of `file`.
    pub fn files(&self, file: &Arc<dyn Layer>) -> Vec<(String, Arc<dyn Layer>)> {
        self.members
            .iter()
            .filter(|m| m.refused().is_none())
            .filter_map(|m| {
                SliceLayer::new(
                    m.name.clone(),
                    AddressSpace::File,
                    file.clone(),
                    m.offset,
                    m.size,
                )
                .ok()
                .map(|l| (m.name.clone(), Arc::new(l) as Arc<dyn Layer>))
            })
            .collect()
    }

    /// Verifies the manifest against the members ([`crate::manifest::verify`]).
    pub fn verify(&self, file: &Arc<dyn Layer>) -> (Vec<Finding>, Value) {
        let exempt: Vec<&str> = self.certificate.iter().map(String::as_str).collect();
        crate::manifest::verify(self.manifest.as_ref(), &self.files(file), &exempt)
    }

    /// The members, manifest and certificate as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "members": self.members.iter().map(Member::to_json).collect::<Vec<_>>(),
            "descriptor": self.members.get(self.descriptor).map(|m| &m.name),
            "manifest": self.manifest.as_ref().map(|(n, _)| n),
            "certificate": self.certificate,
        })
    }
}

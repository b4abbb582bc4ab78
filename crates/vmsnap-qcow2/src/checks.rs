//! Safety findings (OpenStack's Q1–Q4 under their names, and the qcow2 rules of the
//! recommended superset) and metadata placement checks.

use vmsnap_core::{Finding, Findings};

use crate::header::Header;
use crate::raw;
use crate::snapshot::Snapshot;

/// A metadata structure's place in the file.
#[derive(Debug, Clone)]
pub struct Region {
    /// What it is.
    pub what: String,
    /// Start offset.
    pub start: u64,
    /// Length.
    pub len: u64,
}

/// Header-level findings.
pub fn header_findings(h: &Header, out: &mut Findings) {
    // Q1: any backing file offset, whatever the size field says.
    if h.backing_file_offset != 0 && h.backing_file.is_none() {
        out.push(
            Finding::unsafe_(
                vmsnap_core::rule::BACKING_FILE,
                format!(
                    "backing_file_offset is {:#x} (with an empty name): OpenStack treats any \
                     backing file offset as a backing file",
                    h.backing_file_offset
                ),
            )
            .at(raw::off::BACKING_OFFSET as u64),
        );
    }
    // Q2: bit 2 of bytes 72..80, also on version 2 where they are not header fields.
    if h.version == 2 && h.raw_bytes_72 & raw::INCOMPAT_DATA_FILE != 0 {
        out.push(
            Finding::unsafe_(
                vmsnap_core::rule::DATA_FILE,
                "version 2 image with bit 2 set in bytes 72..80 (the v3 data-file bit); \
                 not a data file for QEMU, but OpenStack's inspector rejects it",
            )
            .at(raw::off::INCOMPAT as u64),
        );
    }
    if h.has_data_file() && h.data_file.is_none() {
        out.push(
            Finding::unsafe_(
                vmsnap_core::rule::DATA_FILE,
                "external data file bit set but no data file name extension",
            )
            .at(raw::off::INCOMPAT as u64),
        );
    }
    if !h.has_data_file() && h.data_file.is_some() {
        out.push(Finding::warning(
            vmsnap_core::rule::DATA_FILE,
            format!(
                "data file name extension {:?} present, but the data-file bit is clear: QEMU \
                 ignores it",
                h.data_file_name().unwrap_or_default()
            ),
        ));
    }
    // Q4: OpenStack allows only bits 0-3 and so rejects extended L2 (bit 4), which QEMU
    // has read since 5.2 and this reader reads too: it refers to nothing outside the file,
    // so it is information here, under OpenStack's rule id so a pipeline sees the difference.
    if h.version == 3 && h.extended_l2() {
        out.push(
            Finding::info(
                crate::rule::UNKNOWN_FEATURES,
                "incompatible feature bit 4 (extended L2 entries): known and read here \
                 (QEMU reads it since 5.2); OpenStack's format inspector rejects any \
                 incompatible bit above 3",
            )
            .at(raw::off::INCOMPAT as u64),
        );
    }
    if h.incompatible & raw::INCOMPAT_CORRUPT != 0 {
        out.push(
            Finding::unsafe_(
                crate::rule::CORRUPT,
                "the corrupt bit is set: QEMU found the metadata inconsistent and refuses \
                 to write the image",
            )
            .at(raw::off::INCOMPAT as u64),
        );
    }
    if h.incompatible & raw::INCOMPAT_DIRTY != 0 {
        out.push(
            Finding::warning(
                crate::rule::DIRTY,
                "the dirty bit is set: refcounts may be stale (needs `qemu-img check -r`)",
            )
            .at(raw::off::INCOMPAT as u64),
        );
    }
    match h.crypt_method {
        raw::CRYPT_NONE => {}
        raw::CRYPT_AES => out.push(
            Finding::unsafe_(
                crate::rule::ENCRYPTION,
                "legacy AES-CBC encryption (crypt_method 1, insecure): metadata is readable, \
                 data is not",
            )
            .at(raw::off::CRYPT as u64),
        ),
        raw::CRYPT_LUKS => out.push(
            Finding::warning(
                crate::rule::ENCRYPTION,
                "LUKS encryption (crypt_method 2): metadata is readable, data is not",
            )
            .at(raw::off::CRYPT as u64),
        ),
        m => out.push(
            Finding::unsafe_(crate::rule::ENCRYPTION, format!("unknown crypt_method {m}"))
                .at(raw::off::CRYPT as u64),
        ),
    }
    if h.autoclear & raw::AUTOCLEAR_DATA_FILE_RAW != 0 && !h.has_data_file() {
        // QEMU refuses to open the image: never safe.
        out.push(Finding::unsafe_(
            crate::rule::DATA_FILE_RAW,
            "the raw-external-data autoclear bit is set without an external data file \
             (QEMU: \"data-file-raw requires a data file\")",
        ));
    }
    if h.autoclear & raw::AUTOCLEAR_DATA_FILE_RAW != 0 && h.backing_file_offset != 0 {
        out.push(Finding::warning(
            crate::rule::DATA_FILE_RAW,
            "the raw-external-data bit conflicts with a backing file",
        ));
    }
    for (rule, msg, at) in &h.notes {
        out.push(Finding::warning(rule, msg.clone()).at(*at));
    }
}

/// Findings about where metadata lies: outside the file, or overlapping other metadata.
pub fn placement_findings(regions: &mut [Region], file_len: u64, out: &mut Findings) {
    for r in regions.iter() {
        if r.len > 0 && r.start.checked_add(r.len).is_none_or(|e| e > file_len) {
            out.push(
                Finding::unsafe_(
                    crate::rule::TABLE_OUTSIDE_FILE,
                    format!(
                        "{} ({} bytes at {:#x}) lies past the end of the file ({file_len} bytes)",
                        r.what, r.len, r.start
                    ),
                )
                .at(r.start),
            );
        }
    }
    regions.sort_by_key(|r| r.start);
    let mut prev: Option<&Region> = None;
    for r in regions.iter().filter(|r| r.len > 0) {
        if let Some(p) = prev {
            if r.start < p.start.saturating_add(p.len) {
                out.push(
                    Finding::unsafe_(
                        crate::rule::METADATA_OVERLAP,
                        format!(
                            "{} at {:#x} overlaps {} at {:#x}",
                            r.what, r.start, p.what, p.start
                        ),
                    )
                    .at(r.start),
                );
            }
            if r.start.saturating_add(r.len) > p.start.saturating_add(p.len) {
                prev = Some(r);
            }
        } else {
            prev = Some(r);
        }
    }
}

/// Info finding listing internal snapshots.
pub fn snapshot_findings(snaps: &[Snapshot], out: &mut Findings) {
    if snaps.is_empty() {
        return;
    }
    let with_state = snaps.iter().filter(|s| s.vm_state_size > 0).count();
    out.push(Finding::info(
        crate::rule::SNAPSHOTS,
        format!(
            "{} internal snapshot(s), {with_state} with VM state",
            snaps.len()
        ),
    ));
}

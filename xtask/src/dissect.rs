//! `cargo xtask dissect`: every value dissect.hypervisor reads from the Hyper-V corpus
//! (and from the VMware `.vmx`/`.vmsd` samples, `crates/vmsnap-vmx/tests/oracle.rs`)
//! must equal vmsnap's (`crates/vmsnap-hyperv/tests/corpus.rs`, an ignored test, with
//! `tests/scripts/dissect_dump.py` run by a Python that has dissect.hypervisor); so must
//! every state of the Parallels bundles (`crates/vmsnap-hdd/tests/dissect.rs`), and the
//! ASIF samples must read the same bytes (`crates/vmsnap-asif/tests/oracle.rs`), and every
//! device dissect.archive reads from the Proxmox VMA sample must equal vmsnap's
//! (`crates/vmsnap-vma/tests/dissect.rs`), and the VirtualBox settings corpus what
//! `descriptor/vbox.py` reads (`crates/vmsnap-vbox/tests/dissect.rs`), and the Parallels VM
//! corpus what `descriptor/pvs.py` and `disk/hdd.py` read (`crates/vmsnap-pvs/tests/dissect.rs`).
//! `descriptor/vbox.py` reads (`crates/vmsnap-vbox/tests/dissect.rs`), and the OVF
//! packages' disks what `descriptor/ovf.py` lists (`crates/vmsnap-ovf/tests/dissect.rs`).

use std::path::PathBuf;
use std::process::Command;

use crate::{root, sh};

/// The dissect.hypervisor release the comparison was last checked with. Pinned so CI
/// compares against the same reader every run; raise it deliberately.
const DISSECT_HYPERVISOR: &str = "dissect.hypervisor==3.21";
/// The dissect.archive release (Proxmox VMA: `crates/vmsnap-vma/tests/dissect.rs`).
const DISSECT_ARCHIVE: &str = "dissect.archive==1.8";

/// A Python with dissect.hypervisor: `$DISSECT_PYTHON`, else a venv under `target/`
/// (made, and the package installed from PyPI, when missing).
fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DISSECT_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = root().join("target").join("dissect-venv");
    let py = venv.join("bin").join("python");
    if !py.is_file() && !sh(Command::new("python3").arg("-m").arg("venv").arg(&venv)) {
        eprintln!(
            "xtask: cannot make a venv (python3 -m venv; on Debian: apt-get install python3-venv)"
        );
        return None;
    }
    // Quick and offline when the pinned release is installed already.
    sh(Command::new(&py).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        DISSECT_HYPERVISOR,
        DISSECT_ARCHIVE,
    ]))
    .then_some(py)
}

/// The ignored tests that compare with dissect: (crate, test).
const TESTS: &[(&str, &str)] = &[
    ("vmsnap-hyperv", "corpus"),
    // VMware .vmx/.vmsd: every key, disk path and the encryption `VMX.parse` reports.
    ("vmsnap-vmx", "oracle"),
    ("vmsnap-hdd", "dissect"),
    ("vmsnap-asif", "oracle"),
    ("vmsnap-vma", "dissect"),
    // VirtualBox settings: the machine, media registry and snapshots descriptor/vbox.py reads.
    ("vmsnap-vbox", "dissect"),
    // Parallels .pvm: PVS.disks() and every disk's bytes as HDD reads the bundle.
    ("vmsnap-pvs", "dissect"),
    // OVF/OVA: the disk files descriptor/ovf.py lists, and their bytes as dissect reads them.
    ("vmsnap-ovf", "dissect"),
];

/// Runs the comparisons, every one even when an earlier one fails.
pub fn run() -> bool {
    let Some(py) = python() else {
        return false;
    };
    let mut ok = true;
    for (krate, test) in TESTS {
        ok &= sh(Command::new("cargo")
            .args([
                "test",
                "-p",
                krate,
                "--test",
                test,
                "--",
                "--ignored",
                "--nocapture",
            ])
            .env("DISSECT_PYTHON", &py));
    }
    ok
}

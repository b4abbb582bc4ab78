//! `vmsnap serve` through nbdkit, read by real NBD clients: `qemu-img convert` and
//! `nbdcopy` read the same bytes as `vmsnap convert` writes (a disk, a disk in a backing
//! chain, guest memory of a savevm qcow2 and of a Hyper-V `.vmrs`), `nbdinfo --map` sees
//! the extents `vmsnap map --json` lists, a missing backing file fails reads unless
//! `--missing zeros`, SIGTERM and SIGINT end it with exit 0 and no socket left, and without
//! nbdkit it exits 2 naming the package. nbdkit, nbdinfo and nbdcopy come from
//! `tools/setup.sh` (Debian `nbdkit`, `libnbd-bin`); without them these tests are skipped,
//! except under CI, where that is a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{s, stderr, vmsnap};
use rustix::fs::SeekFrom;
use serde_json::Value;
use vmsnap_testkit::{corpus, scratch_dir, workspace_root};

/// Whether the NBD tools are here; under CI their absence fails the test.
fn have_nbd_tools() -> bool {
    let ok = ["nbdkit", "nbdinfo", "nbdcopy", "qemu-img"]
        .iter()
        .all(|t| {
            Command::new(t)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "nbdkit, nbdinfo, nbdcopy or qemu-img is missing: tools/setup.sh installs them"
        );
        eprintln!("skipped: nbdkit, libnbd-bin or qemu-img is not installed");
    }
    ok
}

/// A fresh socket path (short: a Unix socket's path has at most 107 bytes).
fn socket_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "vmsnap-serve-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A running `vmsnap serve`, stopped with SIGTERM when dropped.
struct Served {
    child: Child,
    uri: String,
    socket: Option<PathBuf>,
}

impl Served {
    /// Starts `vmsnap serve ARGS` and waits for its ready line.
    fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
            .arg("serve")
            .args(args)
            .current_dir(workspace_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let out = child.wait_with_output().unwrap();
            panic!("serve {args:?} did not start: {}", stderr(&out));
        }
        assert!(line.starts_with("serving "), "{line}");
        let uri = line.trim_end().rsplit(' ').next().unwrap().to_string();
        let socket = args
            .iter()
            .position(|a| *a == "--socket")
            .map(|i| PathBuf::from(args[i + 1]));
        Served { child, uri, socket }
    }

    /// Serves `file` (with `extra` options) on a fresh socket.
    fn unix(file: &Path, extra: &[&str]) -> Served {
        let socket = socket_path();
        let mut a = vec![s(file), "--socket", s(&socket)];
        a.extend_from_slice(extra);
        Served::start(&a)
    }

    /// Sends `sig` and waits: the exit status and what it said on stderr.
    fn stop_with(mut self, sig: rustix::process::Signal) -> (ExitStatus, String) {
        rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), sig).unwrap();
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        }
        (status, err)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = rustix::process::Pid::from_child(&self.child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let _ = self.child.wait();
        }
    }
}

/// Whether files `a` and `b` hold the same bytes, read only where either stores data (the
/// 4 GiB guest-physical space of a savevm is mostly holes).
fn same_bytes(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let (fa, fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let len = fa.metadata().unwrap().len();
    if fb.metadata().unwrap().len() != len {
        return false;
    }
    let data_from = |f: &File, off: u64| match rustix::fs::seek(f, SeekFrom::Data(off)) {
        Ok(p) => p,
        Err(rustix::io::Errno::NXIO) => len,
        Err(e) => panic!("SEEK_DATA: {e}"),
    };
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut off = 0;
    while off < len {
        let next = data_from(&fa, off).min(data_from(&fb, off));
        if next >= len {
            break;
        }
        let n = (len - next).min(1 << 20) as usize;
        fa.read_exact_at(&mut ba[..n], next).unwrap();
        fb.read_exact_at(&mut bb[..n], next).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
        off = next + n as u64;
    }
    true
}

/// The file `vmsnap convert` writes for `file` (with `extra` options).
fn vmsnap_convert(dir: &Path, file: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join("vmsnap.raw");
    let _ = std::fs::remove_file(&out);
    let mut a = vec!["convert", "--quiet", s(file), s(&out)];
    a.extend_from_slice(extra);
    let o = vmsnap(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// The file `qemu-img convert` writes from `uri`, or its error.
fn qemu_img_convert(dir: &Path, uri: &str) -> Result<PathBuf, String> {
    let out = dir.join("qemu-img.raw");
    let _ = std::fs::remove_file(&out);
    let o = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "raw", uri, s(&out)])
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(stderr(&o));
    }
    Ok(out)
}

/// The file `nbdcopy` writes from `uri`.
fn nbdcopy(dir: &Path, uri: &str) -> PathBuf {
    let out = dir.join("nbdcopy.raw");
    let _ = std::fs::remove_file(&out);
    let o = Command::new("nbdcopy")
        .args([uri, s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "nbdcopy {uri}: {}", stderr(&o));
    out
}

/// `(offset, length, NBD type)` runs, adjacent runs of one type merged.
fn merged(runs: impl IntoIterator<Item = (u64, u64, u64)>) -> Vec<(u64, u64, u64)> {
    let mut v: Vec<(u64, u64, u64)> = Vec::new();
    for (o, l, t) in runs {
        match v.last_mut() {
            Some(last) if last.2 == t && last.0 + last.1 == o => last.1 += l,
            _ => v.push((o, l, t)),
        }
    }
    v
}

/// `nbdinfo --map`'s extents of `uri`.
fn nbdinfo_map(uri: &str) -> Vec<(u64, u64, u64)> {
    let o = Command::new("nbdinfo")
        .args(["--map", "--json", uri])
        .output()
        .unwrap();
    assert!(o.status.success(), "nbdinfo {uri}: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    merged(v.as_array().unwrap().iter().map(|e| {
        (
            e["offset"].as_u64().unwrap(),
            e["length"].as_u64().unwrap(),
            e["type"].as_u64().unwrap(),
        )
    }))
}

/// `vmsnap map --json`'s extents in NBD's terms: data is allocated (0), a zero run an
/// allocated zero (2), anything else with no data a hole (1), reading as zeros (3) when
/// `zero` says so.
fn vmsnap_map(file: &Path, extra: &[&str]) -> Vec<(u64, u64, u64)> {
    let mut a = vec!["map", "--json", s(file)];
    a.extend_from_slice(extra);
    let o = vmsnap(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    merged(v["extents"].as_array().unwrap().iter().map(|e| {
        let t = match (
            e["data"].as_bool().unwrap(),
            e["zero"].as_bool().unwrap(),
            e["kind"].as_str().unwrap(),
        ) {
            (true, _, _) => 0,
            (false, true, "zero") => 2,
            (false, true, _) => 3,
            (false, false, _) => 1,
        };
        (
            e["start"].as_u64().unwrap(),
            e["length"].as_u64().unwrap(),
            t,
        )
    }))
}

/// Every client reads `file`'s layer as `vmsnap convert` writes it, and `nbdinfo --map`
/// sees `vmsnap map`'s extents.
fn assert_served_like_convert(tag: &str, file: &Path, layer: &[&str]) {
    let dir = scratch_dir(tag);
    let want = vmsnap_convert(&dir, file, layer);
    let served = Served::unix(file, layer);
    let got = qemu_img_convert(&dir, &served.uri).unwrap();
    assert!(same_bytes(&got, &want), "{tag}: qemu-img read other bytes");
    let got = nbdcopy(&dir, &served.uri);
    assert!(same_bytes(&got, &want), "{tag}: nbdcopy read other bytes");
    let map = nbdinfo_map(&served.uri);
    assert_eq!(map, vmsnap_map(file, layer), "{tag}: extents");
    assert!(
        map.iter().any(|e| e.2 != 0),
        "{tag}: the sample has holes or zeros, and the client must see them"
    );
}

#[test]
fn a_disk_reads_like_convert() {
    if have_nbd_tools() {
        assert_served_like_convert("serve-disk", &corpus("qcow2/v3.qcow2"), &[]);
    }
}

#[test]
fn a_disk_in_a_backing_chain_reads_like_convert() {
    if have_nbd_tools() {
        assert_served_like_convert("serve-chain", &corpus("qcow2/chain-top.qcow2"), &[]);
    }
}

#[test]
fn guest_memory_of_a_savevm_qcow2_reads_like_convert() {
    if have_nbd_tools() {
        assert_served_like_convert(
            "serve-savevm",
            &corpus("qcow2/savevm.qcow2"),
            &["--layer", "qcow2/vmstate:1/qemu"],
        );
    }
}

#[test]
fn guest_memory_of_a_hyperv_vmrs_reads_like_convert() {
    if have_nbd_tools() {
        assert_served_like_convert("serve-vmrs", &corpus("hyperv/savedstate.vmrs"), &[]);
    }
}

#[test]
fn a_missing_backing_file_fails_reads_unless_missing_zeros() {
    if !have_nbd_tools() {
        return;
    }
    let dir = scratch_dir("serve-missing");
    let top = dir.join("chain-top.qcow2");
    std::fs::copy(corpus("qcow2/chain-top.qcow2"), &top).unwrap();

    let served = Served::unix(&top, &[]);
    let err = qemu_img_convert(&dir, &served.uri).unwrap_err();
    assert!(err.contains("Input/output error"), "{err}");
    // The unavailable runs are holes that do not read as zeros.
    let map = nbdinfo_map(&served.uri);
    assert!(map.iter().any(|e| e.2 == 1), "{map:?}");
    assert_eq!(map, vmsnap_map(&top, &[]));
    let (status, log) = served.stop_with(rustix::process::Signal::TERM);
    assert_eq!(status.code(), Some(0));
    assert!(
        log.contains("chain-mid.qcow2"),
        "the failed read is logged: {log}"
    );

    let zeros = ["--missing", "zeros"];
    let want = vmsnap_convert(&dir, &top, &zeros);
    let served = Served::unix(&top, &zeros);
    let got = qemu_img_convert(&dir, &served.uri).unwrap();
    assert!(same_bytes(&got, &want));
    // Not all zeros: the top's own clusters are there.
    assert!(std::fs::read(&got).unwrap().iter().any(|&b| b != 0));
    assert_eq!(nbdinfo_map(&served.uri), vmsnap_map(&top, &zeros));
    let (status, log) = served.stop_with(rustix::process::Signal::TERM);
    assert_eq!(status.code(), Some(0));
    assert!(log.contains("reads as zeros (missing=zeros)"), "{log}");
}

#[test]
fn sigterm_and_sigint_exit_0_and_remove_the_socket() {
    if !have_nbd_tools() {
        return;
    }
    for sig in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let served = Served::unix(&corpus("qcow2/v3.qcow2"), &[]);
        let socket = served.socket.clone().unwrap();
        assert!(socket.exists());
        let (status, err) = served.stop_with(sig);
        assert_eq!(status.code(), Some(0), "{sig:?}: {err}");
        assert!(!socket.exists(), "{sig:?}: the socket is left");
    }
}

#[test]
fn a_tcp_port_listens_on_loopback_only() {
    if !have_nbd_tools() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = corpus("qcow2/v3.qcow2");
    let served = Served::start(&[s(&file), "--port", &port.to_string()]);
    assert_eq!(served.uri, format!("nbd://127.0.0.1:{port}/"));
    let dir = scratch_dir("serve-port");
    let got = qemu_img_convert(&dir, &served.uri).unwrap();
    assert!(same_bytes(&got, &vmsnap_convert(&dir, &file, &[])));
    // The kernel's table of listening sockets: 127.0.0.1 (0100007F) only, no IPv6.
    let listening = |table: &str| -> Vec<String> {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(3) == Some(&"0A") && f[1].ends_with(&format!(":{port:04X}")))
                    .then(|| f[1].to_string())
            })
            .collect()
    };
    assert_eq!(
        listening("/proc/net/tcp"),
        vec![format!("0100007F:{port:04X}")]
    );
    assert!(listening("/proc/net/tcp6").is_empty());
}

#[test]
fn without_nbdkit_it_exits_2_naming_the_package() {
    let o = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["serve", "corpus/qcow2/v3.qcow2", "--socket", "unused.sock"])
        .current_dir(workspace_root())
        .env("PATH", "")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("install the Debian package nbdkit"), "{e}");
    assert!(!workspace_root().join("unused.sock").exists());
}

#[test]
fn a_plugin_path_that_is_not_a_file_is_an_error() {
    if !have_nbd_tools() {
        return;
    }
    let o = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["serve", "corpus/qcow2/v3.qcow2", "--socket", "unused.sock"])
        .current_dir(workspace_root())
        .env("VMSNAP_NBDKIT_PLUGIN", "/nonexistent/libvmsnap_nbdkit.so")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("VMSNAP_NBDKIT_PLUGIN names /nonexistent"));
}

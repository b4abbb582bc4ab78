//! `cargo xtask bench-nbd [--size-mib N] [--runs N]`: `qemu-img convert` reading a qcow2
//! (made by qemu-img from the realistic image of bench-peers) over NBD, served by
//! `vmsnap serve` (nbdkit with the vmsnap plugin) and by `qemu-nbd`, to a null target and to
//! a file; median of N runs. Ratio = qemu-nbd's time / vmsnap's (above 1: vmsnap is faster).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::peers::{remove_output, time};
use crate::{root, sh};

/// A server on a Unix socket, killed when dropped.
struct Server {
    child: Child,
    socket: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Server {
    fn uri(&self) -> String {
        format!("nbd+unix:///?socket={}", self.socket.display())
    }
}

/// `vmsnap serve IMG --socket …`, once it printed its ready line.
fn vmsnap_serve(vmsnap: &Path, img: &Path, socket: &Path) -> Option<Server> {
    let _ = std::fs::remove_file(socket);
    let mut child = Command::new(vmsnap)
        .arg("serve")
        .arg(img)
        .arg("--socket")
        .arg(socket)
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let server = Server {
        child,
        socket: socket.to_path_buf(),
    };
    (!line.is_empty()).then_some(server)
}

/// `qemu-nbd -r -t -f qcow2 -k …`, once a client gets its size.
fn qemu_nbd(img: &Path, socket: &Path) -> Option<Server> {
    let _ = std::fs::remove_file(socket);
    let child = Command::new("qemu-nbd")
        .args(["-r", "-t", "-f", "qcow2", "--shared=0", "-k"])
        .arg(socket)
        .arg(img)
        .spawn()
        .ok()?;
    let server = Server {
        child,
        socket: socket.to_path_buf(),
    };
    for _ in 0..500 {
        let ok = Command::new("nbdinfo")
            .args(["--size", &server.uri()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Median wall time of `runs` runs of `qemu-img convert -f raw OPTS URI DST` (after one
/// untimed run that warms the page cache), `out` removed and `sync` run before each.
fn time_convert(uri: &str, opts: &[&str], dst: &str, out: &Path, runs: usize) -> Option<f64> {
    let convert = || {
        Command::new("qemu-img")
            .args(["convert", "-f", "raw"])
            .args(opts)
            .args([uri, dst])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    remove_output(out);
    if !convert() {
        return None;
    }
    time(runs, out, convert)
}

/// Runs bench-nbd.
pub fn run(args: &[String]) -> bool {
    let mut size_mib = 1024u64;
    let mut runs = 5usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--size-mib" => size_mib = it.next().and_then(|s| s.parse().ok()).unwrap_or(size_mib),
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(runs)
                    .max(1)
            }
            _ => {}
        }
    }
    if !sh(Command::new("cargo").args([
        "build",
        "--release",
        "-p",
        "vmsnap-cli",
        "-p",
        "vmsnap-nbdkit",
    ])) {
        return false;
    }
    let vmsnap = root().join("target/release/vmsnap");
    let dir = root().join("target/peers");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join(format!("realistic-{size_mib}m.raw"));
    if !raw.exists() {
        eprintln!("xtask: writing {}", raw.display());
        vmsnap_testkit::image::write_realistic_raw(&raw, size_mib, 42).unwrap();
    }
    let img = dir.join(format!("realistic-{size_mib}m.qcow2"));
    if !img.exists()
        && !sh(Command::new("qemu-img")
            .args(["convert", "-O", "qcow2"])
            .arg(&raw)
            .arg(&img))
    {
        return false;
    }
    let size = size_mib << 20;
    let out = dir.join("nbd-out.raw");
    let null = format!("driver=null-co,size={size}");
    let file = out.display().to_string();
    let sock = std::env::temp_dir().join(format!("xtask-bench-nbd-{}.sock", std::process::id()));
    let mut rows = Vec::new();
    for (label, start) in [("vmsnap serve (nbdkit)", true), ("qemu-nbd", false)] {
        let server = if start {
            vmsnap_serve(&vmsnap, &img, &sock)
        } else {
            qemu_nbd(&img, &sock)
        };
        let Some(server) = server else {
            eprintln!("xtask: could not start {label}");
            return false;
        };
        let uri = server.uri();
        let to_null = time_convert(&uri, &["-n", "--target-image-opts"], &null, &out, runs);
        let to_file = time_convert(&uri, &["-O", "raw"], &file, &out, runs);
        drop(server);
        rows.push((label, to_null, to_file));
    }
    let _ = std::fs::remove_file(&out);
    let mib = size_mib as f64;
    let rate = |t: Option<f64>| {
        t.map(|t| format!("{:.0} MiB/s ({t:.3} s)", mib / t))
            .unwrap_or("failed".into())
    };
    println!(
        "qemu-img convert of a {size_mib} MiB qcow2 (realistic: 60% random, 30% zero, 10% \
         repeated) over NBD, median of {runs} runs"
    );
    println!("{:<22} {:>24} {:>24}", "server", "→ null-co", "→ file");
    for (label, n, f) in &rows {
        println!("{label:<22} {:>24} {:>24}", rate(*n), rate(*f));
    }
    if let [(_, vn, vf), (_, qn, qf)] = rows.as_slice() {
        let ratio = |a: &Option<f64>, b: &Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}x", b / a),
            _ => "-".into(),
        };
        println!(
            "{:<22} {:>24} {:>24}",
            "ratio (qemu-nbd/vmsnap)",
            ratio(vn, qn),
            ratio(vf, qf)
        );
    }
    true
}

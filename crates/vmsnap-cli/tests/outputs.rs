//! Outputs end to end: `convert` and `meta --extract` never destroy an input, never leave a
//! file that looks finished when it is not, write holes on devices, and stream to pipes.
//! Loop devices and tmpfs need root: those tests print why and skip without it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{s, stderr, vmsnap};
use vmsnap_testkit::{corpus, have_qemu_img, qemu_img_raw, scratch_dir, workspace_root};

fn ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "failed: {}", stderr(o));
}

fn refused(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(2), "not refused: {}", stderr(o));
    assert!(stderr(o).contains(what), "{}", stderr(o));
}

/// A copy of a corpus file in `dir`.
fn copy(rel: &str, dir: &Path) -> PathBuf {
    let to = dir.join(Path::new(rel).file_name().unwrap());
    std::fs::copy(corpus(rel), &to).unwrap();
    to
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn sha256(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn convert_onto_its_input_is_refused_through_links_and_the_input_survives() {
    let dir = scratch_dir("out-self");
    let input = copy("qcow2/v3.qcow2", &dir);
    let before = std::fs::read(&input).unwrap();
    let hard = dir.join("hard.qcow2");
    std::fs::hard_link(&input, &hard).unwrap();
    let soft = dir.join("soft.raw");
    std::os::unix::fs::symlink("v3.qcow2", &soft).unwrap();
    let dotted = format!("{}/./v3.qcow2", dir.display());
    for out in [s(&input), s(&hard), s(&soft), dotted.as_str()] {
        let o = vmsnap(&["convert", "--quiet", s(&input), out]);
        refused(&o, "refusing to write over an input");
        assert!(
            stderr(&o).contains(out),
            "the error names the output: {}",
            stderr(&o)
        );
        assert!(
            std::fs::read(&input).unwrap() == before,
            "{out} damaged the input"
        );
    }
    assert_eq!(names(&dir), ["hard.qcow2", "soft.raw", "v3.qcow2"]);
}

#[test]
fn a_backing_file_of_the_chain_is_refused_as_output() {
    let dir = scratch_dir("out-chain");
    let top = copy("qcow2/chain-top.qcow2", &dir);
    let mid = copy("qcow2/chain-mid.qcow2", &dir);
    let base = copy("qcow2/chain-base.qcow2", &dir);
    for backing in [&mid, &base] {
        let before = std::fs::read(backing).unwrap();
        let o = vmsnap(&["convert", "--quiet", s(&top), s(backing)]);
        refused(&o, "refusing to write over an input");
        assert!(std::fs::read(backing).unwrap() == before);
    }
    // A chain file the stack did not open (--external=none) is not an input.
    let o = vmsnap(&["convert", "--quiet", "--external=none", s(&mid), s(&base)]);
    assert!(
        !stderr(&o).contains("refusing to write over an input"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_existing_output_is_replaced_only_when_the_convert_succeeds() {
    let dir = scratch_dir("out-replace");
    let out = dir.join("out.raw");
    std::fs::write(&out, b"old content").unwrap();
    // An image that fails to open keeps the old file (a failure half-way through the
    // writing is the full-disk test below).
    let bad = dir.join("bad.qcow2");
    let mut img = std::fs::read(corpus("qcow2/v3.qcow2")).unwrap();
    img.truncate(200 * 1024); // its L2 table is gone
    std::fs::write(&bad, &img).unwrap();
    let o = vmsnap(&["convert", "--quiet", s(&bad), s(&out)]);
    refused(&o, "past the end of the file");
    assert_eq!(std::fs::read(&out).unwrap(), b"old content");
    assert_eq!(names(&dir), ["bad.qcow2", "out.raw"]);
    let o = vmsnap(&["convert", "--quiet", s(&corpus("qcow2/v3.qcow2")), s(&out)]);
    ok(&o);
    if have_qemu_img() {
        let want = qemu_img_raw(&corpus("qcow2/v3.qcow2"), &[]);
        assert!(std::fs::read(&out).unwrap() == want);
    }
    assert_eq!(names(&dir), ["bad.qcow2", "out.raw"]);
}

#[test]
fn convert_to_standard_output_streams_the_same_bytes_as_the_file() {
    let dir = scratch_dir("out-stdout");
    let file = dir.join("zlib.raw");
    ok(&vmsnap(&[
        "convert",
        "--quiet",
        "corpus/qcow2/zlib.qcow2",
        s(&file),
    ]));
    let want = std::fs::read(&file).unwrap();
    let want_sum = sha256(&want);

    // `convert IMG -` piped straight into sha256sum.
    let mut conv = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["convert", "--quiet", s(&corpus("qcow2/zlib.qcow2")), "-"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Run from the scratch directory: a file named `-` must not appear there.
    let conv_stdout = conv.stdout.take().unwrap();
    let sum = Command::new("sha256sum")
        .stdin(Stdio::from(conv_stdout))
        .output()
        .unwrap();
    let status = conv.wait().unwrap();
    assert!(status.success());
    assert_eq!(String::from_utf8(sum.stdout).unwrap(), want_sum);
    assert_eq!(names(&dir), ["zlib.raw"]);

    // `/dev/stdout` is the same stream.
    let o = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args([
            "convert",
            "--quiet",
            "corpus/qcow2/zlib.qcow2",
            "/dev/stdout",
        ])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    ok(&o);
    assert!(o.stdout == want);
    if have_qemu_img() {
        assert!(want == qemu_img_raw(&corpus("qcow2/zlib.qcow2"), &[]));
    }
}

#[test]
fn standard_output_appending_to_the_input_is_refused() {
    let dir = scratch_dir("out-append");
    let input = copy("qcow2/v3.qcow2", &dir);
    let before = std::fs::read(&input).unwrap();
    let append = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["convert", "--quiet", s(&input), "-"])
        .stdout(append)
        .output()
        .unwrap();
    refused(&o, "refusing to write over an input");
    assert!(std::fs::read(&input).unwrap() == before);
}

/// `O_NONBLOCK` on Linux (x86, arm, riscv).
const O_NONBLOCK: i32 = 0o4000;

#[test]
fn a_fifo_with_a_reader_gets_the_image_and_one_without_fails_at_once() {
    let dir = scratch_dir("out-fifo");
    let fifo = dir.join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let t = Instant::now();
    let o = vmsnap(&["convert", "--quiet", "corpus/qcow2/v3.qcow2", s(&fifo)]);
    refused(&o, "no reader");
    assert!(t.elapsed() < Duration::from_secs(10));

    // The reader is opened first (without blocking), then the writer starts.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["convert", "--quiet", "corpus/qcow2/v3.qcow2", s(&fifo)])
        .current_dir(workspace_root())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "timed out");
        match reader.read(&mut buf) {
            Ok(0) => {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(child.wait().unwrap().success());
    let mut want = Vec::new();
    let o = vmsnap(&["convert", "--quiet", "corpus/qcow2/v3.qcow2", "-"]);
    ok(&o);
    want.extend_from_slice(&o.stdout);
    assert_eq!(got.len(), 4 << 20);
    assert!(got == want);
}

#[test]
fn dev_null_is_a_sink_and_other_character_devices_are_refused() {
    ok(&vmsnap(&[
        "convert",
        "--quiet",
        "corpus/qcow2/zlib.qcow2",
        "/dev/null",
    ]));
    for dev in ["/dev/zero", "/dev/full"] {
        let o = vmsnap(&["convert", "--quiet", "corpus/qcow2/zlib.qcow2", dev]);
        refused(&o, "character device");
    }
    let o = vmsnap(&["convert", "--quiet", "corpus/qcow2/zlib.qcow2", "/tmp"]);
    refused(&o, "is a directory");
}

#[test]
fn meta_extract_writes_to_standard_output_or_a_file_and_never_over_the_input() {
    let dir = scratch_dir("out-meta");
    let vmss = copy("vmware/plain.vmss", &dir);
    copy("vmware/plain.vmem", &dir);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vmsnap"))
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let o = run(&[
        "meta",
        "plain.vmss",
        "--extract",
        "imageData",
        "--output",
        "-",
    ]);
    ok(&o);
    let png = o.stdout.clone();
    assert!(
        png.starts_with(b"\x89PNG"),
        "{:?}",
        &png[..png.len().min(8)]
    );
    assert!(stderr(&o).contains("to standard output"), "{}", stderr(&o));
    let o = run(&[
        "meta",
        "plain.vmss",
        "--extract",
        "imageData",
        "--output",
        "shot.png",
    ]);
    ok(&o);
    assert!(std::fs::read(dir.join("shot.png")).unwrap() == png);
    // The old spelling still works.
    let o = run(&[
        "meta",
        "plain.vmss",
        "--extract",
        "imageData",
        "--out",
        "again.png",
    ]);
    ok(&o);
    assert!(std::fs::read(dir.join("again.png")).unwrap() == png);

    let before = std::fs::read(&vmss).unwrap();
    for target in ["plain.vmss", "plain.vmem"] {
        let o = run(&[
            "meta",
            "plain.vmss",
            "--extract",
            "imageData",
            "--output",
            target,
        ]);
        refused(&o, "refusing to write over an input");
    }
    assert!(std::fs::read(&vmss).unwrap() == before);
    // `-O` is the output format everywhere; it is not a path for meta.
    let o = run(&[
        "meta",
        "plain.vmss",
        "--extract",
        "imageData",
        "-O",
        "x.png",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        names(&dir),
        ["again.png", "plain.vmem", "plain.vmss", "shot.png"]
    );
}

/// Root-only setup (loop devices, mounts): `None` with a printed reason when unavailable.
fn root_tool(cmd: &mut Command, what: &str) -> Option<String> {
    match cmd.output() {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => {
            eprintln!("SKIP: {what} failed ({}); needs root", stderr(&o).trim());
            None
        }
        Err(e) => {
            eprintln!("SKIP: {what} cannot run ({e})");
            None
        }
    }
}

/// A loop device over a file, detached on drop.
struct Loop(String);

impl Loop {
    fn attach(file: &Path) -> Option<Loop> {
        root_tool(
            Command::new("losetup").args(["--find", "--show"]).arg(file),
            "losetup",
        )
        .map(Loop)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

fn read_device(dev: &str, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(dev).unwrap();
    let mut v = vec![0u8; len];
    f.read_exact(&mut v).unwrap();
    v
}

fn fill(dev: &str, len: usize, byte: u8) {
    let mut f = std::fs::OpenOptions::new().write(true).open(dev).unwrap();
    f.write_all(&vec![byte; len]).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_loop_device_over_the_input_is_refused() {
    let dir = scratch_dir("out-loop-self");
    let input = copy("qcow2/v3.qcow2", &dir);
    let before = std::fs::read(&input).unwrap();
    let Some(dev) = Loop::attach(&input) else {
        return;
    };
    let o = vmsnap(&["convert", "--quiet", s(&input), &dev.0]);
    refused(&o, "loop device backed by");
    drop(dev);
    assert!(std::fs::read(&input).unwrap() == before);
}

#[test]
fn a_device_gets_zeros_in_its_holes_like_qemu_img() {
    if !have_qemu_img() {
        eprintln!("SKIP: qemu-img is not installed");
        return;
    }
    let dir = scratch_dir("out-loop-ff");
    let img = corpus("qcow2/v3.qcow2");
    let len = 4usize << 20;
    // The device is larger than the image: bytes past the image stay as they were.
    let backing = dir.join("disk.img");
    std::fs::write(&backing, vec![0xffu8; len + (1 << 20)]).unwrap();
    let Some(dev) = Loop::attach(&backing) else {
        return;
    };
    let qemu = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&img)
        .arg(&dev.0)
        .output()
        .unwrap();
    assert!(qemu.status.success(), "{}", stderr(&qemu));
    let by_qemu = read_device(&dev.0, len + (1 << 20));

    fill(&dev.0, len + (1 << 20), 0xff);
    ok(&vmsnap(&["convert", "--quiet", s(&img), &dev.0]));
    let ours = read_device(&dev.0, len + (1 << 20));
    assert!(ours == by_qemu, "differs from qemu-img on the same device");
    assert!(ours[..len] == qemu_img_raw(&img, &[])[..]);
    assert!(
        ours[len..].iter().all(|&b| b == 0xff),
        "past the image was touched"
    );

    // --target-is-zero: the holes are not written, so a zeroed device gets the image…
    fill(&dev.0, len, 0);
    ok(&vmsnap(&[
        "convert",
        "--quiet",
        "--target-is-zero",
        s(&img),
        &dev.0,
    ]));
    assert!(read_device(&dev.0, len) == by_qemu[..len]);
    // … and a device that is not zero keeps its old bytes there (the flag is a promise).
    fill(&dev.0, len, 0xff);
    ok(&vmsnap(&[
        "convert",
        "--quiet",
        "--target-is-zero",
        s(&img),
        &dev.0,
    ]));
    let trusted = read_device(&dev.0, len);
    assert!(trusted.contains(&0xff) && trusted != by_qemu[..len]);

    // A device smaller than the image is refused before anything is written.
    let small = dir.join("small.img");
    std::fs::write(&small, vec![0xeeu8; 1 << 20]).unwrap();
    let Some(small_dev) = Loop::attach(&small) else {
        return;
    };
    refused(
        &vmsnap(&["convert", "--quiet", s(&img), &small_dev.0]),
        "the image needs",
    );
    assert!(read_device(&small_dev.0, 1 << 20)
        .iter()
        .all(|&b| b == 0xee));
}

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        root_tool(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir),
            "mount -t tmpfs",
        )
        .map(|_| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_leaves_no_file_and_keeps_an_old_one() {
    let dir = scratch_dir("out-enospc");
    // 4 MiB that do not compress to holes.
    let input = dir.join("random.raw");
    let mut data = vec![0u8; 4 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8 | 1;
    }
    std::fs::write(&input, &data).unwrap();
    let Some(mnt) = Tmpfs::mount(&dir.join("mnt"), "1m") else {
        return;
    };
    let out = mnt.0.join("out.raw");
    let o = vmsnap(&["convert", "--quiet", s(&input), s(&out)]);
    refused(&o, "No space left on device");
    assert!(
        stderr(&o).contains(s(&out)),
        "names the output: {}",
        stderr(&o)
    );
    assert!(names(&mnt.0).is_empty(), "left behind: {:?}", names(&mnt.0));

    std::fs::write(&out, b"the previous image").unwrap();
    let o = vmsnap(&["convert", "--quiet", s(&input), s(&out)]);
    refused(&o, "No space left on device");
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous image");
    assert_eq!(names(&mnt.0), ["out.raw"]);
}

#[test]
fn ctrl_c_during_a_convert_leaves_no_file() {
    let dir = scratch_dir("out-sigint");
    let input = dir.join("random.raw");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let data: Vec<u8> = (0..(192usize << 20) / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(&input, &data).unwrap();
    drop(data);
    let out_dir = dir.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmsnap"))
        .args(["convert", "--quiet", s(&input), s(&out_dir.join("out.raw"))])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the output is open (an unnamed file in `out/` among the child's fds).
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let writing = || {
        std::fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(&out_dir)))
    };
    while !writing() {
        assert!(child.try_wait().unwrap().is_none(), "exited before writing");
        assert!(Instant::now() < deadline, "never started writing");
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        names(&out_dir).is_empty(),
        "left behind: {:?}",
        names(&out_dir)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A mount of `dev` on `dir`, unmounted on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn the_device_holding_the_input_is_refused() {
    let dir = scratch_dir("out-holder");
    let backing = dir.join("fs.img");
    std::fs::File::create(&backing)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let Some(dev) = Loop::attach(&backing) else {
        return;
    };
    if root_tool(Command::new("mkfs.ext4").args(["-q", &dev.0]), "mkfs.ext4").is_none() {
        return;
    }
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_) = root_tool(Command::new("mount").arg(&dev.0).arg(&mnt), "mount") else {
        return;
    };
    let mounted = Mount(mnt.clone());
    let input = copy("qcow2/v3.qcow2", &mnt);
    let o = vmsnap(&["convert", "--quiet", s(&input), &dev.0]);
    refused(&o, "holds the filesystem where");
    // Another image onto the mounted device: the exclusive open refuses it.
    let o = vmsnap(&["convert", "--quiet", "corpus/qcow2/v3.qcow2", &dev.0]);
    refused(&o, "in use");
    drop(mounted);
}

#[test]
fn meta_output_without_extract_is_the_json_switch_or_an_error() {
    let o = vmsnap(&["meta", "corpus/vmware/plain.vmss", "--output=json"]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.is_array() || v.is_object(), "{v}");
    let o = vmsnap(&["meta", "corpus/vmware/plain.vmss", "--output", "x.png"]);
    refused(&o, "--output PATH goes with --extract");
    assert!(!workspace_root().join("x.png").exists());
}

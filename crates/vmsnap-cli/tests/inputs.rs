//! Inputs that are not regular files, read for what they are: a block device is sized from
//! the device and read like the file behind it; a FIFO, pipe or character device is a
//! stream that `check` inspects and every other command refuses at once (exit 2, never a
//! wait for a writer); `-` is standard input, and standard input redirected from a file is
//! that file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vmsnap_testkit::loopdev::LoopDevice;
use vmsnap_testkit::{corpus, scratch_dir, workspace_root};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmsnap"));
    c.current_dir(workspace_root());
    c
}

fn vmsnap(args: &[&str]) -> Output {
    bin().args(args).stdin(Stdio::null()).output().unwrap()
}

/// Runs vmsnap with `data` piped into its standard input.
fn vmsnap_piped(args: &[&str], data: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    // A writer thread: the child may refuse the pipe before reading it all (EPIPE).
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Runs vmsnap with standard input redirected from `file`.
fn vmsnap_redirected(args: &[&str], file: &Path) -> Output {
    bin()
        .args(args)
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn chain_top() -> PathBuf {
    corpus("qcow2/chain-top.qcow2")
}

/// `check --json` without the `file` field, which names the input as given.
fn verdict_of(out: &Output) -> serde_json::Value {
    let mut v = json(out);
    v.as_object_mut().unwrap().remove("file");
    v
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// Every command that reads at random offsets, with the input `input`.
fn random_access_commands(input: &str, out_dir: &Path) -> Vec<Vec<String>> {
    let out = out_dir.join("out.raw").display().to_string();
    [
        vec!["info", input],
        vec!["map", input],
        vec!["cat", input],
        vec!["meta", input],
        vec!["translate", input, "0xffffffff81000000"],
        vec!["convert", input, out.as_str()],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect()
}

#[test]
fn a_loop_device_over_a_qcow2_is_the_qcow2_not_an_empty_raw_file() {
    let Some(dev) = LoopDevice::attach(&chain_top(), true) else {
        return;
    };
    let d = s(dev.path());
    let on_device = vmsnap(&["check", "--json", d]);
    assert_eq!(on_device.status.code(), Some(1), "{}", stderr(&on_device));
    let v = verdict_of(&on_device);
    assert_eq!(v["format"], "qcow2");
    assert_eq!(v["virtual_size"], 4 << 20);
    assert_eq!(v["verdict"], "unsafe");
    assert_eq!(
        v,
        verdict_of(&vmsnap(&["check", "--json", s(&chain_top())]))
    );

    let info = json(&vmsnap(&["info", "--json", d]));
    assert_eq!(info["stack"], serde_json::json!(["file", "qcow2"]));
    let file_len = std::fs::metadata(chain_top()).unwrap().len();
    // losetup rounds nothing here: the image is a multiple of 512 bytes.
    assert_eq!(file_len % 512, 0);
    assert_eq!(info["layers"][0]["size"], file_len);

    let cat = vmsnap(&["cat", "--layer", "0", d]);
    assert_eq!(cat.status.code(), Some(0), "{}", stderr(&cat));
    assert_eq!(cat.stdout, std::fs::read(chain_top()).unwrap());
}

#[test]
fn a_fifo_without_a_writer_is_refused_at_once_by_every_command_but_check() {
    let dir = scratch_dir("inputs-fifo");
    let fifo = dir.join("image.fifo");
    mkfifo(&fifo);
    for args in random_access_commands(s(&fifo), &dir) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let start = Instant::now();
        let out = vmsnap(&args);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{args:?} waited for a writer"
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("image.fifo") && err.contains("FIFO") && err.contains("check"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert!(!dir.join("out.raw").exists(), "convert created its output");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_inspects_a_fifo_as_the_stream_it_is() {
    let dir = scratch_dir("inputs-fifo-check");
    let fifo = dir.join("upload.fifo");
    mkfifo(&fifo);
    let data = std::fs::read(chain_top()).unwrap();
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        // Opening for writing waits for check to open the reading end.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&writer_path)
            .unwrap();
        f.write_all(&data).unwrap();
    });
    let out = vmsnap(&["check", "--json", s(&fifo)]);
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        verdict_of(&out),
        verdict_of(&vmsnap(&["check", "--json", s(&chain_top())]))
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_pipe_on_standard_input_is_a_stream() {
    let data = std::fs::read(chain_top()).unwrap();
    let file_verdict = verdict_of(&vmsnap(&["check", "--json", s(&chain_top())]));
    // `-` and `/dev/stdin` (what `<(cmd)` and `/dev/fd/N` are too) both stream.
    for name in ["-", "/dev/stdin"] {
        let out = vmsnap_piped(&["check", "--json", name], &data);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert_eq!(verdict_of(&out), file_verdict, "{name}");
    }
    let dir = scratch_dir("inputs-pipe");
    for args in random_access_commands("-", &dir) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vmsnap_piped(&args, &data);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("standard input") && err.contains("pipe"),
            "{args:?}: {err}"
        );
    }
    let out = vmsnap_piped(&["info", "/dev/stdin"], &data);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("FIFO or pipe"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn standard_input_redirected_from_a_file_is_that_file() {
    let top = chain_top();
    let info = json(&vmsnap_redirected(&["info", "--json", "-"], &top));
    assert_eq!(info["stack"], serde_json::json!(["file", "qcow2"]));
    // Its references resolve beside the file, as they do when it is named directly.
    let refs = &info["layers"][1]["external_refs"];
    assert_eq!(refs[0]["name"], "chain-mid.qcow2", "{info}");
    assert_eq!(refs[0]["decision"], "opened", "{info}");

    let cat = vmsnap_redirected(&["cat", "-"], &top);
    assert_eq!(cat.status.code(), Some(0), "{}", stderr(&cat));
    let direct = vmsnap(&["cat", s(&top)]);
    assert_eq!(cat.stdout.len(), 4 << 20);
    assert!(cat.stdout == direct.stdout, "cat - differs from cat FILE");

    let check = vmsnap_redirected(&["check", "--json", "-"], &top);
    assert_eq!(
        verdict_of(&check),
        verdict_of(&vmsnap(&["check", "--json", s(&top)]))
    );
}

#[test]
fn character_devices_are_streams_and_an_endless_one_ends_at_the_limit() {
    let out = vmsnap(&["info", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("character device"),
        "{}",
        stderr(&out)
    );

    let start = Instant::now();
    let out = vmsnap(&["check", "--json", "--max-stream", "8M", "/dev/zero"]);
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["verdict"], "error");
    let err = v["error"]["message"].as_str().unwrap();
    assert!(err.contains("stream longer than 8388608"), "{err}");
    assert_eq!(v["error"]["kind"], "limit_exceeded");
}

#[test]
fn the_library_sizes_and_maps_a_block_device_from_the_device() {
    use vmsnap::core::{FileLayer, FileSource, InputKind, Layer, Source};
    let Some(dev) = LoopDevice::attach(&chain_top(), true) else {
        return;
    };
    let want = std::fs::read(chain_top()).unwrap();
    let source = FileSource::open(dev.path()).unwrap();
    assert_eq!(source.kind(), InputKind::BlockDevice);
    assert_eq!(source.size(), want.len() as u64);
    // A device has no holes to report: all of it is data.
    assert_eq!(source.data_ranges(0..source.size()), None);
    for layer in [
        FileLayer::open(dev.path()).unwrap(),
        FileLayer::open_mapped(dev.path()).unwrap(),
    ] {
        let mut got = vec![0u8; want.len()];
        layer.read_at(0, &mut got).unwrap();
        assert!(got == want, "device bytes differ from the file");
        assert!(layer.read_at(want.len() as u64, &mut [0u8; 1]).is_err());
    }
}

#[test]
fn a_directory_is_a_vm_folder_opened_by_its_configuration_or_refused() {
    let dir = scratch_dir("inputs-vm-dir");
    let vm = dir.join("not-a-vm");
    std::fs::create_dir_all(&vm).unwrap();
    for cmd in ["info", "check", "map"] {
        let o = vmsnap(&[cmd, s(&vm)]);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("not a VM bundle: it holds no DiskDescriptor.xml, config.pvs"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    // `--external vm-dir` is a policy every opening command takes.
    let o = vmsnap(&["info", "--json", "--external", "vm-dir", s(&chain_top())]);
    assert_eq!(json(&o)["external_policy"], "vm_dir", "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

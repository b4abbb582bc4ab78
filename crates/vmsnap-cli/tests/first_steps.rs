//! First steps and everyday output: install instructions, the architecture document, shell
//! completions, errors printed once naming file, layer and offset, `info` read like
//! `qemu-img info` (checked against qemu-img itself).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::vmsnap;
use serde_json::Value;
use vmsnap_testkit::{corpus_dir, workspace_root};

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn qemu_img_info(path: &str) -> Option<Value> {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", path])
        .current_dir(workspace_root())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

#[test]
fn readme_says_how_to_install_and_links_the_architecture_in_the_repository() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    assert!(readme.contains("cargo install --path crates/vmsnap-cli"));
    assert!(!readme.contains("shared/design.md"));
    assert!(readme.contains("docs/architecture.md"));
    let arch = std::fs::read_to_string(workspace_root().join("docs/architecture.md")).unwrap();
    // It describes the code as it is: the run walker, the declared options, the inspector.
    for word in ["RunMap", "vmsnap-inspect", "options", "translate"] {
        assert!(
            arch.contains(word),
            "docs/architecture.md does not mention {word}"
        );
    }
}

#[test]
fn completions_for_every_shell_name_every_command() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = vmsnap(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        for cmd in ["info", "check", "convert", "translate", "formats"] {
            assert!(script.contains(cmd), "{shell}: {cmd} missing");
        }
    }
    if Command::new("bash").arg("--version").output().is_ok() {
        // The bash script parses.
        let dir = std::env::temp_dir().join(format!("vmsnap-compl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("vmsnap.bash");
        std::fs::write(&f, vmsnap(&["completions", "bash"]).stdout).unwrap();
        let ok = Command::new("bash").arg("-n").arg(&f).status().unwrap();
        assert!(ok.success());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let out = vmsnap(&["completions", "nosuchshell"]);
    assert_eq!(out.status.code(), Some(2));
}

fn truncated_parallels() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "vmsnap-first-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = std::fs::read(corpus_dir().join("parallels/plain.hds")).unwrap();
    let f = dir.join("trunc.hds");
    std::fs::write(&f, &plain[..1024]).unwrap();
    (dir, f)
}

#[test]
fn an_error_is_printed_once_naming_file_layer_and_offset() {
    let (dir, f) = truncated_parallels();
    let f = f.to_str().unwrap();
    for cmd in ["info", "map", "meta", "cat", "convert"] {
        let mut args = vec![cmd, f];
        if cmd == "convert" {
            args.push("/dev/null");
        }
        let out = vmsnap(&args);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
        assert!(
            err.contains(f) && err.contains("parallels") && err.contains("0x40"),
            "{cmd}: {err}"
        );
    }
    // For `check` a header that breaks the format's rules is a verdict, not an error: the
    // rule names the file, layer, offset and cause, once.
    let out = vmsnap(&["check", f]);
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert!(
        report.starts_with(&format!("{f}: UNSAFE (parallels")),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "FAIL  malformed: {f}: parallels: at offset 0x40: "
        )),
        "{report}"
    );
    assert!(report.contains("past the end of the file"), "{report}");
    assert_eq!(report.matches("past the end").count(), 1, "{report}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verbose_shows_the_chain_of_causes() {
    let out = vmsnap(&["-v", "info", "/nonexistent/disk.qcow2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .next()
            .unwrap()
            .contains("/nonexistent/disk.qcow2"),
        "{err}"
    );
    assert!(
        err.contains("caused by: No such file or directory"),
        "{err}"
    );
    assert!(err.contains("kind: io"), "{err}");
    // Without -v: one line.
    let out = vmsnap(&["info", "/nonexistent/disk.qcow2"]);
    assert_eq!(text(&out.stderr).lines().count(), 1);
}

/// The value after `label: ` in `info`'s text.
fn field<'a>(info: &'a str, label: &str) -> &'a str {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no {label:?} in {info}"))
}

#[test]
fn info_starts_with_what_qemu_img_info_shows() {
    let Some(q) = qemu_img_info("corpus/qcow2/chain-top.qcow2") else {
        eprintln!("skipped: qemu-img is not installed");
        return;
    };
    let info = text(&vmsnap(&["info", "corpus/qcow2/chain-top.qcow2"]).stdout);
    assert!(
        info.starts_with("image: corpus/qcow2/chain-top.qcow2\nfile format: qcow2\n"),
        "{info}"
    );
    let vsize = q["virtual-size"].as_u64().unwrap();
    assert!(
        field(&info, "virtual size").ends_with(&format!("({vsize} bytes)")),
        "{info}"
    );
    assert_eq!(field(&info, "cluster_size"), q["cluster-size"].to_string());
    // Disk size: what the file occupies, as qemu-img counts it.
    let actual = q["actual-size"].as_u64().unwrap();
    let shown = field(&info, "disk size");
    assert_eq!(shown, format!("{} KiB", actual / 1024), "{info}");
    // The chain, with formats, depth by depth as qemu-img's backing-filename fields say.
    assert!(
        info.contains("  [0] corpus/qcow2/chain-top.qcow2\n"),
        "{info}"
    );
    assert!(
        info.contains(&format!(
            "  [1] {} (qcow2, ",
            q["backing-filename"].as_str().unwrap()
        )),
        "{info}"
    );
    assert!(info.contains("  [2] chain-base.qcow2 (qcow2, "), "{info}");
    assert!(info.contains("dirty: no    corrupt: no"), "{info}");
    // The per-layer details follow.
    assert!(info.contains("\nstack: file -> qcow2"), "{info}");
}

#[test]
fn info_shows_the_snapshot_table_with_utc_dates() {
    let Some(q) = qemu_img_info("corpus/qcow2/snapshots.qcow2") else {
        eprintln!("skipped: qemu-img is not installed");
        return;
    };
    let info = text(&vmsnap(&["info", "corpus/qcow2/snapshots.qcow2"]).stdout);
    assert!(info.contains("Snapshot list:\nID        TAG"), "{info}");
    for s in q["snapshots"].as_array().unwrap() {
        let secs = s["date-sec"].as_u64().unwrap();
        let date = vmsnap_date(secs);
        let name = s["name"].as_str().unwrap();
        let row = info
            .lines()
            .find(|l| l.starts_with(s["id"].as_str().unwrap()) && l.contains(name))
            .unwrap_or_else(|| panic!("no row for {name} in {info}"));
        assert!(row.contains(&date), "{row} lacks {date}");
    }
    // JSON gives the same date in ISO-8601 beside the raw field.
    let v: Value =
        serde_json::from_slice(&vmsnap(&["info", "--json", "corpus/qcow2/snapshots.qcow2"]).stdout)
            .unwrap();
    let snap = &v["layers"][1]["describe"]["snapshots"][0];
    assert_eq!(
        snap["date"].as_str().unwrap(),
        format!(
            "{}Z",
            vmsnap_date(snap["date_sec"].as_u64().unwrap()).replace(' ', "T")
        )
    );
}

/// `date -u` as the oracle for the UTC date of `secs`.
fn vmsnap_date(secs: u64) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d %H:%M:%S"])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

/// Runs qemu-img; false when it is absent or fails.
fn qemu_img(args: &[&str]) -> bool {
    Command::new("qemu-img")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn be64(d: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(d[at..at + 8].try_into().unwrap())
}

#[test]
fn lazy_read_errors_name_the_file_that_failed_even_down_a_backing_chain() {
    let dir = std::env::temp_dir().join(format!("vmsnap-lazy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("text.raw");
    let words: Vec<u8> = b"alpha beta gamma delta qcow2 cluster "
        .iter()
        .copied()
        .cycle()
        .take(1 << 20)
        .collect();
    std::fs::write(&raw, words).unwrap();
    let base = dir.join("base.qcow2");
    let (r, b) = (raw.to_str().unwrap(), base.to_str().unwrap());
    if !qemu_img(&[
        "convert",
        "-c",
        "-O",
        "qcow2",
        "-o",
        "cluster_size=65536",
        r,
        b,
    ]) {
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    // Spoil the deflate stream of the first compressed cluster: found through L1 and L2.
    let mut d = std::fs::read(&base).unwrap();
    let l1 = be64(&d, 40) as usize;
    let l2 = (be64(&d, l1) & 0x00ff_ffff_ffff_fe00) as usize;
    let entry = be64(&d, l2);
    assert_eq!(entry >> 62 & 1, 1, "the first cluster is compressed");
    let data = (entry & ((1 << 54) - 1)) as usize;
    for b in &mut d[data..data + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&base, d).unwrap();
    let top = dir.join("top.qcow2");
    assert!(qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.qcow2",
        "-F",
        "qcow2",
        top.to_str().unwrap()
    ]));
    for input in [&base, &top] {
        let out = vmsnap(&["cat", input.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        // The file named is the base, whichever was opened; its layer and offset too.
        assert!(
            err.contains(&format!("base.qcow2: qcow2: at offset {data:#x}: ")),
            "{err}"
        );
        assert!(!err.contains("top.qcow2"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

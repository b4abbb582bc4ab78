//! The output writer on real files, FIFOs and `/dev/null`.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use super::*;

/// Held by tests that create named temporary files: `remove_unfinished_outputs` removes
/// every one of the process, also those of tests running beside it.
static NAMED_TEMPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn named_temps() -> std::sync::MutexGuard<'static, ()> {
    NAMED_TEMPS.lock().unwrap_or_else(|p| p.into_inner())
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmsnap-sink-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn positional(out: Output) -> PositionalOutput {
    match out {
        Output::Positional(p) => p,
        Output::Stream(_) => panic!("expected a positional output"),
    }
}

#[test]
fn a_new_file_appears_only_on_commit_with_both_temp_kinds() {
    let _named = named_temps();
    for named in [false, true] {
        let dir = scratch(&format!("new-{named}"));
        let target = dir.join("out.raw");
        let opts = OutputOptions::new().named_temp(named);
        let out = positional(Output::create(&target, 3 << 20, &opts).unwrap());
        assert_eq!(out.kind(), OutputKind::File);
        assert!(!out.holes_need_writing());
        out.write_at(1 << 20, &[0xab; 4096]).unwrap();
        assert!(!target.exists(), "named={named}: visible before commit");
        assert_eq!(names(&dir).len(), usize::from(named));
        out.commit().unwrap();
        let data = std::fs::read(&target).unwrap();
        assert_eq!(data.len(), 3 << 20);
        assert!(data[..1 << 20].iter().all(|&b| b == 0));
        assert!(data[1 << 20..(1 << 20) + 4096].iter().all(|&b| b == 0xab));
        assert_eq!(names(&dir), vec!["out.raw".to_string()], "named={named}");
        // Sparse: far fewer blocks than the apparent size.
        assert!(std::fs::metadata(&target).unwrap().blocks() * 512 < 1 << 20);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn an_unfinished_output_leaves_nothing_and_the_old_file_intact() {
    let _named = named_temps();
    for named in [false, true] {
        let dir = scratch(&format!("drop-{named}"));
        let target = dir.join("out.raw");
        std::fs::write(&target, b"old content").unwrap();
        let opts = OutputOptions::new().named_temp(named);
        let out = Output::create(&target, 1 << 20, &opts).unwrap();
        if let Output::Positional(p) = &out {
            p.write_at(0, b"new").unwrap();
        }
        drop(out);
        assert_eq!(std::fs::read(&target).unwrap(), b"old content");
        assert_eq!(names(&dir), vec!["out.raw".to_string()], "named={named}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn replacing_keeps_the_permissions_and_a_symlink_stays_a_symlink() {
    let dir = scratch("replace");
    let real = dir.join("real.raw");
    std::fs::write(&real, b"old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.join("link.raw");
    std::os::unix::fs::symlink("real.raw", &link).unwrap();
    let out = positional(Output::create(&link, 5, &OutputOptions::new()).unwrap());
    out.write_at(0, b"fresh").unwrap();
    out.commit().unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&real).unwrap(), b"fresh");
    assert_eq!(std::fs::metadata(&real).unwrap().mode() & 0o777, 0o640);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writes_past_the_announced_length_fail() {
    let dir = scratch("bounds");
    let out = positional(Output::create(dir.join("o"), 10, &OutputOptions::new()).unwrap());
    assert!(out.write_at(8, b"abc").is_err());
    assert!(out.write_at(u64::MAX, b"a").is_err());
    out.write_at(7, b"abc").unwrap();
    drop(out);
    assert!(names(&dir).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_protected_file_is_refused_before_anything_is_written() {
    let dir = scratch("protect");
    let input = dir.join("in.img");
    std::fs::write(&input, b"precious").unwrap();
    let hard = dir.join("hard.img");
    std::fs::hard_link(&input, &hard).unwrap();
    let opts = OutputOptions::new().protect([&input]);
    for out in [&input, &hard] {
        let e = Output::create(out, 4, &opts).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().starts_with(&out.display().to_string()), "{e}");
    }
    assert_eq!(std::fs::read(&input).unwrap(), b"precious");
    assert_eq!(
        names(&dir),
        vec!["hard.img".to_string(), "in.img".to_string()]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dev_null_discards_and_needs_no_hole_writing() {
    let out = positional(Output::create("/dev/null", 1 << 40, &OutputOptions::new()).unwrap());
    assert_eq!(out.kind(), OutputKind::Discard);
    assert!(!out.holes_need_writing());
    out.write_at(1 << 39, &[1; 512]).unwrap();
    out.zero_range(0, 1 << 40).unwrap();
    out.commit().unwrap();
}

#[test]
fn remove_unfinished_outputs_deletes_named_temporaries() {
    let _named = named_temps();
    let dir = scratch("signal");
    let opts = OutputOptions::new().named_temp(true);
    let out = Output::create(dir.join("o.raw"), 100, &opts).unwrap();
    assert_eq!(names(&dir).len(), 1);
    assert!(remove_unfinished_outputs() >= 1);
    assert!(names(&dir).is_empty());
    drop(out);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

#[test]
fn a_fifo_without_a_reader_fails_at_once_and_with_one_streams_in_order() {
    let dir = scratch("fifo");
    let fifo = dir.join("f");
    mkfifo(&fifo);
    let e = Output::create(&fifo, 8, &OutputOptions::new()).unwrap_err();
    assert!(e.to_string().contains("no reader"), "{e}");

    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo)
        .unwrap();
    let Output::Stream(mut out) = Output::create(&fifo, 8, &OutputOptions::new()).unwrap() else {
        panic!("a FIFO is a stream");
    };
    out.write_all(b"ab").unwrap();
    out.write_zeros(4).unwrap();
    assert!(out.write_all(b"xyz").is_err(), "past the length");
    out.write_all(b"cd").unwrap();
    out.commit().unwrap();
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"ab\0\0\0\0cd");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stream_cut_short_does_not_commit() {
    let dir = scratch("short");
    let fifo = dir.join("f");
    mkfifo(&fifo);
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo)
        .unwrap();
    let Output::Stream(mut out) = Output::create(&fifo, 8, &OutputOptions::new()).unwrap() else {
        panic!("a FIFO is a stream");
    };
    out.write_all(b"abc").unwrap();
    let e = out.commit().unwrap_err();
    assert!(e.to_string().contains("only 3 of 8 bytes"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

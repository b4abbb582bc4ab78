//! `cargo xtask man`: man pages for `vmsnap` and each of its commands, generated with
//! clap_mangen from the CLI's own argument definitions (the same file the binary compiles),
//! into `target/man/` (or the directory given).

use std::path::{Path, PathBuf};

use clap::CommandFactory;

#[allow(dead_code, missing_docs)]
#[path = "../../crates/vmsnap-cli/src/cli.rs"]
mod cli;

/// Writes `vmsnap.1` and `vmsnap-<command>.1` into `dir`; returns the files written.
pub fn write_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cmd = cli::Cli::command();
    let mut written = Vec::new();
    let mut page = |cmd: clap::Command, name: String| -> std::io::Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, buf)?;
        written.push(path);
        Ok(())
    };
    for sub in cmd.get_subcommands() {
        let name = format!("vmsnap-{}", sub.get_name());
        page(sub.clone().name(name.clone()), name)?;
    }
    page(cmd, "vmsnap".into())?;
    Ok(written)
}

/// Runs the task; `args` may name the output directory.
pub fn run(args: &[String]) -> bool {
    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target/man"));
    match write_pages(&dir) {
        Ok(files) => {
            for f in files {
                eprintln!("xtask: wrote {}", f.display());
            }
            eprintln!("xtask: read with `man -l {}/vmsnap.1`", dir.display());
            true
        }
        Err(e) => {
            eprintln!("xtask: cannot write man pages to {}: {e}", dir.display());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_page_per_command_with_its_options() {
        let dir = std::env::temp_dir().join(format!("vmsnap-man-{}", std::process::id()));
        let files = super::write_pages(&dir).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for n in [
            "vmsnap.1",
            "vmsnap-info.1",
            "vmsnap-check.1",
            "vmsnap-translate.1",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        let info = std::fs::read_to_string(dir.join("vmsnap-info.1")).unwrap();
        assert!(info.contains("\\-\\-json"), "{info}");
        assert!(info.contains("\\-\\-external"), "{info}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

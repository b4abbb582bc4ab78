//! Runs a command and measures what it cost: wall time and the command's own peak resident
//! set (`ru_maxrss`), the figures memory-cap tests assert and `bench-scale` reports.
//!
//! The command runs under `/usr/bin/time`: Linux carries a process's peak RSS across
//! `exec`, so a command spawned straight from a large test process would report the test
//! process's size; one forked by the small `time` process reports its own. (`ulimit -v`
//! would count mappings, not memory used.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The GNU time binary that reports a child's `ru_maxrss`.
pub const TIME: &str = "/usr/bin/time";

/// What one run of a command cost, and what it printed.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Wall time from spawn to exit (of `time` and the command: a millisecond more).
    pub wall: Duration,
    /// The command's peak resident set, in KiB.
    pub max_rss_kib: u64,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error (without `time`'s report).
    pub stderr: Vec<u8>,
}

/// Whether [`TIME`] is there to measure with.
pub fn can_measure() -> bool {
    Command::new(TIME)
        .args(["-f", "%M", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `cmd` (its program, arguments, directory and environment; standard input closed,
/// output captured) to its end under [`TIME`] and measures it.
pub fn measure(cmd: &Command) -> Measured {
    let report = std::env::temp_dir().join(format!(
        "vmsnap-rusage-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut t = Command::new(TIME);
    t.args(["-q", "-f", "%M %x", "-o"])
        .arg(&report)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    if let Some(d) = cmd.get_current_dir() {
        t.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    let start = Instant::now();
    let out = t
        .output()
        .unwrap_or_else(|e| panic!("cannot run {TIME} {cmd:?}: {e}"));
    let wall = start.elapsed();
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    std::fs::remove_file(&report).ok();
    // The last line is "%M %x"; a command killed by a signal adds a line before it.
    let last = text.lines().last().unwrap_or("");
    let mut f = last.split_whitespace();
    let max_rss_kib = f.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        panic!("no peak RSS from {TIME} for {cmd:?}: {text:?}");
    });
    let code = out.status.code().filter(|_| !text.contains("signal"));
    Measured {
        code,
        wall,
        max_rss_kib,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_command_not_the_caller() {
        if !can_measure() || Command::new("python3").arg("-V").output().is_err() {
            eprintln!("skipped: {TIME} or python3 is not installed");
            return;
        }
        // This process holds 256 MiB; a child that touches 64 MiB reports about that, and
        // `true` far less.
        let hold = vec![1u8; 256 << 20];
        let big = measure(Command::new("python3").args([
            "-c",
            "b = bytearray(64 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1",
        ]));
        let small = measure(&Command::new("true"));
        assert_eq!((big.code, small.code), (Some(0), Some(0)));
        assert!(
            (64 * 1024..200 * 1024).contains(&big.max_rss_kib),
            "{big:?}"
        );
        assert!(small.max_rss_kib < 16 * 1024, "{small:?}");
        let failing = measure(Command::new("sh").args(["-c", "exit 3"]));
        assert_eq!(failing.code, Some(3));
        assert!(hold.iter().step_by(4096).all(|&b| b == 1));
    }
}

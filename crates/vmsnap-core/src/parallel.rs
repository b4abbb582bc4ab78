//! How many threads parallel work may use, asked of the OS once per process.
//!
//! `std::thread::available_parallelism` reads cgroup files on every call (an `open` and a
//! `read` or more); opening a small image called it once and it was a tenth of the time.

use std::sync::OnceLock;

/// The number of CPUs this process may run on (at least 1), cached after the first call.
pub fn parallelism() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parallelism_is_positive_and_stable() {
        let n = super::parallelism();
        assert!(n >= 1);
        assert_eq!(n, super::parallelism());
    }
}

//! The JSON contract every `--json` output keeps: shared with the Python package, so it
//! lives in `vmsnap-report`.

pub use vmsnap_report::json::*;

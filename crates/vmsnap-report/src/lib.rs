//! vmsnap-report: opening and choosing a layer with one policy (`open`), the JSON documents
//! vmsnap prints (`info --json`, `map --json`, `check --json`, the error object) and
//! streaming `check` with its length limit, in one place so that the CLI, the Python
//! package and the nbdkit plugin give the same answers with the same names.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod chain;
pub mod check;
pub mod info;
pub mod json;
pub mod map;
pub mod open;
pub mod translate;

//! The vmsnap stacker, after Volatility 3's automagic: starting from a file, try every
//! plugin in (priority, name) order on the top layer; the first that accepts is opened and
//! becomes the new top; repeat until none accepts. A plugin is stacked at most once per
//! chain, the depth is capped, two equal-priority plugins that both accept is an
//! ambiguity finding, and every refusal can be recorded with its reason (`explain`).
//! Named children a layer marks stackable (a qcow2 snapshot's VM state) are stacked on as
//! branches, so `savevm.qcow2` becomes qcow2 → VM state → QEMU stream → guest memory.

mod select;
mod stacker;

pub use select::Selection;
pub use stacker::{Attempt, Outcome, Stack, StackEntry, Stacker};

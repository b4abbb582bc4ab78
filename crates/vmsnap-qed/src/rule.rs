//! The rule ids of the findings only QED images report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// The format itself: QED is deprecated and banned by OpenStack's format inspector.
pub const QED: &str = "qed";
/// The need-check flag is set: the image was not closed cleanly.
pub const NEED_CHECK: &str = "need_check";

//! The rule ids of the findings only LiME memory dumps report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// A range that starts below the end of the previous one.
pub const RANGE_ORDER: &str = "range_order";

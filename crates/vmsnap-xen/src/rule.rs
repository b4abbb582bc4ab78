//! The rule ids of the findings only Xen dump-cores report (`check` lists findings by rule).
//! Rules more than one format reports are in [`vmsnap_core::rule`].

/// `xch_nr_pages` of the header note differs from the pages the sections hold, or pages
/// of `.xen_pages` have no table entry.
pub const PAGE_COUNT: &str = "page_count";

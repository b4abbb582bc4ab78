//! The rule ids of the findings only Windows crash dumps report (`check` lists findings by
//! rule). Rules more than one format reports are in [`vmsnap_core::rule`].

/// A page count in a header (`NumberOfPages`, the summary's `Pages`) differs from the pages
/// the runs or the bitmap describe.
pub const PAGE_COUNT: &str = "page_count";
/// `RequiredDumpSpace` differs from the file's size (a dump cut short, or data after it).
pub const DUMP_SIZE: &str = "dump_size";

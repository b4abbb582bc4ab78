//! GUIDs as the descriptor writes them (`{5fbaabe3-6958-40ff-92a7-860e329aab41}`).

use std::fmt;

use vmsnap_core::{Error, Result};

/// A GUID, kept as its 36-character lowercase form without braces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(String);

impl Guid {
    /// Parses `s`, with or without braces, in either case; `at` is where it is, for the
    /// error.
    pub fn parse(s: &str, at: u64) -> Result<Guid> {
        let t = s.trim();
        let t = t
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(t);
        let ok = t.len() == 36
            && t.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        if !ok {
            return Err(Error::malformed(at, format!("not a GUID: {s:?}")));
        }
        Ok(Guid(t.to_ascii_lowercase()))
    }

    /// The form without braces.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is the null GUID (no parent, no encryption engine).
    pub fn is_null(&self) -> bool {
        self.0 == crate::raw::NULL_GUID
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_and_case_do_not_matter() {
        let a = Guid::parse("{5FBAABE3-6958-40ff-92a7-860e329aab41}", 0).unwrap();
        let b = Guid::parse(" 5fbaabe3-6958-40ff-92a7-860e329aab41 ", 0).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "{5fbaabe3-6958-40ff-92a7-860e329aab41}");
        assert!(Guid::parse("{5fbaabe3-6958-40ff-92a7-860e329aab4}", 0).is_err());
        assert!(Guid::parse("5fbaabe3x6958-40ff-92a7-860e329aab41", 0).is_err());
    }
}

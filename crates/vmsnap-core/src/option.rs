//! The `-o key=value` options a plugin declares: name, type and help, so a front end can
//! list them (`vmsnap formats`) and refuse an unknown key or a bad value before opening
//! anything, naming the valid ones.

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::plugin::{Options, Plugin};

/// What values an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionType {
    /// A byte count: `4096`, `0x1000`, or with a binary suffix `4K`, `1M`, `2G`, `1T`.
    Size,
    /// An address or other 64-bit number: decimal or `0x` hex.
    Address,
    /// One of these words.
    Choice(&'static [&'static str]),
}

impl OptionType {
    /// The type as `vmsnap formats` names it.
    pub fn name(self) -> &'static str {
        match self {
            OptionType::Size => "size",
            OptionType::Address => "address",
            OptionType::Choice(_) => "choice",
        }
    }

    /// What a valid value looks like, for help and errors.
    pub fn syntax(self) -> String {
        match self {
            OptionType::Size => "a size (4096, 0x1000, 4K, 1M, 2G)".into(),
            OptionType::Address => "an address (0x1ab000 or decimal)".into(),
            OptionType::Choice(words) => format!("one of {}", words.join(", ")),
        }
    }

    /// Whether `value` is valid.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            OptionType::Size => parse_size(value).is_some(),
            OptionType::Address => parse_address(value).is_some(),
            OptionType::Choice(words) => words.contains(&value),
        }
    }
}

/// One option a plugin reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginOption {
    /// The full key, prefixed by the plugin's name: `qemu.ram-below-4g`.
    pub name: &'static str,
    /// Its values.
    pub ty: OptionType,
    /// One line of help.
    pub help: &'static str,
}

impl PluginOption {
    /// Its value in `options`, checked against its type: `None` when unset, an
    /// [`ErrorKind::InvalidArgument`] error naming what is valid when malformed.
    pub fn value<'o>(&self, options: &'o Options) -> Result<Option<&'o str>> {
        match options.get(self.name) {
            Some(v) if !self.ty.accepts(v) => Err(self.invalid(v)),
            v => Ok(v),
        }
    }

    /// Its value as a number: a [`OptionType::Size`] or an [`OptionType::Address`].
    pub fn number(&self, options: &Options) -> Result<Option<u64>> {
        let Some(v) = self.value(options)? else {
            return Ok(None);
        };
        let n = match self.ty {
            OptionType::Size => parse_size(v),
            OptionType::Address => parse_address(v),
            OptionType::Choice(_) => None,
        };
        n.map(Some).ok_or_else(|| self.invalid(v))
    }

    /// Its value as one of the words of an [`OptionType::Choice`].
    pub fn choice(&self, options: &Options) -> Result<Option<&'static str>> {
        let Some(v) = self.value(options)? else {
            return Ok(None);
        };
        match self.ty {
            OptionType::Choice(words) => words
                .iter()
                .copied()
                .find(|w| *w == v)
                .map(Some)
                .ok_or_else(|| self.invalid(v)),
            _ => Err(self.invalid(v)),
        }
    }

    fn invalid(&self, value: &str) -> Error {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "option {}={value:?}: expected {}",
                self.name,
                self.ty.syntax()
            ),
        )
    }
}

impl Serialize for PluginOption {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PluginOption", 4)?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("type", self.ty.name())?;
        let choices: &[&str] = match self.ty {
            OptionType::Choice(w) => w,
            _ => &[],
        };
        st.serialize_field("choices", choices)?;
        st.serialize_field("help", self.help)?;
        st.end()
    }
}

/// Parses a size: decimal, `0x` hex, or decimal with a `K`/`M`/`G`/`T` suffix (binary).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return None,
            };
            (t.get(..i)?, shift)
        }
        _ => (t, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// Parses an address: decimal or `0x` hex.
pub fn parse_address(s: &str) -> Option<u64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Checks every option against what `plugins` declare: an unknown key or a bad value is
/// an [`ErrorKind::InvalidArgument`] error naming the valid keys or values.
pub fn check_options<'a>(
    plugins: impl IntoIterator<Item = &'a Plugin> + Clone,
    options: &Options,
) -> Result<()> {
    for (key, _) in options.iter() {
        let found = plugins
            .clone()
            .into_iter()
            .flat_map(|p| p.options.iter())
            .find(|o| o.name == key);
        let Some(opt) = found else {
            let mut valid: Vec<&str> = plugins
                .clone()
                .into_iter()
                .flat_map(|p| p.options.iter().map(|o| o.name))
                .collect();
            valid.sort_unstable();
            valid.dedup();
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "unknown option {key:?}; valid options: {} (see `vmsnap formats`)",
                    valid.join(", ")
                ),
            ));
        };
        opt.value(options)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_addresses_parse() {
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("0x1000"), Some(4096));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1Q"), None);
        assert_eq!(parse_size("99999999999T"), None);
        assert_eq!(parse_address("0x1ab000"), Some(0x1ab000));
        assert_eq!(parse_address("4K"), None);
        assert!(OptionType::Choice(&["chs", "current_size"]).accepts("chs"));
        assert!(!OptionType::Choice(&["chs", "current_size"]).accepts("CHS"));
    }

    #[test]
    fn typed_values_of_declared_options() {
        const SIZE: PluginOption = PluginOption {
            name: "t.size",
            ty: OptionType::Size,
            help: "",
        };
        const ADDR: PluginOption = PluginOption {
            name: "t.addr",
            ty: OptionType::Address,
            help: "",
        };
        const PICK: PluginOption = PluginOption {
            name: "t.pick",
            ty: OptionType::Choice(&["chs", "current_size"]),
            help: "",
        };
        let mut o = Options::new();
        assert_eq!(SIZE.number(&o).unwrap(), None);
        assert_eq!(PICK.choice(&o).unwrap(), None);
        o.set("t.size", "2M");
        o.set("t.addr", "0x7000");
        o.set("t.pick", "chs");
        assert_eq!(SIZE.number(&o).unwrap(), Some(2 << 20));
        assert_eq!(ADDR.number(&o).unwrap(), Some(0x7000));
        assert_eq!(PICK.choice(&o).unwrap(), Some("chs"));
        o.set("t.addr", "4K");
        o.set("t.pick", "CHS");
        let e = ADDR.number(&o).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            e.to_string(),
            "option t.addr=\"4K\": expected an address (0x1ab000 or decimal)"
        );
        assert!(PICK
            .choice(&o)
            .unwrap_err()
            .to_string()
            .contains("one of chs, current_size"));
    }
}

//! The real booted guests of `cargo xtask paging-guests` (`target/paging/<name>/`): what
//! QEMU's monitor said of their CPU (`info-registers.txt`), the oracle of every real-guest
//! test that needs a register.

use std::path::Path;

/// QEMU's `info registers` text of one guest.
#[derive(Debug, Clone)]
pub struct Registers(String);

/// Reads a guest's `dir/info-registers.txt`.
pub fn registers(dir: &Path) -> Registers {
    Registers::read(&dir.join("info-registers.txt"))
}

impl Registers {
    /// Reads `info registers` text saved at `path`.
    pub fn read(path: &Path) -> Registers {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Registers(text)
    }

    /// The value QEMU printed as `NAME=<hex>` (`CR3`, `EFER`, `CR0`…): the first match,
    /// CPU 0's.
    pub fn get(&self, name: &str) -> u64 {
        let key = format!("{name}=");
        let at = self
            .0
            .match_indices(&key)
            // A whole name: `CR3=` must not match inside another register's name.
            .find(|(i, _)| {
                *i == 0
                    || !self.0[..*i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_ascii_alphanumeric())
            })
            .map(|(i, _)| i + key.len())
            .unwrap_or_else(|| panic!("no {name} in info registers"));
        let hex: String = self.0[at..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        u64::from_str_radix(&hex, 16).unwrap_or_else(|e| panic!("{name}={hex}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_names_only() {
        let r = Registers(
            "RAX=0000000000000001 XCR3=5\nCR0=80050033 CR3=000000000a2b4000\nEFER=0000000000000d01"
                .into(),
        );
        assert_eq!(r.get("CR3"), 0xa2b4000);
        assert_eq!(r.get("CR0"), 0x8005_0033);
        assert_eq!(r.get("EFER"), 0xd01);
        assert_eq!(r.get("RAX"), 1);
    }
}

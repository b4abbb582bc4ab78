//! Findings: safety and consistency observations made while opening, each with a stable
//! rule id.

use serde::Serialize;

/// How much a finding matters to someone deciding whether to trust an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Severity {
    /// Worth knowing (e.g. an internal snapshot exists).
    Info,
    /// Inconsistent or unusual, but not dangerous to read.
    Warning,
    /// Makes the image unsafe to hand to a hypervisor (external reference, unknown feature).
    Unsafe,
}

impl Severity {
    /// The name, as JSON spells it (`info`, `warning`, `unsafe`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Unsafe => "unsafe",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable rule id, e.g. `backing_file`; OpenStack's names where a rule corresponds.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// What was found, for a person.
    pub message: String,
    /// Offset in the layer's input where it was found, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Finding {
    /// A finding of `severity` under `rule`.
    pub fn new(rule: &'static str, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            rule,
            severity,
            message: message.into(),
            offset: None,
        }
    }

    /// An [`Severity::Unsafe`] finding.
    pub fn unsafe_(rule: &'static str, message: impl Into<String>) -> Self {
        Finding::new(rule, Severity::Unsafe, message)
    }

    /// A [`Severity::Warning`] finding.
    pub fn warning(rule: &'static str, message: impl Into<String>) -> Self {
        Finding::new(rule, Severity::Warning, message)
    }

    /// An [`Severity::Info`] finding.
    pub fn info(rule: &'static str, message: impl Into<String>) -> Self {
        Finding::new(rule, Severity::Info, message)
    }

    /// Sets the offset.
    pub fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
}

/// A bounded list of findings: past [`crate::limits::MAX_FINDINGS`] they are counted only.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    items: Vec<Finding>,
    dropped: u64,
}

impl Findings {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a finding (or counts it once the list is full).
    pub fn push(&mut self, f: Finding) {
        if self.items.len() < crate::limits::MAX_FINDINGS {
            self.items.push(f);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The findings kept, plus one summarising those dropped.
    pub fn to_vec(&self) -> Vec<Finding> {
        let mut v = self.items.clone();
        if self.dropped > 0 {
            v.push(Finding::warning(
                crate::rule::FINDINGS_TRUNCATED,
                format!("{} more findings were not kept", self.dropped),
            ));
        }
        v
    }

    /// Whether any finding is [`Severity::Unsafe`].
    pub fn any_unsafe(&self) -> bool {
        self.items.iter().any(|f| f.severity == Severity::Unsafe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_bounded() {
        let mut f = Findings::new();
        for _ in 0..crate::limits::MAX_FINDINGS + 5 {
            f.push(Finding::info("x", "y"));
        }
        let v = f.to_vec();
        assert_eq!(v.len(), crate::limits::MAX_FINDINGS + 1);
        assert_eq!(v.last().unwrap().rule, crate::rule::FINDINGS_TRUNCATED);
        assert!(v.last().unwrap().message.starts_with("5 more"));
    }
}

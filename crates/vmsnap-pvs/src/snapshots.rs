//! `Snapshots.xml`: the VM's snapshot tree (`ParallelsSavedStates`), and the layer name
//! each snapshot gets.
//!
//! The tree is nested `SavedStateItem` elements: the outermost has an empty `guid` and
//! stands for the VM before any snapshot; every other one is a snapshot (`guid`
//! attribute, `Name`, `DateTime`, `Description` children), and its `SavedStateItem`
//! children are the snapshots taken from it. The one the VM currently runs from has
//! `current="yes"` (libvzctl's `write_SavedStateItem`).
//!
//! **Layer names.** A snapshot is `snapshot:<name>`: its `Name` when that is 1 to
//! [`MAX_LAYER_NAME_CHARS`] characters without `/` or control characters, no other
//! snapshot has the same `Name`, and it is not another snapshot's GUID; else its GUID
//! (lowercase, without braces).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use vmsnap_core::{Error, Result};
use vmsnap_hdd::{xml, Guid};

use crate::raw::{MAX_LAYER_NAME_CHARS, MAX_SNAPSHOTS, SAVED_STATE_ITEM, SNAPSHOTS_ROOT};

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedState {
    /// Its `guid`.
    pub guid: Guid,
    /// The snapshot it was taken from (`None` for one taken from the VM's start).
    pub parent: Option<Guid>,
    /// `Name`.
    pub name: Option<String>,
    /// `DateTime`, as written.
    pub date_time: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `current="yes"`: the VM's current state descends from it.
    pub current: bool,
    /// The layer name (see the module docs).
    pub layer_name: String,
}

impl SavedState {
    /// For describe.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.layer_name,
            "id": self.guid.as_str(),
            "parent": self.parent.as_ref().map(Guid::as_str),
            "display_name": self.name,
            "date_time": self.date_time,
            "description": self.description,
            "current": self.current,
        })
    }
}

/// Parses `bytes`, the `Snapshots.xml` file: its snapshots parents first (document order).
pub fn parse(bytes: &[u8]) -> Result<Vec<SavedState>> {
    let doc = xml::parse(bytes)?;
    let root = doc.root_element();
    if root.tag_name().name() != SNAPSHOTS_ROOT {
        return Err(Error::malformed(
            xml::at(root),
            format!(
                "the root element is <{}>, not <{SNAPSHOTS_ROOT}>",
                root.tag_name().name()
            ),
        ));
    }
    let mut out: Vec<SavedState> = Vec::new();
    for n in root
        .descendants()
        .filter(|c| c.is_element() && c.tag_name().name() == SAVED_STATE_ITEM)
    {
        let g = n.attribute("guid").unwrap_or("").trim();
        if g.is_empty() {
            continue;
        }
        if out.len() >= MAX_SNAPSHOTS {
            return Err(
                Error::limit("snapshots", out.len() as u64 + 1, MAX_SNAPSHOTS as u64)
                    .at(xml::at(n)),
            );
        }
        let guid = Guid::parse(g, xml::at(n))?;
        if out.iter().any(|s| s.guid == guid) {
            return Err(Error::malformed(
                xml::at(n),
                format!("snapshot {guid} is listed twice"),
            ));
        }
        let parent = n
            .parent_element()
            .filter(|p| p.tag_name().name() == SAVED_STATE_ITEM)
            .and_then(|p| p.attribute("guid"))
            .filter(|p| !p.trim().is_empty())
            .map(|p| Guid::parse(p, xml::at(n)))
            .transpose()?;
        let text = |name| {
            xml::text(n, name)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        out.push(SavedState {
            guid,
            parent,
            name: text("Name"),
            date_time: text("DateTime"),
            description: text("Description"),
            current: n
                .attribute("current")
                .is_some_and(|c| c.eq_ignore_ascii_case("yes")),
            layer_name: String::new(),
        });
    }
    name_snapshots(&mut out);
    Ok(out)
}

fn usable(name: &str) -> bool {
    let n = name.chars().count();
    n > 0 && n <= MAX_LAYER_NAME_CHARS && !name.contains('/') && !name.chars().any(char::is_control)
}

/// Sets each snapshot's layer name (the rule in the module docs).
fn name_snapshots(snaps: &mut [SavedState]) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in snaps.iter() {
        if let Some(n) = &s.name {
            *counts.entry(n.clone()).or_default() += 1;
        }
    }
    let guids: Vec<String> = snaps.iter().map(|s| s.guid.as_str().to_string()).collect();
    for s in snaps.iter_mut() {
        s.layer_name = match &s.name {
            Some(n)
                if usable(n)
                    && counts.get(n) == Some(&1)
                    && !guids.iter().any(|g| g.eq_ignore_ascii_case(n)) =>
            {
                n.clone()
            }
            _ => s.guid.as_str().to_string(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_names_and_current() {
        let s = parse(
            br#"<?xml version="1.0"?><ParallelsSavedStates><SavedStateItem guid="">
            <Name/><SavedStateItem guid="{11111111-1111-1111-1111-111111111111}">
              <Name>same</Name><DateTime>2024-01-02 03:04:05</DateTime>
              <SavedStateItem guid="{22222222-2222-2222-2222-222222222222}" current="yes">
                <Name>a/b</Name><Description><![CDATA[x]]></Description></SavedStateItem>
              <SavedStateItem guid="{33333333-3333-3333-3333-333333333333}">
                <Name>same</Name></SavedStateItem>
            </SavedStateItem>
            <SavedStateItem guid="{44444444-4444-4444-4444-444444444444}"><Name>ok</Name>
            </SavedStateItem></SavedStateItem></ParallelsSavedStates>"#,
        )
        .unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.layer_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "11111111-1111-1111-1111-111111111111",
                "22222222-2222-2222-2222-222222222222",
                "33333333-3333-3333-3333-333333333333",
                "ok"
            ]
        );
        assert_eq!(s[1].parent.as_ref(), Some(&s[0].guid));
        assert_eq!(s[3].parent, None);
        assert!(s[1].current && !s[0].current);
        assert_eq!(s[1].description.as_deref(), Some("x"));
        assert!(
            parse(b"<ParallelsSavedStates><SavedStateItem guid='x'/></ParallelsSavedStates>")
                .is_err()
        );
        assert!(parse(b"<Other/>").is_err());
    }
}

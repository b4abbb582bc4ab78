//! The snapshot database (`.vmsd`): the same dictionary dialect, `snapshotN.*` keys per
//! snapshot, and the layer name each snapshot gets.
//!
//! **Layer names.** A snapshot is `snapshot:<name>`, where `<name>` is, in this order:
//! its `displayName` when that is usable (1 to [`MAX_LAYER_NAME_CHARS`] characters, no
//! `/`, no control character, not of the form `snapshot<digits>`, and no other snapshot
//! has the same display name); else its `uid` when that is usable, not a usable display
//! name of another snapshot and not taken by an earlier snapshot; else its own key in the
//! database (`snapshot3`), which is unique. So duplicate, empty, or path-like display names
//! fall back to the uid.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use vmsnap_core::Finding;

use crate::dict::Dictionary;
use crate::raw::{MAX_DEVICES, MAX_LAYER_NAME_CHARS, MAX_SNAPSHOTS};
use crate::rule::SNAPSHOTS;

/// A disk of a snapshot: the bus node it was attached to and its file at that point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotDisk {
    /// `snapshotN.diskM.node` (`scsi0:0`).
    pub node: String,
    /// `snapshotN.diskM.fileName`.
    pub file_name: String,
}

/// One snapshot of the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Its key in the database (`snapshot0`).
    pub key: String,
    /// `uid`.
    pub uid: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `parent` (a uid).
    pub parent: Option<String>,
    /// `fileName`: its `.vmsn`.
    pub file_name: Option<String>,
    /// `createTimeHigh`/`createTimeLow`: microseconds since 1970 (UTC).
    pub create_time_us: Option<i64>,
    /// Its disks, by `diskM` index.
    pub disks: Vec<SnapshotDisk>,
    /// The layer name (see the module docs).
    pub name: String,
}

impl Snapshot {
    /// The creation time in whole seconds since 1970 (none before it).
    pub fn date_sec(&self) -> Option<u64> {
        self.create_time_us
            .and_then(|us| u64::try_from(us.div_euclid(1_000_000)).ok())
    }

    /// For describe.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "key": self.key,
            "uid": self.uid,
            "display_name": self.display_name,
            "description": self.description,
            "parent": self.parent,
            "file": self.file_name,
            "id": self.uid,
            "date_sec": self.date_sec(),
            "create_time": self.date_sec().map(vmsnap_core::time::iso8601_utc),
        })
    }
}

/// The database.
#[derive(Debug, Clone, Default)]
pub struct SnapshotDb {
    /// `snapshot.current`: the uid of the snapshot the current state descends from.
    pub current: Option<String>,
    /// `snapshot.numSnapshots`.
    pub num_snapshots: Option<String>,
    /// Every snapshot, by index.
    pub snapshots: Vec<Snapshot>,
    /// Inconsistencies.
    pub findings: Vec<Finding>,
}

/// `snapshot<N>.<prop>` → `(N, prop)`.
fn split(key: &str) -> Option<(u64, &str)> {
    let rest = key.strip_prefix("snapshot")?;
    let (n, prop) = rest.split_once('.')?;
    if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((n.parse().ok()?, prop))
}

/// `disk<M>.<prop>` → `(M, prop)`.
fn split_disk(prop: &str) -> Option<(u64, &str)> {
    let rest = prop.strip_prefix("disk")?;
    let (n, p) = rest.split_once('.')?;
    if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((n.parse().ok()?, p))
}

impl SnapshotDb {
    /// Reads the snapshots of a parsed `.vmsd`.
    pub fn parse(d: &Dictionary) -> SnapshotDb {
        let mut db = SnapshotDb {
            current: d.get("snapshot.current").map(str::to_string),
            num_snapshots: d.get("snapshot.numsnapshots").map(str::to_string),
            ..SnapshotDb::default()
        };
        let mut snaps: BTreeMap<u64, Snapshot> = BTreeMap::new();
        let mut disks: BTreeMap<(u64, u64), SnapshotDisk> = BTreeMap::new();
        let (mut high, mut low) = (BTreeMap::new(), BTreeMap::new());
        let mut dropped = 0u64;
        for e in d.entries() {
            let key = e.key.to_ascii_lowercase();
            let Some((n, prop)) = split(&key) else {
                continue;
            };
            if !snaps.contains_key(&n) && snaps.len() as u64 >= MAX_SNAPSHOTS {
                dropped += 1;
                continue;
            }
            let s = snaps.entry(n).or_insert_with(|| Snapshot {
                key: format!("snapshot{n}"),
                ..Snapshot::default()
            });
            let v = Some(e.value.clone());
            match prop {
                "uid" => s.uid = v,
                "displayname" => s.display_name = v,
                "description" => s.description = v,
                "parent" => s.parent = v,
                "filename" => s.file_name = v,
                "createtimehigh" => {
                    high.insert(n, e.value.trim().parse::<i64>().ok());
                }
                "createtimelow" => {
                    low.insert(n, e.value.trim().parse::<i64>().ok());
                }
                _ => {
                    let Some((m, p)) = split_disk(prop) else {
                        continue;
                    };
                    if m >= MAX_DEVICES {
                        dropped += 1;
                        continue;
                    }
                    let disk = disks.entry((n, m)).or_default();
                    match p {
                        "node" => disk.node = e.value.trim().to_ascii_lowercase(),
                        "filename" => disk.file_name = e.value.clone(),
                        _ => {}
                    }
                }
            }
        }
        if dropped > 0 {
            db.findings.push(Finding::warning(
                SNAPSHOTS,
                format!(
                    "{dropped} keys past {MAX_SNAPSHOTS} snapshots or {MAX_DEVICES} disks ignored"
                ),
            ));
        }
        for ((n, m), disk) in disks {
            let Some(s) = snaps.get_mut(&n) else { continue };
            if disk.node.is_empty() || disk.file_name.is_empty() {
                db.findings.push(Finding::warning(
                    SNAPSHOTS,
                    format!("snapshot{n}.disk{m} lacks its node or fileName; ignored"),
                ));
                continue;
            }
            if s.disks.iter().any(|d| d.node == disk.node) {
                db.findings.push(Finding::warning(
                    SNAPSHOTS,
                    format!(
                        "snapshot{n}.disk{m}: node {} listed twice; the first is used",
                        disk.node
                    ),
                ));
                continue;
            }
            s.disks.push(disk);
        }
        for (n, s) in snaps.iter_mut() {
            if let (Some(Some(h)), Some(Some(l))) = (high.get(n), low.get(n)) {
                // Two signed 32-bit halves of one 64-bit count.
                s.create_time_us = Some(h.wrapping_shl(32) | (l & 0xffff_ffff));
            }
        }
        db.snapshots = snaps.into_values().collect();
        name_snapshots(&mut db.snapshots);
        db.check();
        db
    }

    fn check(&mut self) {
        let uids: BTreeSet<&str> = self
            .snapshots
            .iter()
            .filter_map(|s| s.uid.as_deref())
            .collect();
        let mut f = Vec::new();
        for s in &self.snapshots {
            match (&s.uid, &s.parent) {
                (None, _) => f.push(format!("{} has no uid", s.key)),
                (_, Some(p)) if !uids.contains(p.as_str()) => {
                    f.push(format!("{}: parent uid {p} names no snapshot", s.key))
                }
                _ => {}
            }
        }
        if let Some(c) = &self.current {
            if !uids.contains(c.as_str()) {
                f.push(format!("snapshot.current {c} names no snapshot"));
            }
        }
        if let Some(n) = &self.num_snapshots {
            if n.trim().parse::<usize>().ok() != Some(self.snapshots.len()) {
                f.push(format!(
                    "snapshot.numSnapshots is {n} but {} snapshots are listed",
                    self.snapshots.len()
                ));
            }
        }
        self.findings
            .extend(f.into_iter().map(|m| Finding::warning(SNAPSHOTS, m)));
    }
}

fn usable(name: &str) -> bool {
    let n = name.chars().count();
    n > 0 && n <= MAX_LAYER_NAME_CHARS && !name.contains('/') && !name.chars().any(char::is_control)
}

fn is_key_form(name: &str) -> bool {
    name.strip_prefix("snapshot")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Sets each snapshot's layer name (the rule in the module docs).
fn name_snapshots(snaps: &mut [Snapshot]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in snaps.iter() {
        if let Some(d) = s.display_name.as_deref() {
            *counts.entry(d).or_default() += 1;
        }
    }
    let display_ok = |d: &str| usable(d) && !is_key_form(d) && counts.get(d) == Some(&1);
    let displays: BTreeSet<String> = snaps
        .iter()
        .filter_map(|s| s.display_name.as_deref())
        .filter(|d| display_ok(d))
        .map(str::to_string)
        .collect();
    let chosen: Vec<Option<String>> = snaps
        .iter()
        .map(|s| s.display_name.clone().filter(|d| display_ok(d)))
        .collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (s, display) in snaps.iter_mut().zip(chosen) {
        let name = display.unwrap_or_else(|| match s.uid.as_deref() {
            Some(u)
                if usable(u) && !is_key_form(u) && !displays.contains(u) && !used.contains(u) =>
            {
                u.to_string()
            }
            _ => s.key.clone(),
        });
        used.insert(name.clone());
        s.name = name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        let db = SnapshotDb::parse(&Dictionary::parse(text.as_bytes()));
        db.snapshots.into_iter().map(|s| s.name).collect()
    }

    #[test]
    fn layer_names_fall_back_to_the_uid_then_the_key() {
        assert_eq!(
            names(
                "snapshot0.uid = \"1\"\nsnapshot0.displayName = \"same\"\n\
                 snapshot1.uid = \"2\"\nsnapshot1.displayName = \"same\"\n\
                 snapshot2.uid = \"3\"\nsnapshot2.displayName = \"a/b\"\n\
                 snapshot3.uid = \"4\"\nsnapshot3.displayName = \"clean\"\n\
                 snapshot4.uid = \"clean\"\nsnapshot4.displayName = \"\"\n\
                 snapshot5.uid = \"6\"\nsnapshot5.displayName = \"snapshot0\"\n\
                 snapshot6.uid = \"6\"\n"
            ),
            ["1", "2", "3", "clean", "snapshot4", "6", "snapshot6"]
        );
    }

    #[test]
    fn disks_times_and_checks() {
        let db = SnapshotDb::parse(&Dictionary::parse(
            b"snapshot.numSnapshots = \"2\"\nsnapshot.current = \"9\"\n\
              snapshot0.uid = \"1\"\nsnapshot0.disk0.node = \"SCSI0:0\"\n\
              snapshot0.disk0.fileName = \"a.vmdk\"\nsnapshot0.disk1.node = \"scsi0:1\"\n\
              snapshot0.createTimeHigh = \"399012\"\nsnapshot0.createTimeLow = \"-1498542342\"\n",
        ));
        let s = &db.snapshots[0];
        assert_eq!(
            s.disks,
            [SnapshotDisk {
                node: "scsi0:0".into(),
                file_name: "a.vmdk".into()
            }]
        );
        // 399012 << 32 | (the low half as unsigned), checked with Python's datetime.
        assert_eq!(s.create_time_us, Some(1_713_746_287_136_506));
        assert_eq!(s.to_json()["create_time"], "2024-04-22T00:38:07Z");
        // Missing disk node, current names nothing, count differs.
        assert_eq!(db.findings.len(), 3, "{:?}", db.findings);
    }
}

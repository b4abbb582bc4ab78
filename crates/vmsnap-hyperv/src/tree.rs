//! The key tree: parent links resolved across tables, cycles and out-of-table parents
//! detected, siblings kept in insertion-sequence order with repeated names all kept.

use vmsnap_core::{Finding, Findings};

use crate::keys::Key;
use crate::limits::MAX_KEY_DEPTH;

/// Why a key is not in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphan {
    /// Its parent link names no entry.
    MissingParent,
    /// Its parent is not a node.
    ParentNotNode,
    /// Its ancestors form a cycle.
    Cycle,
    /// It is nested deeper than the limit.
    TooDeep,
    /// An ancestor is an orphan.
    OrphanAncestor,
}

impl Orphan {
    /// Short reason for JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Orphan::MissingParent => "parent_not_found",
            Orphan::ParentNotNode => "parent_not_node",
            Orphan::Cycle => "parent_cycle",
            Orphan::TooDeep => "too_deep",
            Orphan::OrphanAncestor => "orphan_ancestor",
        }
    }
}

/// The keys with their tree links. Ids are indexes into `keys`.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Every live key, sorted by (table, offset).
    pub keys: Vec<Key>,
    /// Children of each key, in insertion-sequence order.
    pub children: Vec<Vec<u32>>,
    /// Children of the virtual root, in insertion-sequence order.
    pub roots: Vec<u32>,
    /// Keys not reachable from the root, with why.
    pub orphans: Vec<(u32, Orphan)>,
}

const UNSEEN: u8 = 0;
const ON_PATH: u8 = 1;
const ROOTED: u8 = 2;
const ORPHAN: u8 = 3;

impl Tree {
    /// Links `keys` (sorted by table, offset).
    pub fn build(keys: Vec<Key>, findings: &mut Findings) -> Tree {
        let n = keys.len();
        // Parent of each key: None = root, Some(Ok(id)), Some(Err(reason)).
        let parent: Vec<Option<Result<u32, Orphan>>> = keys
            .iter()
            .map(|k| {
                if k.parent_table == 0 {
                    return None;
                }
                let lo = keys
                    .partition_point(|x| (x.table, x.offset) < (k.parent_table, k.parent_offset));
                Some(match keys.get(lo) {
                    Some(p) if p.table == k.parent_table && p.offset == k.parent_offset => {
                        if p.value.is_node() {
                            Ok(lo as u32)
                        } else {
                            Err(Orphan::ParentNotNode)
                        }
                    }
                    _ => Err(Orphan::MissingParent),
                })
            })
            .collect();
        let mut state = vec![UNSEEN; n];
        let mut depth = vec![0u32; n];
        let mut why: Vec<Option<Orphan>> = vec![None; n];
        let mut path: Vec<usize> = Vec::new();
        for start in 0..n {
            if state.get(start) != Some(&UNSEEN) {
                continue;
            }
            path.clear();
            let mut cur = start;
            // Walk up until a decided key, the root, a bad link or a cycle.
            let (mut verdict, mut base_depth): (Option<Orphan>, u32) = loop {
                match state.get(cur).copied() {
                    Some(ROOTED) => break (None, depth.get(cur).copied().unwrap_or(0)),
                    Some(ORPHAN) => break (Some(Orphan::OrphanAncestor), 0),
                    Some(ON_PATH) => break (Some(Orphan::Cycle), 0),
                    _ => {}
                }
                if let Some(s) = state.get_mut(cur) {
                    *s = ON_PATH;
                }
                path.push(cur);
                match parent.get(cur).copied().flatten() {
                    None => break (None, 0),
                    Some(Err(r)) => {
                        // The key itself is the orphan; its descendants on the path inherit.
                        path.pop();
                        if let Some(w) = why.get_mut(cur) {
                            *w = Some(r);
                        }
                        if let Some(s) = state.get_mut(cur) {
                            *s = ORPHAN;
                        }
                        break (Some(Orphan::OrphanAncestor), 0);
                    }
                    Some(Ok(p)) => cur = p as usize,
                }
            };
            // Assign from the top of the path down.
            for &k in path.iter().rev() {
                if verdict.is_none() {
                    base_depth += 1;
                    if base_depth as usize > MAX_KEY_DEPTH {
                        verdict = Some(Orphan::TooDeep);
                    }
                }
                match verdict {
                    None => {
                        if let Some(s) = state.get_mut(k) {
                            *s = ROOTED;
                        }
                        if let Some(d) = depth.get_mut(k) {
                            *d = base_depth;
                        }
                    }
                    Some(r) => {
                        if let Some(s) = state.get_mut(k) {
                            *s = ORPHAN;
                        }
                        if let Some(w) = why.get_mut(k) {
                            *w = Some(r);
                        }
                        if r == Orphan::TooDeep {
                            verdict = Some(Orphan::OrphanAncestor);
                        }
                    }
                }
            }
        }
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        let mut orphans = Vec::new();
        for i in 0..n {
            if state.get(i) == Some(&ROOTED) {
                match parent.get(i).copied().flatten() {
                    Some(Ok(p)) => {
                        if let Some(c) = children.get_mut(p as usize) {
                            c.push(i as u32);
                        }
                    }
                    _ => roots.push(i as u32),
                }
            } else {
                let r = why
                    .get(i)
                    .copied()
                    .flatten()
                    .unwrap_or(Orphan::OrphanAncestor);
                if let Some(k) = keys.get(i) {
                    let msg = match r {
                        Orphan::MissingParent => format!(
                            "key {:?}: parent link (table {}, offset {:#x}) names no entry",
                            k.name, k.parent_table, k.parent_offset
                        ),
                        Orphan::ParentNotNode => format!("key {:?}: parent is not a node", k.name),
                        Orphan::Cycle => format!("key {:?}: parent links form a cycle", k.name),
                        Orphan::TooDeep => {
                            format!("key {:?}: nested deeper than {MAX_KEY_DEPTH}", k.name)
                        }
                        Orphan::OrphanAncestor => {
                            format!("key {:?}: an ancestor is not in the tree", k.name)
                        }
                    };
                    let rule = match r {
                        Orphan::Cycle => "key_parent_cycle",
                        Orphan::TooDeep => "key_depth",
                        _ => "key_parent",
                    };
                    findings.push(Finding::warning(rule, msg).at(k.file_offset));
                }
                orphans.push((i as u32, r));
            }
        }
        let order = |ids: &mut Vec<u32>| {
            ids.sort_by_key(|&id| {
                keys.get(id as usize)
                    .map(|k| (k.insertion, k.table, k.offset))
                    .unwrap_or_default()
            })
        };
        order(&mut roots);
        for c in &mut children {
            if c.len() > 1 {
                order(c);
            }
        }
        Tree {
            keys,
            children,
            roots,
            orphans,
        }
    }

    /// The key with id `id`.
    pub fn key(&self, id: u32) -> Option<&Key> {
        self.keys.get(id as usize)
    }

    /// Children of `id` (`None` = the root).
    pub fn children_of(&self, id: Option<u32>) -> &[u32] {
        match id {
            None => &self.roots,
            Some(i) => self
                .children
                .get(i as usize)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        }
    }

    /// The first child of `id` named `name`.
    pub fn child(&self, id: Option<u32>, name: &str) -> Option<u32> {
        self.children_of(id)
            .iter()
            .copied()
            .find(|&c| self.key(c).is_some_and(|k| k.name == name))
    }

    /// The key at `/a/b/c` (first match at each level).
    pub fn get(&self, path: &str) -> Option<u32> {
        let mut cur = None;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur = Some(self.child(cur, part)?);
        }
        cur
    }

    /// Every key at `/a/b/c`, following every repeated name at every level.
    pub fn get_all(&self, path: &str) -> Vec<u32> {
        let mut cur: Vec<Option<u32>> = vec![None];
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let mut next = Vec::new();
            for c in cur {
                for &k in self.children_of(c) {
                    if self.key(k).is_some_and(|x| x.name == part) {
                        next.push(Some(k));
                    }
                }
            }
            cur = next;
        }
        cur.into_iter().flatten().collect()
    }
}

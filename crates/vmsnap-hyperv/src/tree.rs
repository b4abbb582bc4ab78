//! The key tree: parent links resolved across tables, cycles and out-of-table parents
//! detected, siblings kept in insertion-sequence order with repeated names all kept.

use vmsnap_core::{Finding, Findings};

use crate::keys::Key;
use crate::limits::MAX_KEY_DEPTH;

/// Why a key is not in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    pub(crate) keys: Vec<Key>,
    /// Children of each key, in insertion-sequence order.
    pub(crate) children: Vec<Vec<u32>>,
    /// Children of the virtual root, in insertion-sequence order.
    pub(crate) roots: Vec<u32>,
    /// Keys not reachable from the root, with why.
    pub(crate) orphans: Vec<(u32, Orphan)>,
    /// For each key, where its parent link (table, offset) falls among the keys: the id
    /// of the parent when the link is good, else the first key after it.
    parent_pos: Vec<u32>,
}

/// Elements sampled for [`SortedIndex`] (every `SAMPLE`th).
const SAMPLE: usize = 16;

/// `partition_point(|x| x < want)` over a sorted array, with a small cache-resident
/// sample array narrowing the search to one run of [`SAMPLE`] elements. Unsorted input
/// falls back to the plain binary search, so the answer is always the same.
struct SortedIndex {
    samples: Option<Vec<u64>>,
}

impl SortedIndex {
    fn new(v: &[u64]) -> Self {
        let sorted = v.windows(2).all(|w| matches!(w, [a, b] if a <= b));
        SortedIndex {
            samples: sorted.then(|| v.iter().step_by(SAMPLE).copied().collect()),
        }
    }

    fn partition_point(&self, v: &[u64], want: u64) -> usize {
        let Some(samples) = &self.samples else {
            return v.partition_point(|&x| x < want);
        };
        // samples[b - 1] < want <= samples[b]: the answer is in ((b-1)*S, b*S].
        let b = samples.partition_point(|&x| x < want);
        let lo = b.checked_sub(1).map_or(0, |p| p * SAMPLE + 1).min(v.len());
        let hi = b.saturating_mul(SAMPLE).min(v.len()).max(lo);
        lo + v
            .get(lo..hi)
            .map_or(0, |run| run.partition_point(|&x| x < want))
    }
}

/// (table, offset) as one number with the same order.
#[inline]
fn pack(table: u16, offset: u32) -> u64 {
    (u64::from(table) << 32) | u64::from(offset)
}

const UNSEEN: u8 = 0;
const ON_PATH: u8 = 1;
const ROOTED: u8 = 2;
const ORPHAN: u8 = 3;

impl Tree {
    /// Every live key, sorted by (table, offset); a key's id is its index here.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Keys not reachable from the root, with why.
    pub fn orphans(&self) -> &[(u32, Orphan)] {
        &self.orphans
    }

    /// Links `keys` (sorted by table, offset).
    pub(crate) fn build(keys: Vec<Key>, findings: &mut Findings) -> Tree {
        let n = keys.len();
        // Compact copies of what linking needs, made in one pass: binary searches, node
        // checks and sorts then touch these, not the (large) keys, so a 100k-key tree
        // stays in cache.
        let mut packed: Vec<u64> = Vec::with_capacity(n);
        let mut wants: Vec<u64> = Vec::with_capacity(n);
        let mut is_node: Vec<bool> = Vec::with_capacity(n);
        let mut insertion: Vec<u32> = Vec::with_capacity(n);
        for k in &keys {
            let at = pack(k.table, k.offset);
            packed.push(at);
            wants.push(pack(k.parent_table, k.parent_offset));
            is_node.push(k.value.is_node());
            insertion.push(k.insertion);
        }
        let index = SortedIndex::new(&packed);
        // Siblings are ordered by (insertion, table, offset), ties kept in id order. Rank
        // ids by (table, offset) (the identity when the keys are sorted, as read_keys
        // gives them), so that order is the one of the number (insertion << 32 | rank).
        let by_rank: Option<Vec<u32>> = index.samples.is_none().then(|| {
            let mut ids: Vec<u32> = (0..n as u32).collect();
            ids.sort_by_key(|&i| packed.get(i as usize).copied().unwrap_or_default());
            ids
        });
        let mut rank_of: Vec<u32> = Vec::new();
        if let Some(ids) = &by_rank {
            rank_of = vec![0; n];
            for (r, &i) in ids.iter().enumerate() {
                if let Some(x) = rank_of.get_mut(i as usize) {
                    *x = r as u32;
                }
            }
        }
        let sort_key = |id: usize| -> u64 {
            let ins = u64::from(insertion.get(id).copied().unwrap_or_default());
            let rank = if by_rank.is_some() {
                rank_of.get(id).copied().unwrap_or_default()
            } else {
                id as u32
            };
            (ins << 32) | u64::from(rank)
        };
        let id_of = |key: u64| -> u32 {
            let rank = key as u32;
            match &by_rank {
                Some(ids) => ids.get(rank as usize).copied().unwrap_or(rank),
                None => rank,
            }
        };
        // Where each key's parent link lands in `packed` (what `partition_point` gives,
        // matched or not), and the parent itself: None = root, Some(Ok(id)), Some(Err(reason)).
        let mut parent_pos: Vec<u32> = Vec::with_capacity(n);
        let mut last: Option<(u64, usize)> = None;
        let parent: Vec<Option<Result<u32, Orphan>>> = wants
            .iter()
            .map(|&want| {
                let lo = match last {
                    Some((w, lo)) if w == want => lo,
                    _ => {
                        let lo = index.partition_point(&packed, want);
                        last = Some((want, lo));
                        lo
                    }
                };
                parent_pos.push(lo as u32);
                if want >> 32 == 0 {
                    return None; // parent table 0: a child of the root
                }
                Some(if packed.get(lo) == Some(&want) {
                    if is_node.get(lo) == Some(&true) {
                        Ok(lo as u32)
                    } else {
                        Err(Orphan::ParentNotNode)
                    }
                } else {
                    Err(Orphan::MissingParent)
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
        // Children as sort keys first (sorted without looking anything up), ids after.
        let mut child_keys: Vec<Vec<u64>> = vec![Vec::new(); n];
        let mut root_keys: Vec<u64> = Vec::new();
        let mut orphans = Vec::new();
        for i in 0..n {
            if state.get(i) == Some(&ROOTED) {
                match parent.get(i).copied().flatten() {
                    Some(Ok(p)) => {
                        if let Some(c) = child_keys.get_mut(p as usize) {
                            c.push(sort_key(i));
                        }
                    }
                    _ => root_keys.push(sort_key(i)),
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
                        Orphan::Cycle => crate::rule::KEY_PARENT_CYCLE,
                        Orphan::TooDeep => crate::rule::KEY_DEPTH,
                        _ => crate::rule::KEY_PARENT,
                    };
                    findings.push(Finding::warning(rule, msg).at(k.file_offset));
                }
                orphans.push((i as u32, r));
            }
        }
        // Sort keys are distinct (the rank is), so an unstable sort gives the stable order.
        let order = |mut v: Vec<u64>| -> Vec<u32> {
            v.sort_unstable();
            v.into_iter().map(id_of).collect()
        };
        let roots = order(root_keys);
        let children: Vec<Vec<u32>> = child_keys
            .into_iter()
            .map(|c| if c.is_empty() { Vec::new() } else { order(c) })
            .collect();
        Tree {
            keys,
            children,
            roots,
            orphans,
            parent_pos,
        }
    }

    /// The id of the first key at or after `id`'s parent link (table, offset): the
    /// parent itself when the link is good. `None` for an unknown id.
    pub fn parent_position(&self, id: u32) -> Option<u32> {
        self.parent_pos.get(id as usize).copied()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_index_matches_partition_point() {
        for n in [0usize, 1, 2, 63, 64, 65, 128, 129, 1000] {
            let v: Vec<u64> = (0..n as u64).map(|i| i * 3 + (i % 5) / 4).collect();
            let idx = SortedIndex::new(&v);
            assert!(idx.samples.is_some());
            for want in 0..(n as u64 * 3 + 5) {
                assert_eq!(
                    idx.partition_point(&v, want),
                    v.partition_point(|&x| x < want),
                    "n {n} want {want}"
                );
            }
        }
        let v = vec![5u64, 1, 9, 3];
        let idx = SortedIndex::new(&v);
        assert!(idx.samples.is_none());
        for want in 0..12 {
            assert_eq!(
                idx.partition_point(&v, want),
                v.partition_point(|&x| x < want)
            );
        }
    }

    fn key(table: u16, offset: u32, parent: (u16, u32), insertion: u32, node: bool) -> Key {
        Key {
            table,
            offset,
            file_offset: 0,
            kind: if node { 9 } else { 3 },
            flags: 0,
            parent_table: parent.0,
            parent_offset: parent.1,
            insertion,
            name: format!("k{table}-{offset}"),
            value: if node {
                crate::value::Value::Node {
                    change_sequence: 0,
                    next_insertion: 0,
                }
            } else {
                crate::value::Value::Int(0)
            },
            stored: None,
            checksum_ok: true,
        }
    }

    /// Links and sibling order against the straightforward definition: the parent is
    /// the `partition_point` of its (table, offset) among the keys, siblings are sorted
    /// stably by (insertion, table, offset). Sorted, duplicated and unsorted inputs.
    #[test]
    fn links_and_order_match_the_definition() {
        let mut r = 99u64;
        let mut next = move || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        for round in 0..200 {
            let n = (next() % 300) as usize + 1;
            let mut keys: Vec<Key> = (0..n)
                .map(|i| {
                    let table = (next() % 4) as u16 + 1;
                    let offset = (next() % 64) as u32 * 8;
                    let parent = if i < 3 || next() % 5 == 0 {
                        (0, 0)
                    } else {
                        ((next() % 5) as u16, (next() % 64) as u32 * 8)
                    };
                    key(table, offset, parent, (next() % 6) as u32, next() % 3 != 0)
                })
                .collect();
            if round % 3 != 0 {
                keys.sort_by_key(|k| (k.table, k.offset));
            }
            let t = Tree::build(keys.clone(), &mut Findings::new());
            let find = |id: usize| {
                let k = &keys[id];
                keys.partition_point(|x| (x.table, x.offset) < (k.parent_table, k.parent_offset))
            };
            let orphan: Vec<bool> = (0..n)
                .map(|i| t.orphans.iter().any(|&(o, _)| o as usize == i))
                .collect();
            let order = |mut v: Vec<u32>| {
                v.sort_by_key(|&id| {
                    let k = &keys[id as usize];
                    (k.insertion, k.table, k.offset)
                });
                v
            };
            let mut want_children = vec![Vec::new(); n];
            let mut want_roots = Vec::new();
            for i in 0..n {
                assert_eq!(t.parent_position(i as u32), Some(find(i) as u32));
                if orphan[i] {
                    continue;
                }
                if keys[i].parent_table == 0 {
                    want_roots.push(i as u32);
                } else {
                    let p = find(i);
                    assert!(p < n && keys[p].table == keys[i].parent_table);
                    assert!(keys[p].offset == keys[i].parent_offset && keys[p].value.is_node());
                    want_children[p].push(i as u32);
                }
            }
            assert_eq!(t.roots, order(want_roots), "round {round}");
            for (p, c) in want_children.into_iter().enumerate() {
                assert_eq!(t.children[p], order(c), "round {round} parent {p}");
            }
        }
    }
}

//! The parsed container: headers, replay log, object tables, key tables and the key
//! tree, with every finding made on the way. The typed API for embedders.

use std::cell::Cell;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};
use vmsnap_core::{Error, Finding, Findings, Layer, LayerExt, Result, ResultExt};

use crate::header::{read_headers, FileHeader};
use crate::image::Image;
use crate::keys::{read_keys, FileStrings, Key, KeyTableInfo};
use crate::limits::{MAX_META_ARRAY_BYTES, MAX_META_ARRAY_BYTES_TOTAL};
use crate::log::{read_log, ReplayLog};
use crate::objects::{read_objects, Object};
use crate::raw::{OBJ_FILE, OBJ_FREE, OBJ_KEY_TABLE, OBJ_OBJECT_TABLE, VERSION_3_1};
use crate::tree::Tree;
use crate::value::{utf16, ArrayData, Stored, Value};

/// A Hyper-V storage container (`.vmcx`, `.vmrs`, `.vsv`), parsed and verified.
#[derive(Debug, Clone)]
pub struct Container {
    /// The file with pending replay-log entries applied in memory.
    pub(crate) image: Arc<Image>,
    /// The current file header.
    pub(crate) header: FileHeader,
    /// Both header copies as read.
    pub(crate) headers: Vec<FileHeader>,
    /// The replay log.
    pub(crate) log: ReplayLog,
    /// Object-table offsets read.
    pub(crate) object_tables: Vec<u64>,
    /// Non-empty objects.
    pub(crate) objects: Vec<Object>,
    /// Key table copies.
    pub(crate) key_tables: Vec<KeyTableInfo>,
    /// The key tree.
    pub(crate) tree: Tree,
    /// File-object strings decoded at open, and those deferred.
    pub(crate) strings: FileStrings,
    /// Findings.
    pub(crate) findings: Findings,
}

impl Container {
    /// The file with pending replay-log entries applied in memory.
    pub fn image(&self) -> &Arc<Image> {
        &self.image
    }

    /// The current file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Both header copies as read.
    pub fn headers(&self) -> &[FileHeader] {
        &self.headers
    }

    /// The replay log.
    pub fn log(&self) -> &ReplayLog {
        &self.log
    }

    /// Object-table offsets read.
    pub fn object_tables(&self) -> &[u64] {
        &self.object_tables
    }

    /// Non-empty objects.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// Key table copies.
    pub fn key_tables(&self) -> &[KeyTableInfo] {
        &self.key_tables
    }

    /// The key tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// File-object strings decoded at open, and those deferred.
    pub fn strings(&self) -> &FileStrings {
        &self.strings
    }

    /// Findings made while parsing.
    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    /// Parses the container in `file`.
    pub fn open(file: Arc<dyn Layer>) -> Result<Container> {
        Self::open_inner(file).in_layer(crate::plugin::CONTAINER_NAME)
    }

    fn open_inner(file: Arc<dyn Layer>) -> Result<Container> {
        let mut findings = Findings::new();
        let (header, headers) =
            read_headers(file.as_ref(), &mut findings).during("reading file headers")?;
        let (log, patches) =
            read_log(file.as_ref(), &header, &mut findings).during("reading the replay log")?;
        let image = Arc::new(Image::new(file, patches));
        let tables = read_objects(image.as_ref(), header.version >= VERSION_3_1, &mut findings)
            .during("reading object tables")?;
        let kt = read_keys(image.as_ref(), &tables.objects, &mut findings)
            .during("reading key tables")?;
        let tree = Tree::build(kt.keys, &mut findings);
        if tree.keys.is_empty() {
            findings.push(Finding::info(
                crate::rule::KEYS,
                "the container holds no keys",
            ));
        }
        Ok(Container {
            image,
            header,
            headers,
            log,
            object_tables: tables.tables,
            objects: tables.objects,
            key_tables: kt.tables,
            tree,
            strings: kt.strings,
            findings,
        })
    }

    /// The key at `/a/b/c`.
    pub fn get(&self, path: &str) -> Option<&Key> {
        self.tree.get(path).and_then(|id| self.tree.key(id))
    }

    /// The value at `/a/b/c`.
    pub fn value(&self, path: &str) -> Option<&Value> {
        self.get(path).map(|k| &k.value)
    }

    /// Reads the bytes of an Array value (inline or from its file object), up to `limit`.
    pub fn array_bytes(&self, data: &ArrayData, limit: u64) -> Result<Vec<u8>> {
        match data {
            ArrayData::Inline(v) => {
                if v.len() as u64 > limit {
                    return Err(Error::limit("array value", v.len() as u64, limit));
                }
                Ok(v.clone())
            }
            ArrayData::File(s) => {
                self.image
                    .read_vec(s.offset, u64::from(s.size), limit, "file-object array")
            }
        }
    }

    /// Decodes a String value kept in a file object (a [`Value::DeferredString`]),
    /// reading at most `limit` bytes: the text (trailing NULs trimmed) and whether the
    /// bytes were not valid UTF-16.
    pub fn read_string(&self, s: Stored, limit: u64) -> Result<(String, bool)> {
        let data = self
            .image
            .read_vec(s.offset, u64::from(s.size), limit, "file-object string")?;
        Ok(utf16(&data))
    }

    /// The lossless key tree as JSON: every key with its type, value, insertion sequence,
    /// table, offset, flags and checksum status; repeated names all kept in order.
    ///
    /// File-object arrays of at most [`MAX_META_ARRAY_BYTES`] are shown while the bytes
    /// shown stay within the file's size (at most [`MAX_META_ARRAY_BYTES_TOTAL`]), so
    /// keys all naming one file object cannot multiply it. A value not shown for a budget
    /// (such an array, or a [`Value::DeferredString`]) is `null` with `"deferred": true`;
    /// its `file_object` says where it is.
    pub fn tree_json(&self) -> Json {
        let budget = Cell::new(self.image.len().min(MAX_META_ARRAY_BYTES_TOTAL));
        let roots: Vec<Json> = self
            .tree
            .roots
            .iter()
            .map(|&id| self.key_json(id, 0, &budget))
            .collect();
        let orphans: Vec<Json> = self
            .tree
            .orphans
            .iter()
            .map(|&(id, why)| {
                let mut j = self.key_json_flat(id, &budget);
                if let (Some(m), Some(k)) = (j.as_object_mut(), self.tree.key(id)) {
                    m.insert("orphan".into(), json!(why.as_str()));
                    m.insert("parent_table".into(), json!(k.parent_table));
                    m.insert("parent_offset".into(), json!(k.parent_offset));
                }
                j
            })
            .collect();
        json!({"keys": roots, "orphans": orphans})
    }

    /// One key as JSON; `budget` is what is left of the file-object array bytes shown.
    fn key_json_flat(&self, id: u32, budget: &Cell<u64>) -> Json {
        let Some(k) = self.tree.key(id) else {
            return Json::Null;
        };
        let mut m = Map::new();
        m.insert("name".into(), json!(k.name));
        m.insert("type".into(), json!(k.value.type_name()));
        let img = &self.image;
        let deferred = Cell::new(matches!(k.value, Value::DeferredString(_)));
        let v = k.value.to_json(|s: Stored| {
            let size = u64::from(s.size);
            if size > MAX_META_ARRAY_BYTES {
                return None; // shown by reference
            }
            let Some(left) = budget.get().checked_sub(size) else {
                deferred.set(true);
                return None;
            };
            budget.set(left);
            img.read_vec(s.offset, size, MAX_META_ARRAY_BYTES, "array")
                .ok()
        });
        if !k.value.is_node() {
            m.insert("value".into(), v);
        } else {
            m.insert("node".into(), v);
        }
        if let Value::Array(a) = &k.value {
            m.insert("size".into(), json!(a.len()));
        }
        if let Value::String { lossy: true, .. } = &k.value {
            m.insert("lossy_utf16".into(), json!(true));
        }
        if deferred.get() {
            m.insert("deferred".into(), json!(true));
        }
        if let Value::Unknown { kind, .. } = &k.value {
            m.insert("kind".into(), json!(kind));
        }
        m.insert("insertion_sequence".into(), json!(k.insertion));
        m.insert("table".into(), json!(k.table));
        m.insert("offset".into(), json!(k.offset));
        if k.flags != 0 {
            m.insert("flags".into(), json!(k.flags));
        }
        if let Some(s) = k.stored {
            m.insert(
                "file_object".into(),
                json!({"offset": s.offset, "size": s.size}),
            );
        }
        if !k.checksum_ok {
            m.insert("checksum".into(), json!("mismatch"));
        }
        Json::Object(m)
    }

    fn key_json(&self, id: u32, depth: usize, budget: &Cell<u64>) -> Json {
        let mut j = self.key_json_flat(id, budget);
        let kids = self.tree.children_of(Some(id));
        if self.tree.key(id).is_some_and(|k| k.value.is_node())
            && depth < crate::limits::MAX_KEY_DEPTH
        {
            let c: Vec<Json> = kids
                .iter()
                .map(|&c| self.key_json(c, depth + 1, budget))
                .collect();
            if let Some(m) = j.as_object_mut() {
                m.insert("children".into(), Json::Array(c));
            }
        }
        j
    }

    /// Structure of the file (headers, log, objects, key tables) as JSON.
    pub fn structure_json(&self) -> Json {
        let count = |t: u8| self.objects.iter().filter(|o| o.kind == t).count();
        json!({
            "header": self.header,
            "headers": self.headers,
            "replay_log": self.log,
            "object_tables": self.object_tables,
            "objects": {
                "key_tables": count(OBJ_KEY_TABLE),
                "file_objects": count(OBJ_FILE),
                "free": count(OBJ_FREE),
                "object_tables": count(OBJ_OBJECT_TABLE),
                "total": self.objects.len(),
            },
            "key_tables": self.key_tables,
            "keys": self.tree.keys.len(),
            "orphan_keys": self.tree.orphans.len(),
            "checksum_mismatches": self.tree.keys.iter().filter(|k| !k.checksum_ok).count(),
            "file_object_strings": self.strings,
        })
    }
}

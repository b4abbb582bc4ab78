//! A parsed checkpoint: header, groups and every tag, with lookups by group, name and
//! indices, and extraction of a tag's bytes.

use std::sync::Arc;

use vmsnap_core::{Error, ErrorKind, Finding, Layer, LayerExt, Result};

use crate::compress;
use crate::header::{read_header_and_groups, GroupDesc, Header};
use crate::raw::{GROUP_DESC_SIZE, GROUP_MEMORY, HEADER_SIZE, MAX_TAGS};
use crate::tag::{parse_stream, StreamEnd, Tag, Value};

/// One group with its tags.
#[derive(Debug, Clone)]
pub struct Group {
    /// The descriptor.
    pub desc: GroupDesc,
    /// Index range of its tags in [`Checkpoint::tags`].
    pub tags: std::ops::Range<usize>,
    /// Offset of the terminator, when the stream had one.
    pub terminator: Option<u64>,
    /// Why the stream could not be parsed to its end, when it could not.
    pub error: Option<String>,
}

/// A parsed `.vmss` / `.vmsn`.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The file the checkpoint was read from.
    pub file: Arc<dyn Layer>,
    /// The header.
    pub header: Header,
    /// The groups, in table order.
    pub groups: Vec<Group>,
    /// All tags of all groups.
    pub tags: Vec<Tag>,
    /// Findings made while parsing.
    pub findings: Vec<Finding>,
}

impl Checkpoint {
    /// Parses the header, the group table and every group's tag stream. A damaged stream in
    /// the `memory` group is an error (its memory could not be mapped correctly); in any
    /// other group it is a finding and the group keeps the tags before the damage.
    pub fn parse(file: Arc<dyn Layer>) -> Result<Checkpoint> {
        let (header, descs) =
            read_header_and_groups(file.as_ref()).map_err(|e| e.in_layer("vmware"))?;
        let file_len = file.len();
        let table_end = HEADER_SIZE + GROUP_DESC_SIZE * descs.len() as u64;
        let mut groups = Vec::with_capacity(descs.len());
        let mut tags = Vec::new();
        let mut findings = Vec::new();
        for desc in descs {
            let first = tags.len();
            let mut group = Group {
                desc,
                tags: first..first,
                terminator: None,
                error: None,
            };
            let d = &group.desc;
            if d.offset < table_end || d.offset > file_len {
                let msg = format!(
                    "group {:?} starts at {:#x}, outside the file's tag area ({table_end:#x}..{file_len:#x})",
                    d.name, d.offset
                );
                if d.name == GROUP_MEMORY {
                    return Err(Error::malformed(d.desc_offset, msg).in_layer("vmware"));
                }
                findings.push(
                    Finding::warning(crate::rule::GROUP_TABLE, msg.clone()).at(d.desc_offset),
                );
                group.error = Some(msg);
                groups.push(group);
                continue;
            }
            let declared_end = if d.size == 0 {
                file_len
            } else {
                d.offset.saturating_add(d.size)
            };
            if declared_end > file_len {
                findings.push(
                    Finding::warning(
                        crate::rule::GROUP_TABLE,
                        format!(
                            "group {:?} of {:#x} bytes at {:#x} ends past the end of the file ({file_len:#x})",
                            d.name, d.size, d.offset
                        ),
                    )
                    .at(d.desc_offset),
                );
            }
            let end = declared_end.min(file_len);
            let width = header.block_size_width();
            match parse_stream(
                file.as_ref(),
                &d.name,
                d.offset,
                end,
                width,
                MAX_TAGS,
                &mut tags,
            ) {
                Ok(StreamEnd::Terminator(at)) => group.terminator = Some(at),
                Ok(StreamEnd::GroupEnd) => findings.push(
                    Finding::info(
                        crate::rule::TAG_STREAM,
                        format!(
                            "group {:?} has no terminating null tag before its end",
                            d.name
                        ),
                    )
                    .at(end),
                ),
                Err(e) => {
                    if d.name == GROUP_MEMORY || e.kind() == ErrorKind::LimitExceeded {
                        return Err(e.in_layer("vmware").during("parsing a tag stream"));
                    }
                    let msg = e.to_string();
                    findings.push(
                        Finding::warning(
                            crate::rule::TAG_STREAM,
                            format!("group {:?}: {msg}; later tags of the group ignored", d.name),
                        )
                        .at(e.context().offset.unwrap_or(d.offset)),
                    );
                    group.error = Some(msg);
                }
            }
            group.tags = first..tags.len();
            groups.push(group);
        }
        Ok(Checkpoint {
            file,
            header,
            groups,
            tags,
            findings,
        })
    }

    /// The first group named `name`.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.desc.name == name)
    }

    /// Tags of the first group named `name` (empty when absent).
    pub fn group_tags(&self, name: &str) -> &[Tag] {
        self.group(name)
            .and_then(|g| self.tags.get(g.tags.clone()))
            .unwrap_or_default()
    }

    /// The first tag `name` with indices `idx` in group `group`.
    pub fn find(&self, group: &str, name: &str, idx: &[u32]) -> Option<&Tag> {
        self.group_tags(group)
            .iter()
            .find(|t| t.name == name && t.has_indices(idx))
    }

    /// Finds a tag by a spec: `name`, `name[i][j]`, `group/name` or `group/name[i]`. Without
    /// indices the first tag of that name matches whatever its indices; without a group
    /// every group is searched in order.
    pub fn find_spec(&self, spec: &str) -> Option<&Tag> {
        let (group, rest) = match spec.split_once('/') {
            Some((g, r)) => (Some(g), r),
            None => (None, spec),
        };
        let (name, idx) = match rest.find('[') {
            Some(i) => {
                let name = rest.get(..i)?;
                let mut idx = Vec::new();
                for part in rest.get(i..)?.split('[').skip(1) {
                    idx.push(part.strip_suffix(']')?.parse::<u32>().ok()?);
                }
                (name, Some(idx))
            }
            None => (rest, None),
        };
        self.groups
            .iter()
            .filter(|g| group.is_none_or(|n| n == g.desc.name))
            .flat_map(|g| self.tags.get(g.tags.clone()).unwrap_or_default())
            .find(|t| t.name == name && idx.as_ref().is_none_or(|i| t.indices == *i))
    }

    /// The bytes of a tag's value: inline bytes, or a block's data (decompressed when the
    /// block is compressed and its algorithm is recognised), at most `limit` bytes.
    pub fn value_bytes(&self, tag: &Tag, limit: u64) -> Result<Vec<u8>> {
        match &tag.value {
            Value::Inline(b) => Ok(b.clone()),
            Value::Block(b) if !b.compressed => self
                .file
                .read_vec(b.data_offset, b.nbytes, limit, "VMware block")
                .map_err(|e| e.in_layer("vmware")),
            Value::Block(b) => {
                let raw = self
                    .file
                    .read_vec(b.data_offset, b.nbytes, limit, "compressed VMware block")
                    .map_err(|e| e.in_layer("vmware"))?;
                compress::decode(&raw, b.nbytes_in_mem, limit).map_err(|e| {
                    e.at(b.data_offset)
                        .in_layer("vmware")
                        .during("decompressing a block")
                })
            }
        }
    }

    /// The bytes of the tag named by `spec` (see [`Checkpoint::find_spec`]).
    pub fn extract(&self, spec: &str, limit: u64) -> Result<Vec<u8>> {
        let tag = self.find_spec(spec).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no tag {spec:?} in the checkpoint"),
            )
        })?;
        self.value_bytes(tag, limit)
    }

    /// A tag's value as text (trailing NULs dropped), at most `limit` bytes.
    pub fn text(&self, group: &str, name: &str, limit: u64) -> Option<Result<String>> {
        let tag = self.group_tags(group).iter().find(|t| t.name == name)?;
        Some(self.value_bytes(tag, limit).map(|b| {
            let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
            String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
        }))
    }
}

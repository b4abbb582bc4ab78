//! An ASIF image as a guest disk: chunks found through the active directory's tables.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::{
    DataExtents, Error, Finding, Layer, LayerExt, OpenCtx, Result, ResultExt, Run, RunKind, RunMap,
    RunSources,
};

use crate::chunks::{Chunk, Chunks, EntryCursor};
use crate::directory::Directory;
use crate::geometry::Geometry;
use crate::header::Header;
use crate::metadata::Metadata;
use crate::raw::HEADER_LEN;
use crate::rule;

/// The plugin name.
pub const NAME: &str = "asif";

/// An open ASIF image.
#[derive(Debug)]
pub struct Asif {
    lower: Arc<dyn Layer>,
    header: Header,
    geometry: Geometry,
    directory: Directory,
    metadata: Option<Metadata>,
    findings: Vec<Finding>,
}

impl Asif {
    /// Opens the ASIF image on `lower` (the typed API for embedders). The format names no
    /// other file.
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_layer(lower)
    }

    /// Opens without a context (nothing outside the file is read).
    pub fn open_layer(lower: Arc<dyn Layer>) -> Result<Self> {
        Self::open_inner(lower).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Self> {
        if lower.len() < HEADER_LEN as u64 {
            return Err(Error::truncated(
                0,
                format!(
                    "{} bytes are too short for the {HEADER_LEN}-byte ASIF header",
                    lower.len()
                ),
            ));
        }
        let raw: [u8; HEADER_LEN] = lower.read_array(0).during("reading the ASIF header")?;
        let header = Header::parse(&raw, lower.len())?;
        let geometry = Geometry::of(&header)?;
        let directory = Directory::load(lower.as_ref(), &header, &geometry)
            .during("reading the ASIF directory")?;
        let mut asif = Asif {
            lower,
            header,
            geometry,
            directory,
            metadata: None,
            findings: Vec::new(),
        };
        if header.metadata_chunk != 0 {
            match asif.read_metadata() {
                Ok(m) => asif.metadata = Some(m),
                Err(e) => asif.findings.push(Finding::warning(
                    rule::METADATA,
                    format!("the metadata block is unreadable: {e}"),
                )),
            }
        }
        Ok(asif)
    }

    fn read_metadata(&self) -> Result<Metadata> {
        let offset = self
            .header
            .metadata_chunk
            .checked_mul(self.geometry.chunk_size)
            .filter(|&o| o < self.header.max_size())
            .ok_or_else(|| {
                Error::malformed(
                    crate::raw::METADATA_CHUNK_AT as u64,
                    format!(
                        "metadata chunk {} lies past the maximum size",
                        self.header.metadata_chunk
                    ),
                )
            })?;
        let max = self.header.max_size();
        Metadata::read(offset, |at, buf| {
            // The reserved area lies past the virtual size: read through the runs, within
            // the maximum size.
            if at.checked_add(buf.len() as u64).is_none_or(|e| e > max) {
                return Err(Error::truncated(at, "metadata past the maximum size"));
            }
            self.read_runs(at, buf)
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The derived sizes.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The active directory.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The metadata block, when it was read.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    fn chunks(&self) -> Chunks<'_> {
        Chunks {
            geometry: &self.geometry,
            directory: &self.directory,
            file: self.lower.as_ref(),
        }
    }
}

impl RunMap for Asif {
    type Cursor = EntryCursor;

    /// Whole chunks while they are all unwritten or stored one after the other in the
    /// file; the sectors of a partly written chunk that share one bitmap state.
    fn run(&self, pos: u64, max: u64, cur: &mut EntryCursor) -> Result<Run> {
        let cs = self.geometry.chunk_size;
        let chunks = self.chunks();
        let (mut index, within) = (pos / cs, pos % cs);
        let ahead = (within.saturating_add(max)).div_ceil(cs);
        let kind = match chunks.chunk(index, ahead, cur)? {
            Chunk::Empty => RunKind::Unallocated,
            Chunk::Full(at) => RunKind::Data(at + within),
            Chunk::Partial { data, bitmap } => {
                return chunks.partial_run((data, bitmap), within, max, index, cur)
            }
        };
        let mut len = (cs - within).min(max);
        while len < max {
            index += 1;
            let next = match chunks.chunk(index, ahead, cur)? {
                Chunk::Empty => RunKind::Unallocated,
                Chunk::Full(at) => RunKind::Data(at),
                Chunk::Partial { .. } => break,
            };
            if !kind.continued_by(len, next) {
                break;
            }
            len = len.saturating_add(cs).min(max);
        }
        Ok(Run { kind, len })
    }

    fn sources(&self) -> RunSources<'_> {
        RunSources {
            file: self.lower.as_ref(),
            file_len: self.lower.len(),
            backing: None,
            backing_base: 0,
            data: DataExtents::Mapped,
        }
    }
}

impl vmsnap_core::RunLayer for Asif {
    fn name(&self) -> &str {
        NAME
    }
    fn len(&self) -> u64 {
        self.header.virtual_size()
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Value {
        let h = &self.header;
        let g = &self.geometry;
        json!({
            "format": NAME,
            "virtual_size": h.virtual_size(),
            "max_size": h.max_size(),
            "block_size": h.block_size,
            "chunk_size": h.chunk_size,
            "uuid": h.uuid(),
            "stable_uuid": self.metadata.as_ref().and_then(|m| m.stable_uuid.clone()),
            "tables": self.directory.tables.len(),
            "allocated_tables": self.directory.allocated_tables(),
            "table_span": g.table_span(),
            "active_directory": self.directory.active,
        })
    }
    fn meta(&self) -> Value {
        let h = &self.header;
        let g = &self.geometry;
        let mut v = Layer::describe(self);
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "header".into(),
                json!({
                    "version": h.version,
                    "header_size": h.header_size,
                    "flags": h.flags,
                    "directory_offsets": h.directory_offsets,
                    "sector_count": h.sector_count,
                    "max_sector_count": h.max_sector_count,
                    "total_segments": h.total_segments,
                    "metadata_chunk": h.metadata_chunk,
                    "read_only_flags": h.read_only_flags,
                    "metadata_flags": h.metadata_flags,
                    "metadata_read_only_flags": h.metadata_read_only_flags,
                }),
            );
            o.insert(
                "geometry".into(),
                json!({
                    "chunks_per_group": g.group_chunks,
                    "groups_per_table": g.groups,
                    "table_entries": g.table_entries,
                    "max_tables": g.max_tables,
                }),
            );
            o.insert(
                "directories".into(),
                json!({
                    "versions": self.directory.versions,
                    "active": self.directory.active,
                    "table_offsets": self.directory.tables,
                }),
            );
            o.insert(
                "metadata".into(),
                self.metadata
                    .as_ref()
                    .map_or(Value::Null, Metadata::to_json),
            );
        }
        v
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.clone()
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

//! The ELF core as a guest-physical layer, and its guest-virtual child.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use vmsnap_core::limits::MAX_TABLE_BYTES;
use vmsnap_core::{
    AddressSpace, Bytes, ChildRole, CpuState, Error, Extent, Finding, Findings, Layer, LayerExt,
    NamedLayer, OpenCtx, Result, ResultExt, SegmentMap,
};

use crate::cpu::{CoreNotes, Prstatus, QemuCpu};
use crate::header::{machine_name, ElfHeader, ProgramHeader};
use crate::kdump;
use crate::map::{build, By};
use crate::note::{parse_notes, Note};
use crate::raw::*;
use crate::section::read_section_zero;
use crate::vbox::VboxNotes;
use crate::xen;

/// The plugin name.
pub const NAME: &str = "elf-core";

/// How the core's `p_vaddr` fields relate to guest-virtual memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VirtualMapping {
    /// No usable virtual addresses (all zero, or inconsistent).
    None,
    /// Every segment has `p_vaddr == p_paddr` (e.g. a paging dump of a guest with
    /// paging off).
    Identity,
    /// Virtual addresses differ from physical ones (a paging dump, a kernel vmcore).
    Distinct,
}

impl VirtualMapping {
    fn as_str(self) -> &'static str {
        match self {
            VirtualMapping::None => "none",
            VirtualMapping::Identity => "identity",
            VirtualMapping::Distinct => "distinct",
        }
    }
}

/// An open ELF core: guest-physical memory by `p_paddr`.
#[derive(Debug)]
pub struct ElfCore {
    lower: Arc<dyn Layer>,
    header: ElfHeader,
    phnum: u64,
    loads: Vec<ProgramHeader>,
    note_segments: Vec<ProgramHeader>,
    notes: Vec<Note>,
    qemu_cpus: Vec<QemuCpu>,
    prstatus: Vec<Prstatus>,
    vmcoreinfo: Vec<String>,
    vbox: VboxNotes,
    map: SegmentMap,
    virt: Option<Arc<ElfVirtual>>,
    virtual_mapping: VirtualMapping,
    findings: Findings,
}

/// How many bytes of the head `open` reads (enough for the kdump flattened header).
const OPEN_HEAD: u64 = 8192;

impl ElfCore {
    /// Opens the core on `lower` (the typed API for embedders).
    pub fn open(lower: Arc<dyn Layer>, _ctx: &OpenCtx<'_>) -> Result<Self> {
        Self::open_layer(lower)
    }

    /// Opens the core on `lower` without a context (nothing outside the file is read).
    pub fn open_layer(lower: Arc<dyn Layer>) -> Result<Self> {
        Self::open_inner(lower).in_layer(NAME)
    }

    fn open_inner(lower: Arc<dyn Layer>) -> Result<Self> {
        let file_size = lower.len();
        let head = lower.read_vec(0, file_size.min(OPEN_HEAD), OPEN_HEAD, "ELF header")?;
        kdump::refuse(&head)?;
        xen::refuse(&head)?;
        let header = ElfHeader::parse(&head).during("reading the ELF header")?;
        if header.e_type != ET_CORE {
            return Err(Error::unsupported(format!(
                "ELF file of type {} is not a core file (ET_CORE = 4)",
                header.e_type
            ))
            .at(16));
        }
        let e = header.endian;
        let mut findings = Findings::new();

        // Program header count, possibly in section header 0 (PN_XNUM).
        let phnum = if header.phnum_raw == PN_XNUM {
            let zero = read_section_zero(lower.as_ref(), &header)
                .during("reading the program header count (PN_XNUM)")?;
            u64::from(zero.info)
        } else {
            u64::from(header.phnum_raw)
        };
        if phnum > MAX_PROGRAM_HEADERS {
            return Err(
                Error::limit("number of program headers", phnum, MAX_PROGRAM_HEADERS).at(0),
            );
        }
        if phnum > 0 && header.phentsize < header.phdr_size() {
            return Err(Error::malformed(
                0,
                format!(
                    "e_phentsize {} is below the {} bytes of a program header",
                    header.phentsize,
                    header.phdr_size()
                ),
            ));
        }
        let entsize = u64::from(header.phentsize);
        let table_len = phnum
            .checked_mul(entsize)
            .ok_or_else(|| Error::malformed(0, "program header table size overflows"))?;
        let table = lower
            .read_vec(
                header.phoff,
                table_len,
                MAX_TABLE_BYTES,
                "program header table",
            )
            .during("reading program headers")?;
        let tb = Bytes::new(&table, header.phoff);
        let mut loads = Vec::new();
        let mut note_segments = Vec::new();
        for i in 0..phnum {
            // i < phnum <= MAX_PROGRAM_HEADERS, table_len fits in memory.
            let at = (i * entsize) as usize;
            let ph = ProgramHeader::parse(&header, &tb.sub(at, entsize as usize)?, i as u32)?;
            match ph.p_type {
                PT_LOAD => loads.push(ph),
                PT_NOTE => note_segments.push(ph),
                _ => {}
            }
        }

        // Notes.
        let mut notes = Vec::new();
        let mut note_bytes = 0u64;
        for ph in &note_segments {
            note_bytes = note_bytes.saturating_add(ph.filesz);
            if note_bytes > MAX_NOTE_BYTES {
                return Err(
                    Error::limit("bytes of ELF notes", note_bytes, MAX_NOTE_BYTES).at(ph.at),
                );
            }
            let data = lower
                .read_vec(ph.offset, ph.filesz, MAX_NOTE_BYTES, "PT_NOTE segment")
                .during("reading notes")?;
            parse_notes(&data, ph.offset, e, &mut notes).during("parsing notes")?;
        }
        let CoreNotes {
            qemu_cpus,
            prstatus,
            vmcoreinfo,
            findings: note_findings,
        } = CoreNotes::interpret(&notes, e, header.machine);
        for f in note_findings {
            findings.push(f);
        }
        let vbox = VboxNotes::interpret(&notes, e);
        for f in &vbox.findings {
            findings.push(f.clone());
        }

        // Guest-physical map (errors are fatal) and guest-virtual map (optional).
        let phys = build(
            &loads,
            file_size,
            By::Physical {
                limit: MAX_PHYS_END,
            },
        )
        .during("mapping PT_LOAD segments")?;
        for f in phys.findings {
            findings.push(f);
        }
        let used: Vec<&ProgramHeader> = loads.iter().filter(|p| p.memsz > 0).collect();
        let all_zero = used.len() > 1 && used.iter().all(|p| p.vaddr == 0);
        let identity = used.iter().all(|p| p.vaddr == p.paddr);
        let mut virtual_mapping = VirtualMapping::None;
        let mut virt = None;
        if !used.is_empty() && !all_zero {
            match build(&loads, file_size, By::Virtual) {
                Ok(v) => {
                    virtual_mapping = if identity {
                        VirtualMapping::Identity
                    } else {
                        VirtualMapping::Distinct
                    };
                    virt = Some(Arc::new(ElfVirtual {
                        lower: lower.clone(),
                        map: v.map,
                        identity,
                    }));
                }
                Err(err) => findings.push(Finding::warning(
                    crate::rule::VIRTUAL_MAPPING,
                    format!("p_vaddr fields do not form an address space, no virtual layer: {err}"),
                )),
            }
        }
        Ok(ElfCore {
            lower,
            header,
            phnum,
            loads,
            note_segments,
            notes,
            qemu_cpus,
            prstatus,
            vmcoreinfo,
            vbox,
            map: phys.map,
            virt,
            virtual_mapping,
            findings,
        })
    }

    /// The parsed ELF header.
    pub fn header(&self) -> &ElfHeader {
        &self.header
    }

    /// The PT_LOAD program headers, in file order.
    pub fn loads(&self) -> &[ProgramHeader] {
        &self.loads
    }

    /// Every note, in file order.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// QEMU's per-vCPU `QEMUCPUState` notes.
    pub fn qemu_cpus(&self) -> &[QemuCpu] {
        &self.qemu_cpus
    }

    /// The `CORE`/`NT_PRSTATUS` notes.
    pub fn prstatus(&self) -> &[Prstatus] {
        &self.prstatus
    }

    /// `VMCOREINFO` as `key=value` lines.
    pub fn vmcoreinfo(&self) -> &[String] {
        &self.vmcoreinfo
    }

    /// VirtualBox's `VBCORE` descriptor and `VBCPU` vCPUs (`dumpvmcore`), when present.
    pub fn vbox(&self) -> &VboxNotes {
        &self.vbox
    }

    /// The guest-physical segment map.
    pub fn segment_map(&self) -> &SegmentMap {
        &self.map
    }

    /// The guest-virtual layer, when the core records virtual addresses.
    pub fn virtual_layer(&self) -> Option<Arc<ElfVirtual>> {
        self.virt.clone()
    }

    /// How `p_vaddr` relates to guest-virtual memory.
    pub fn virtual_mapping(&self) -> VirtualMapping {
        self.virtual_mapping
    }

    fn segments_json(&self) -> Value {
        let list: Vec<Value> = self
            .loads
            .iter()
            .take(MAX_LISTED_SEGMENTS)
            .map(|p| {
                json!({
                    "index": p.index,
                    "paddr": p.paddr,
                    "vaddr": p.vaddr,
                    "offset": p.offset,
                    "filesz": p.filesz,
                    "memsz": p.memsz,
                    "flags": p.flags,
                })
            })
            .collect();
        Value::Array(list)
    }

    fn notes_json(&self) -> Value {
        let list: Vec<Value> = self
            .notes
            .iter()
            .take(MAX_LISTED_NOTES)
            .map(|n| {
                json!({
                    "name": n.name,
                    "type": n.n_type,
                    "desc_offset": n.desc_offset,
                    "desc_size": n.desc.len(),
                })
            })
            .collect();
        Value::Array(list)
    }
}

impl Layer for ElfCore {
    vmsnap_core::segment_map_layer!(NAME);
    fn describe(&self) -> Value {
        let m = self.header.machine;
        let mut d = json!({
            "format": NAME,
            "virtual_size": self.map.size(),
            "class": self.header.class.as_str(),
            "endian": if self.header.endian.big { "big" } else { "little" },
            "machine": machine_name(m),
            "e_machine": m,
            "e_version": self.header.version,
            "program_headers": self.phnum,
            "pt_load_count": self.loads.len(),
            "pt_note_count": self.note_segments.len(),
            "segments": self.segments_json(),
            "segments_listed": self.loads.len().min(MAX_LISTED_SEGMENTS),
            "mapped_segments": self.map.segments().len(),
            "notes": self.notes_json(),
            "notes_listed": self.notes.len().min(MAX_LISTED_NOTES),
            "qemu_cpus": self.qemu_cpus.iter().map(|c| c.to_json(m)).collect::<Vec<_>>(),
            "prstatus": self.prstatus.iter().map(|p| json!({
                "pid": p.pid, "layout": p.layout,
                "registers": p.regs.iter().map(|(k, v)| (k.clone(), json!(vmsnap_core::hex::hex(*v))))
                    .collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "vmcoreinfo": self.vmcoreinfo,
            "virtual_mapping": self.virtual_mapping.as_str(),
            "virtual_layer": self.virt.as_ref().map(|v| json!({
                "name": "virtual",
                "size": v.map.size(),
                "segments": v.map.segments().len(),
            })),
        });
        // VirtualBox cores only: other cores' descriptions stay as they were.
        if let (Some(v), Some(o)) = (&self.vbox.descriptor, d.as_object_mut()) {
            o.insert("vbox".into(), v.to_json());
            o.insert(
                "vbox_cpus".into(),
                self.vbox.cpus.iter().map(|c| c.to_json()).collect(),
            );
        }
        d
    }
    fn findings(&self) -> Vec<Finding> {
        self.findings.to_vec()
    }
    fn children(&self) -> Vec<NamedLayer> {
        match &self.virt {
            Some(v) => vec![NamedLayer {
                name: "virtual".to_string(),
                role: ChildRole::AddressSpace,
                stackable: false,
                layer: v.clone(),
            }],
            None => Vec::new(),
        }
    }
    fn cpu_state(&self) -> Vec<CpuState> {
        let m = self.header.machine;
        if self.qemu_cpus.is_empty() {
            return self.vbox.cpus.iter().map(|c| c.to_cpu_state(m)).collect();
        }
        self.qemu_cpus.iter().map(|c| c.to_cpu_state(m)).collect()
    }
}

/// Guest-virtual memory of an ELF core, by `p_vaddr`.
#[derive(Debug)]
pub struct ElfVirtual {
    lower: Arc<dyn Layer>,
    map: SegmentMap,
    identity: bool,
}

impl ElfVirtual {
    /// The guest-virtual segment map.
    pub fn segment_map(&self) -> &SegmentMap {
        &self.map
    }
}

impl Layer for ElfVirtual {
    fn name(&self) -> &str {
        NAME
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestVirtual
    }
    fn len(&self) -> u64 {
        self.map.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.map
            .read(self.lower.as_ref(), offset, buf)
            .map_err(|e| e.in_layer("elf-core:virtual"))
    }
    fn extents(&self, range: Range<u64>) -> Result<Vec<Extent>> {
        Ok(self.map.extents(range))
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.lower.clone()]
    }
    fn describe(&self) -> Value {
        json!({
            "format": NAME,
            "virtual_size": self.map.size(),
            "address_space": "guest_virtual",
            "mapped_by": "p_vaddr",
            "identity": self.identity,
            "segments": self.map.segments().len(),
        })
    }
    fn path(&self) -> Option<&Path> {
        self.lower.path()
    }
}

//! The storage-file writer: a key tree ([`K`], [`V`]) laid out as key tables, file
//! objects, object tables, an optional replay log and both headers ([`build`]), with
//! knobs ([`Opts`], [`LogOpts`]) that write the damaged or unusual forms a reader must
//! handle.

/// File header signature (`0x01282014`).
pub const FILE_SIG: u32 = 0x0128_2014;
/// Replay-log header signature.
pub const LOG_SIG: u32 = 0x0111_0003;
/// Object-table signature.
pub const OT_SIG: u32 = 0x0111_0001;

/// A value to write.
#[derive(Clone, Debug, PartialEq)]
pub enum V {
    /// Type 3, signed 64-bit.
    Int(i64),
    /// Type 4, unsigned 64-bit.
    UInt(u64),
    /// Type 5, IEEE double.
    Double(f64),
    /// Type 6, UTF-16LE string (in a file object from 2048 bytes on).
    Str(String),
    /// Type 7, byte array (in a file object from 2048 bytes on).
    Arr(Vec<u8>),
    /// Type 8, boolean (a u32).
    Bool(bool),
    /// Type 9, a node (its value is the next child insertion sequence).
    Node,
    /// Raw type byte and value bytes (unknown types).
    Raw(u8, Vec<u8>),
}

/// A key to write, with its children.
#[derive(Clone, Debug)]
pub struct K {
    /// Its name (ASCII; the file stores it NUL-terminated).
    pub name: String,
    /// Its value.
    pub v: V,
    /// The key table it goes in (1-based).
    pub table: u16,
    /// Insertion sequence; 0 means its 1-based position among its siblings.
    pub ins: u32,
    /// Bytes of `0xCC` written after the value, counted in the entry size but not in
    /// its checksum.
    pub slack: usize,
    /// Write a wrong entry checksum.
    pub bad_crc: bool,
    /// Its children (for [`V::Node`]).
    pub kids: Vec<K>,
    /// Force the value into a file object even when small.
    pub force_file: bool,
}

impl K {
    /// A leaf key in table 1.
    pub fn leaf(name: &str, v: V) -> K {
        K {
            name: name.into(),
            v,
            table: 1,
            ins: 0,
            slack: 0,
            bad_crc: false,
            kids: vec![],
            force_file: false,
        }
    }
    /// A node key in table 1 with `kids`.
    pub fn node(name: &str, kids: Vec<K>) -> K {
        K {
            name: name.into(),
            v: V::Node,
            table: 1,
            ins: 0,
            slack: 0,
            bad_crc: false,
            kids,
            force_file: false,
        }
    }
    /// Puts the key in key table `table`.
    pub fn t(mut self, table: u16) -> K {
        self.table = table;
        self
    }
    /// Sets its insertion sequence.
    pub fn ins(mut self, ins: u32) -> K {
        self.ins = ins;
        self
    }
    /// Adds `n` bytes of slack after its value.
    pub fn slack(mut self, n: usize) -> K {
        self.slack = n;
        self
    }
    /// Damages its entry checksum.
    pub fn bad_crc(mut self) -> K {
        self.bad_crc = true;
        self
    }
    /// Stores its value in a file object even when small.
    pub fn in_file(mut self) -> K {
        self.force_file = true;
        self
    }
}

/// Replay-log options: the final bytes of each `pending` range move into the log and the
/// file gets `0xA5` there instead.
#[derive(Clone, Debug, Default)]
pub struct LogOpts {
    /// `(file offset, length)` ranges whose final bytes live only in the log.
    pub pending: Vec<(u64, u64)>,
    /// Extra stale entries past the pending count.
    pub stale: usize,
    /// Damage the checksum of this entry.
    pub corrupt_entry: Option<usize>,
    /// Damage the data checksum of this entry.
    pub corrupt_data: Option<usize>,
    /// Make entry 0 point its data outside the log.
    pub outside: bool,
    /// Write this destination in entry 0 (its data and checksums stay those of the
    /// real pending range).
    pub dest: Option<u64>,
    /// Damage the log header checksum.
    pub corrupt_header: bool,
}

/// How [`build`] lays out the file.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Format version in both headers (0x400 by default).
    pub version: u16,
    /// Object alignment (0x1000 by default).
    pub alignment: u32,
    /// Sequence numbers of header copies 0 and 1 (the higher valid one is active).
    pub seqs: [u16; 2],
    /// Damage the checksum of this header copy.
    pub corrupt_header: Option<usize>,
    /// Sequence number of every key table.
    pub table_seq: u16,
    /// Write an older copy of every table (sequence `table_seq - 1`, wrapping) with
    /// different key names, which the reader must ignore.
    pub stale_copies: bool,
    /// Put a Free entry before every key and fill each table's tail with one.
    pub free_entries: bool,
    /// A replay log to write (with its pending ranges).
    pub log: Option<LogOpts>,
    /// Objects per object table before chaining to the next (227 slots, last reserved).
    pub per_table: usize,
    /// Bad object-table entry checksum on the first key table entry.
    pub corrupt_object_entry: bool,
    /// Bad key-table header checksum on table 1.
    pub corrupt_table_header: bool,
    /// The flags byte of FILE_OBJECT entries in the object table. Real files set 0x01 on
    /// every object entry observed (key tables and free space, reference §2.3; Beyer's
    /// parser, run on real .vmrs files with RAM in file objects, calls the byte `one`),
    /// and dissect skips entries where it is 0. openvmm's writer leaves it 0.
    pub file_object_flags: u8,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            version: 0x400,
            alignment: 0x1000,
            seqs: [24, 25],
            corrupt_header: None,
            table_seq: 7,
            stale_copies: false,
            free_entries: false,
            log: None,
            per_table: 226,
            corrupt_object_entry: false,
            corrupt_table_header: false,
            file_object_flags: 1,
        }
    }
}

/// Where a key was written.
#[derive(Clone, Debug)]
pub struct Placed {
    /// Its path from the root (`/a/b`).
    pub path: String,
    /// Its key table.
    pub table: u16,
    /// Offset of its entry inside the table.
    pub offset: u32,
    /// File offset of its entry.
    pub file_offset: u64,
    /// `(file offset, value length)` of its file object, if any.
    pub file_object: Option<(u64, u32)>,
}

/// A written storage file.
#[derive(Clone, Debug)]
pub struct Built {
    /// The file.
    pub bytes: Vec<u8>,
    /// Where each key went, in tree order.
    pub placed: Vec<Placed>,
    /// `(table, file offset, size)` of each active key table.
    pub table_offsets: Vec<(u16, u64, u32)>,
    /// File offset of the replay log (0 without one).
    pub log_offset: u64,
}

/// CRC-32 (ISO-3309 / zlib, reflected polynomial 0xEDB88320), bit by bit: the
/// builder's own, so it shares nothing with the reader.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn crc_zeroed(data: &[u8], at: usize) -> u32 {
    let mut v = data.to_vec();
    v[at..at + 4].fill(0);
    crc32(&v)
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn round(n: u64, a: u64) -> u64 {
    n.div_ceil(a) * a
}

struct Entry {
    table: u16,
    bytes: Vec<u8>,
    placed: Placed,
    /// Pending file-object data (patched in once the offset is known).
    file_data: Option<Vec<u8>>,
}

fn type_and_value(v: &V, kids: &[K]) -> (u8, Vec<u8>) {
    match v {
        V::Int(x) => (3, x.to_le_bytes().to_vec()),
        V::UInt(x) => (4, x.to_le_bytes().to_vec()),
        V::Double(x) => (5, x.to_le_bytes().to_vec()),
        V::Str(s) => (6, utf16(s)),
        V::Arr(a) => (7, a.clone()),
        V::Bool(b) => (8, u32::from(*b).to_le_bytes().to_vec()),
        V::Node => {
            let next = kids.iter().map(|k| k.ins).max().unwrap_or(0) + 1;
            let mut v = 0u64.to_le_bytes().to_vec();
            v.extend_from_slice(&next.to_le_bytes());
            (9, v)
        }
        V::Raw(t, b) => (*t, b.clone()),
    }
}

/// Writes `roots` (children of the virtual root) as a storage file.
pub fn build(roots: &[K], o: &Opts) -> Built {
    // Assign insertion sequences (1-based by position) where not given.
    fn number(ks: &mut [K]) {
        for (i, k) in ks.iter_mut().enumerate() {
            if k.ins == 0 {
                k.ins = i as u32 + 1;
            }
            number(&mut k.kids);
        }
    }
    let mut roots = roots.to_vec();
    number(&mut roots);
    // Per-table cursor (offset inside the table).
    let mut cursor: std::collections::BTreeMap<u16, u32> = Default::default();
    let mut entries: Vec<Entry> = Vec::new();
    fn walk(
        k: &K,
        parent: (u16, u32),
        path: &str,
        o: &Opts,
        cursor: &mut std::collections::BTreeMap<u16, u32>,
        entries: &mut Vec<Entry>,
    ) {
        let cur = cursor.entry(k.table).or_insert(10);
        if o.free_entries {
            let free_len = 25u32;
            let mut f = vec![0u8; free_len as usize];
            f[0] = 1;
            f[2..6].copy_from_slice(&free_len.to_le_bytes());
            entries.push(Entry {
                table: k.table,
                bytes: f,
                placed: Placed {
                    path: String::new(),
                    table: k.table,
                    offset: *cur,
                    file_offset: 0,
                    file_object: None,
                },
                file_data: None,
            });
            *cur += free_len;
        }
        let offset = *cur;
        let (ty, value) = type_and_value(&k.v, &k.kids);
        let big = matches!(k.v, V::Str(_) | V::Arr(_)) && (value.len() >= 2048 || k.force_file);
        let (flags, area, file_data) = if big {
            // {u32 size; u64 offset}; offset patched later.
            let mut a = (value.len() as u32).to_le_bytes().to_vec();
            a.extend_from_slice(&[0u8; 8]);
            (1u8, a, Some(value))
        } else if matches!(k.v, V::Str(_) | V::Arr(_)) {
            let mut a = (value.len() as u32).to_le_bytes().to_vec();
            a.extend_from_slice(&value);
            (0u8, a, None)
        } else {
            (0u8, value, None)
        };
        let name = k.name.as_bytes();
        let mut e = vec![0u8; 21];
        e[0] = ty;
        e[1] = flags;
        e[6..8].copy_from_slice(&parent.0.to_le_bytes());
        e[8..12].copy_from_slice(&parent.1.to_le_bytes());
        e[16..20].copy_from_slice(&k.ins.to_le_bytes());
        e[20] = (name.len() + 1) as u8;
        e.extend_from_slice(name);
        e.push(0);
        e.extend_from_slice(&area);
        e.extend(std::iter::repeat_n(0xCCu8, k.slack));
        let size = e.len() as u32;
        e[2..6].copy_from_slice(&size.to_le_bytes());
        *cur += size;
        let my_path = format!("{path}/{}", k.name);
        entries.push(Entry {
            table: k.table,
            bytes: e,
            placed: Placed {
                path: my_path.clone(),
                table: k.table,
                offset,
                file_offset: 0,
                file_object: None,
            },
            file_data,
        });
        for kid in &k.kids {
            walk(kid, (k.table, offset), &my_path, o, cursor, entries);
        }
    }
    for r in &roots {
        walk(r, (0, 0), "", o, &mut cursor, &mut entries);
    }
    let align = u64::from(o.alignment);
    // Table sizes.
    let tables: Vec<(u16, u32)> = cursor
        .iter()
        .map(|(&t, &c)| (t, round(u64::from(c) + 21, 0x1000) as u32))
        .collect();
    let mut pos = 0x3000u64;
    let mut table_offsets = Vec::new();
    for &(t, size) in &tables {
        table_offsets.push((t, pos, size));
        pos += round(u64::from(size), align);
    }
    let mut stale_offsets = Vec::new();
    if o.stale_copies {
        for &(t, size) in &tables {
            stale_offsets.push((t, pos, size));
            pos += round(u64::from(size), align);
        }
    }
    // File objects.
    let mut file_objects: Vec<(u64, u32)> = Vec::new();
    for e in entries.iter_mut() {
        if let Some(d) = &e.file_data {
            let at = pos;
            file_objects.push((at, round(d.len() as u64, align) as u32));
            e.placed.file_object = Some((at, d.len() as u32));
            let vo = 21 + e.bytes[20] as usize + 4;
            e.bytes[vo..vo + 8].copy_from_slice(&at.to_le_bytes());
            pos += round(d.len().max(1) as u64, align);
        }
    }
    let data_end = pos;
    let mut f = vec![0u8; data_end as usize];
    // Entries: checksums then placement.
    for e in entries.iter_mut() {
        let (_, base, _) = *table_offsets.iter().find(|x| x.0 == e.table).unwrap();
        if e.bytes[0] != 1 {
            // Meaningful = everything but slack: recompute from the type.
            let ty = e.bytes[0];
            let name_end = 21 + e.bytes[20] as usize;
            let vlen = match (ty, e.bytes[1] & 1) {
                (6 | 7, 1) => 12,
                (6 | 7, _) => {
                    4 + u32::from_le_bytes(e.bytes[name_end..name_end + 4].try_into().unwrap())
                        as usize
                }
                (3..=5, _) => 8,
                (8, _) => 4,
                (9, _) => 12,
                _ => e.bytes.len() - name_end,
            };
            let crc = crc_zeroed(&e.bytes[..name_end + vlen], 12);
            e.bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        }
        e.placed.file_offset = base + u64::from(e.placed.offset);
        let at = e.placed.file_offset as usize;
        f[at..at + e.bytes.len()].copy_from_slice(&e.bytes);
        if let (Some(d), Some((fo, _))) = (&e.file_data, e.placed.file_object) {
            f[fo as usize..fo as usize + d.len()].copy_from_slice(d);
        }
    }
    // bad_crc keys: flip the stored checksum.
    {
        let mut flat = Vec::new();
        fn collect<'a>(k: &'a K, out: &mut Vec<&'a K>) {
            out.push(k);
            for c in &k.kids {
                collect(c, out);
            }
        }
        for r in &roots {
            collect(r, &mut flat);
        }
        let real: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.bytes[0] != 1 || !e.placed.path.is_empty())
            .filter(|e| !e.placed.path.is_empty())
            .collect();
        for (k, e) in flat.iter().zip(real) {
            if k.bad_crc {
                let at = e.placed.file_offset as usize + 12;
                f[at] ^= 0xFF;
            }
        }
    }
    // Table headers and tail Free entries.
    let write_table_header = |f: &mut Vec<u8>, t: u16, base: u64, seq: u16, corrupt: bool| {
        let b = base as usize;
        f[b..b + 2].copy_from_slice(&2u16.to_le_bytes());
        f[b + 2..b + 4].copy_from_slice(&t.to_le_bytes());
        f[b + 4..b + 6].copy_from_slice(&seq.to_le_bytes());
        f[b + 6..b + 10].fill(0);
        let mut crc = crc32(&f[b..b + 10]);
        if corrupt {
            crc ^= 1;
        }
        f[b + 6..b + 10].copy_from_slice(&crc.to_le_bytes());
    };
    for &(t, base, size) in &table_offsets {
        write_table_header(
            &mut f,
            t,
            base,
            o.table_seq,
            o.corrupt_table_header && t == 1,
        );
        if o.free_entries {
            let used = u64::from(cursor[&t]);
            let rest = u64::from(size) - used;
            if rest >= 21 {
                let at = (base + used) as usize;
                f[at] = 1;
                f[at + 2..at + 6].copy_from_slice(&(rest as u32).to_le_bytes());
            }
        }
    }
    for &(t, base, _) in &stale_offsets {
        // An older copy: one root key with a different name.
        write_table_header(&mut f, t, base, o.table_seq.wrapping_sub(1), false);
        let name = b"stale";
        let mut e = vec![0u8; 21];
        e[0] = 3;
        e[16..20].copy_from_slice(&1u32.to_le_bytes());
        e[20] = 6;
        e.extend_from_slice(name);
        e.push(0);
        e.extend_from_slice(&42i64.to_le_bytes());
        let size = e.len() as u32;
        e[2..6].copy_from_slice(&size.to_le_bytes());
        let crc = crc_zeroed(&e, 12);
        e[12..16].copy_from_slice(&crc.to_le_bytes());
        let at = base as usize + 10;
        f[at..at + e.len()].copy_from_slice(&e);
    }
    // Object tables: entries (type, offset, size, flags).
    let mut objs: Vec<(u8, u64, u32, u8)> = Vec::new();
    for &(_, base, size) in table_offsets.iter().chain(stale_offsets.iter()) {
        objs.push((2, base, size, 1));
    }
    for &(at, size) in &file_objects {
        objs.push((3, at, size, o.file_object_flags));
    }
    let mut ot_pos = 0x2000u64;
    let chunks: Vec<Vec<(u8, u64, u32, u8)>> =
        objs.chunks(o.per_table.max(1)).map(<[_]>::to_vec).collect();
    let n_tables = chunks.len().max(1);
    let mut next_tables = Vec::new();
    for _ in 1..n_tables {
        next_tables.push(f.len() as u64);
        f.resize(f.len() + 0x1000, 0);
    }
    for (i, chunk) in chunks.iter().enumerate() {
        let b = ot_pos as usize;
        f[b..b + 4].copy_from_slice(&OT_SIG.to_le_bytes());
        f[b + 4..b + 8].copy_from_slice(&227u32.to_le_bytes());
        for slot in 0..227usize {
            let mut e = [0u8; 18];
            let item = if slot < chunk.len() {
                Some(chunk[slot])
            } else if slot == 226 && i + 1 < n_tables {
                Some((1u8, next_tables[i], 0x1000u32, 1u8))
            } else {
                None
            };
            if let Some((t, off, size, flags)) = item {
                e[0] = t;
                e[5..13].copy_from_slice(&off.to_le_bytes());
                e[13..17].copy_from_slice(&size.to_le_bytes());
                e[17] = flags;
            }
            let mut crc = crc_zeroed(&e, 1);
            if o.corrupt_object_entry && i == 0 && slot == 0 {
                crc ^= 1;
            }
            e[1..5].copy_from_slice(&crc.to_le_bytes());
            let at = b + 8 + slot * 18;
            f[at..at + 18].copy_from_slice(&e);
        }
        if i + 1 < n_tables {
            ot_pos = next_tables[i];
        }
    }
    // Replay log.
    let mut log_offset = 0u64;
    let mut log_size = 0u64;
    if let Some(l) = &o.log {
        log_offset = f.len() as u64;
        let mut data_at = 0x1000u64;
        let mut log = vec![0u8; 0x1000];
        let mut datas = Vec::new();
        for (i, &(dest, len)) in l
            .pending
            .iter()
            .chain(std::iter::repeat_n(&(0x3000u64, 16u64), l.stale))
            .enumerate()
        {
            let d = f[dest as usize..(dest + len) as usize].to_vec();
            let mut e = [0u8; 28];
            let written = l.dest.filter(|_| i == 0).unwrap_or(dest);
            e[0..8].copy_from_slice(&written.to_le_bytes());
            e[8..12].copy_from_slice(&(len as u32).to_le_bytes());
            let inlog = if l.outside && i == 0 {
                0x10_0000_0000u64
            } else {
                data_at
            };
            e[12..20].copy_from_slice(&inlog.to_le_bytes());
            let mut dcrc = crc32(&d);
            if l.corrupt_data == Some(i) {
                dcrc ^= 1;
            }
            e[24..28].copy_from_slice(&dcrc.to_le_bytes());
            let mut ecrc = crc_zeroed(&e, 20);
            if l.corrupt_entry == Some(i) {
                ecrc ^= 1;
            }
            e[20..24].copy_from_slice(&ecrc.to_le_bytes());
            log[0x22 + i * 28..0x22 + (i + 1) * 28].copy_from_slice(&e);
            datas.push((data_at, d));
            data_at += round(len, 0x1000);
        }
        log.resize(data_at as usize, 0);
        for (at, d) in datas {
            log[at as usize..at as usize + d.len()].copy_from_slice(&d);
        }
        log[0..4].copy_from_slice(&LOG_SIG.to_le_bytes());
        log[8..12].copy_from_slice(&(l.pending.len() as u32).to_le_bytes());
        log[0x0D..0x11].copy_from_slice(&(((0x1000 - 34) / 28) as u32).to_le_bytes());
        let mut crc = crc_zeroed(&log[..34], 4);
        if l.corrupt_header {
            crc ^= 1;
        }
        log[4..8].copy_from_slice(&crc.to_le_bytes());
        log_size = log.len() as u64;
        // Scramble the destinations: only the log has their final bytes now.
        for &(dest, len) in &l.pending {
            f[dest as usize..(dest + len) as usize].fill(0xA5);
        }
        f.extend_from_slice(&log);
    }
    // Headers.
    for (copy, base) in [(0usize, 0usize), (1, 0x1000)] {
        let mut h = [0u8; 0x2E];
        h[0..4].copy_from_slice(&FILE_SIG.to_le_bytes());
        h[8..10].copy_from_slice(&o.seqs[copy].to_le_bytes());
        h[0x0A..0x0C].copy_from_slice(&o.version.to_le_bytes());
        h[0x16..0x1A].copy_from_slice(&o.alignment.to_le_bytes());
        h[0x1A..0x22].copy_from_slice(&log_offset.to_le_bytes());
        h[0x22..0x2A].copy_from_slice(&log_size.to_le_bytes());
        h[0x2A..0x2E].copy_from_slice(&(if log_size > 0 { 0x1000u32 } else { 0 }).to_le_bytes());
        let mut crc = crc_zeroed(&h, 4);
        if o.corrupt_header == Some(copy) {
            crc ^= 0x100;
        }
        h[4..8].copy_from_slice(&crc.to_le_bytes());
        f[base..base + 0x2E].copy_from_slice(&h);
    }
    let placed = entries
        .into_iter()
        .filter(|e| !e.placed.path.is_empty())
        .map(|e| e.placed)
        .collect();
    Built {
        bytes: f,
        placed,
        table_offsets,
        log_offset,
    }
}

//! QEMU migration streams and mapped-ram files, structure-aware: a QEVM v3 stream written
//! from the description — configuration (machine type, target page bits, capabilities
//! `mapped-ram` and `x-ignore-shared`, uuid), the RAM section's block list (with each
//! block's mapped-ram header, dirty bitmap and page area at the offsets the header names),
//! iterative RAM parts of PAGE / ZERO / CONTINUE / MULTIFD_FLUSH / EOS records, device
//! sections whose payload a vmdesc trailer describes field by field (vCPU registers,
//! segment structs, the host bridge's PCI config with its PAM bytes, subsections) or that
//! only a footer scan can skip, commands, section footers, EOF and the JSON trailer — then
//! patched inside the header and configuration, the RAM section, a device section or the
//! trailer. Both plugins open it (the stream one and the mapped-ram one).

use arbitrary::Arbitrary;
use serde_json::{json, Value};

use super::{apply, description, Patch};

const MACHINES: &[&str] = &[
    "pc-i440fx-9.0",
    "pc-q35-9.0",
    "pc",
    "microvm",
    "virt",
    "q35",
];
const BLOCKS: &[&str] = &[
    "pc.ram",
    "pc.bios",
    "/rom@etc/acpi/tables",
    "vga.vram",
    "mem",
];
const DEVICES: &[&str] = &[
    "cpu",
    "0000:00:00.0/I440FX",
    "0000:00:00.0/mch",
    "timer",
    "block",
    "kvmclock",
];
/// (vmdesc name, size, array length); `env.segs` and `env.gdt` are structs.
const FIELDS: &[(&str, u64, Option<u64>)] = &[
    ("env.regs", 8, Some(16)),
    ("env.eip", 8, None),
    ("env.eflags", 8, None),
    ("env.cr", 8, Some(5)),
    ("env.efer", 8, None),
    ("env.xcr0", 8, None),
    ("config", 1, Some(256)),
    ("irq_state", 4, Some(4)),
    ("env.hflags", 4, None),
    ("odd", 3, Some(2)),
];

#[derive(Arbitrary, Debug)]
struct Block {
    name: u8,
    other: Option<String>,
    pages: u8,
    addr: u64,
}

#[derive(Arbitrary, Debug)]
enum Record {
    Page {
        block: u8,
        page: u16,
        fill: u8,
        cont: bool,
    },
    Zero {
        block: u8,
        page: u16,
        fill: u8,
        cont: bool,
    },
    Flush,
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
struct Device {
    name: u8,
    instance: u8,
    fields: Vec<u8>,
    segs: Option<u8>,
    sub: Option<(String, Vec<u8>)>,
    described: bool,
    fill: u8,
    extra: u8,
}

#[derive(Arbitrary, Debug)]
struct Desc {
    machine: u8,
    page_bits: Option<u8>,
    mapped: bool,
    ignore_shared: bool,
    uuid: bool,
    blocks: Vec<Block>,
    dirty: Vec<u8>,
    pages_gap: u8,
    parts: Vec<Vec<Record>>,
    devices: Vec<Device>,
    commands: Vec<(u8, Vec<u8>)>,
    no_footers: bool,
    vmdesc: bool,
    vmdesc_page_size: Option<u16>,
    trailing: Vec<u8>,
    patches: Vec<Patch>,
}

/// A big-endian stream being written.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn be16(&mut self, v: u16) {
        self.0.extend(v.to_be_bytes());
    }
    fn be32(&mut self, v: u32) {
        self.0.extend(v.to_be_bytes());
    }
    fn be64(&mut self, v: u64) {
        self.0.extend(v.to_be_bytes());
    }
    fn str8(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(255)];
        self.u8(b.len() as u8);
        self.0.extend(b);
    }
    fn at(&self) -> usize {
        self.0.len()
    }
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

/// A device's vmdesc entry and its payload.
fn device(d: &Device) -> (Value, Vec<u8>) {
    let mut fields = Vec::new();
    let mut len = 0u64;
    for &f in d.fields.iter().take(8) {
        let (name, size, count) = FIELDS[usize::from(f) % FIELDS.len()];
        let mut v = json!({"name": name, "type": "uint64", "size": size});
        if let Some(n) = count {
            v["array_len"] = json!(n);
        }
        fields.push(v);
        len += size * count.unwrap_or(1);
    }
    if let Some(n) = d.segs {
        let seg = json!({"fields": [
            {"name": "selector", "type": "uint32", "size": 4},
            {"name": "base", "type": "uint64", "size": 8},
            {"name": "limit", "type": "uint32", "size": 4},
        ]});
        let n = u64::from(n % 7);
        fields.push(json!({"name": "env.segs", "type": "struct", "array_len": n, "struct": seg}));
        len += 16 * n;
    }
    let mut payload = vec![d.fill; len as usize];
    let mut desc = json!({
        "name": pick(DEVICES, d.name),
        "instance_id": d.instance % 2,
        "vmsd_name": pick(DEVICES, d.name),
        "version": 1,
        "fields": fields,
    });
    if let Some((name, bytes)) = &d.sub {
        let name: String = name
            .chars()
            .filter(char::is_ascii_graphic)
            .take(32)
            .collect();
        let n = bytes.len().min(64);
        desc["subsections"] = json!([{"vmsd_name": name, "fields": [
            {"name": "data", "type": "buffer", "size": n}
        ]}]);
        payload.push(5);
        payload.push(name.len() as u8);
        payload.extend(name.as_bytes());
        payload.extend(1u32.to_be_bytes());
        payload.extend(&bytes[..n]);
    }
    payload.extend(std::iter::repeat_n(d.fill, usize::from(d.extra % 4)));
    (desc, payload)
}

/// The stream and the regions patches may touch.
fn build(d: &Desc) -> (Vec<u8>, Vec<(usize, usize)>) {
    let bits = d.page_bits.map_or(12, |b| 10 + u32::from(b % 7));
    let ps = 1u64 << bits;
    let footers = !d.no_footers;
    let mut w = W::default();
    let mut regions = Vec::new();
    w.be32(0x5145_564D);
    w.be32(3);
    // Configuration.
    w.u8(0x07);
    let machine = pick(MACHINES, d.machine);
    w.be32(machine.len() as u32);
    w.0.extend(machine.as_bytes());
    if d.page_bits.is_some() {
        w.u8(0x05);
        w.str8("configuration/target-page-bits");
        w.be32(1);
        w.be32(bits);
    }
    let mut caps = Vec::new();
    if d.mapped {
        caps.push("mapped-ram");
    }
    if d.ignore_shared {
        caps.push("x-ignore-shared");
    }
    if !caps.is_empty() {
        w.u8(0x05);
        w.str8("configuration/capabilities");
        w.be32(1);
        w.be32(caps.len() as u32);
        for c in &caps {
            w.str8(c);
        }
    }
    if d.uuid {
        w.u8(0x05);
        w.str8("configuration/uuid");
        w.be32(1);
        w.0.extend([0xAB; 16]);
    }
    regions.push((0, w.at()));
    // The RAM section start: the block list (with mapped-ram areas), EOS.
    let ram_at = w.at();
    let ram_id = 2u32;
    w.u8(0x01);
    w.be32(ram_id);
    w.str8("ram");
    w.be32(0);
    w.be32(4);
    let mut names = Vec::new();
    let mut sizes = Vec::new();
    let mut addrs = Vec::new();
    for b in d.blocks.iter().take(4) {
        let name = match &b.other {
            Some(o) => o.chars().filter(char::is_ascii_graphic).take(40).collect(),
            None => pick(BLOCKS, b.name).to_string(),
        };
        if names.contains(&name) {
            continue;
        }
        names.push(name);
        sizes.push(u64::from(b.pages % 32) * ps);
        addrs.push(b.addr);
    }
    w.be64(sizes.iter().sum::<u64>() | 0x04);
    let mut dirty = d.dirty.iter().copied().cycle();
    for (i, (name, size)) in names.iter().zip(&sizes).enumerate() {
        w.str8(name);
        w.be64(*size);
        if d.ignore_shared {
            w.be64(addrs[i]);
        }
        if d.mapped {
            let bitmap = (size / ps).div_ceil(64) * 8;
            let header_end = w.at() as u64 + 28;
            let pages = (header_end + bitmap).div_ceil(512) * 512 + u64::from(d.pages_gap) * 512;
            w.be32(1);
            w.be64(ps);
            w.be64(header_end);
            w.be64(pages);
            let mut bm = vec![0u8; bitmap as usize];
            for b in bm.iter_mut() {
                *b = dirty.next().unwrap_or(0xFF);
            }
            w.0.extend(bm);
            w.0.resize(pages as usize, 0);
            for p in 0..size / ps {
                w.0.extend(vec![(p as u8) ^ (i as u8 * 0x40); ps as usize]);
            }
        }
    }
    w.be64(0x10);
    if footers {
        w.u8(0x7E);
        w.be32(ram_id);
    }
    regions.push((ram_at, w.at() - ram_at));
    // Iterative RAM parts (the last one an END).
    let parts: Vec<&Vec<Record>> = d.parts.iter().take(4).collect();
    for (n, recs) in parts.iter().enumerate() {
        let at = w.at();
        w.u8(if n + 1 == parts.len() { 0x03 } else { 0x02 });
        w.be32(ram_id);
        for r in recs.iter().take(16) {
            let page = |w: &mut W, flag: u64, block: u8, page: u16, cont: bool| {
                let b = usize::from(block) % names.len().max(1);
                let pages = sizes.get(b).map_or(1, |s| (s / ps).max(1));
                let addr = (u64::from(page) % pages) * ps;
                w.be64(addr | flag | if cont { 0x20 } else { 0 });
                if !cont {
                    w.str8(names.get(b).map_or("pc.ram", String::as_str));
                }
            };
            match *r {
                Record::Page {
                    block,
                    page: p,
                    fill,
                    cont,
                } => {
                    page(&mut w, 0x08, block, p, cont);
                    w.0.extend(vec![fill; ps as usize]);
                }
                Record::Zero {
                    block,
                    page: p,
                    fill,
                    cont,
                } => {
                    page(&mut w, 0x02, block, p, cont);
                    w.u8(fill);
                }
                Record::Flush => w.be64(0x200),
                Record::Raw(v) => w.be64(v),
            }
        }
        w.be64(0x10);
        if footers {
            w.u8(0x7E);
            w.be32(ram_id);
        }
        regions.push((at, w.at() - at));
    }
    // Device sections and commands.
    let mut described = Vec::new();
    for (i, dev) in d.devices.iter().take(6).enumerate() {
        let at = w.at();
        let (desc, payload) = device(dev);
        let id = 3 + i as u32;
        w.u8(0x04);
        w.be32(id);
        w.str8(pick(DEVICES, dev.name));
        w.be32(u32::from(dev.instance % 2));
        w.be32(1);
        w.0.extend(payload);
        if footers {
            w.u8(0x7E);
            w.be32(id);
        }
        if dev.described {
            described.push(desc);
        }
        regions.push((at, w.at() - at));
    }
    for (cmd, data) in d.commands.iter().take(3) {
        let data = &data[..data.len().min(64)];
        w.u8(0x08);
        w.be16(u16::from(*cmd % 10));
        w.be16(data.len() as u16);
        w.0.extend(data);
    }
    w.u8(0x00);
    // The device description trailer.
    if d.vmdesc {
        let at = w.at();
        let mut j = json!({"devices": described});
        if let Some(p) = d.vmdesc_page_size {
            j["page_size"] = json!(p);
        }
        let text = j.to_string();
        w.u8(0x06);
        w.be32(text.len() as u32);
        w.0.extend(text.as_bytes());
        regions.push((at, w.at() - at));
    }
    w.0.extend(d.trailing.iter().take(64));
    (w.0, regions)
}

/// The QEMU targets' structured mode: false when `data` is not a description.
pub fn run(data: &[u8]) -> bool {
    let Some(d) = description::<Desc>(data) else {
        return false;
    };
    let (mut f, regions) = build(&d);
    apply(&mut f, &regions, &d.patches);
    crate::plain::qemu(&vmsnap_qemu::PLUGIN, &f);
    crate::plain::qemu(&vmsnap_qemu::MAPPED_RAM_PLUGIN, &f);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmsnap_core::{ExternalPolicy, LayerExt};

    /// The committed small mapped-ram seed (the samples QEMU writes are 73 MiB).
    const SEED: &str = "qemu/fuzz-seeds/qemu_mapped_ram/crafted-mapped-ram.qevm";

    /// A pc machine with a 12-page `pc.ram` and a 2-page `pc.bios` in mapped-ram form,
    /// a vCPU section described by the trailer, section footers on.
    fn mapped() -> Desc {
        let block = |name, pages| Block {
            name,
            other: None,
            pages,
            addr: 0,
        };
        Desc {
            machine: 2,
            page_bits: Some(2),
            mapped: true,
            ignore_shared: false,
            uuid: true,
            blocks: vec![block(0, 12), block(1, 2)],
            dirty: vec![0b1010_0101, 0b0000_0011, 0, 0, 0, 0, 0, 0, 0b11],
            pages_gap: 0,
            parts: Vec::new(),
            devices: vec![Device {
                name: 0,
                instance: 0,
                fields: vec![0, 1, 3],
                segs: Some(6),
                sub: None,
                described: true,
                fill: 0x5A,
                extra: 0,
            }],
            commands: Vec::new(),
            no_footers: false,
            vmdesc: true,
            vmdesc_page_size: Some(4096),
            trailing: Vec::new(),
            patches: Vec::new(),
        }
    }

    /// The seed is what the builder writes for [`mapped`] (`VMSNAP_WRITE_SEEDS=1`
    /// rewrites it), and the mapped-ram plugin reads its dirty pages back and clean ones
    /// as zeros.
    #[test]
    fn the_mapped_ram_seed_is_built_and_reads_back() {
        let (f, _) = build(&mapped());
        let path = vmsnap_testkit::corpus(SEED);
        if std::env::var_os("VMSNAP_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &f).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), f, "{SEED} is stale");
        assert!(f.len() <= 64 << 10);
        let layer = crate::open(
            &vmsnap_qemu::MAPPED_RAM_PLUGIN,
            &[],
            crate::file(&f),
            ExternalPolicy::Deny,
        )
        .expect("the mapped-ram plugin opens the seed");
        let ram = layer
            .children()
            .into_iter()
            .find(|c| c.name == "ram:pc.ram")
            .expect("a pc.ram child");
        let ram = ram.layer;
        assert_eq!(ram.len(), 12 * 4096);
        let bits: u16 = 0b0000_0011_1010_0101;
        for p in 0..12u64 {
            let page = ram.read_vec(p * 4096, 4096, 4096, "page").unwrap();
            let want = if bits >> p & 1 == 1 { p as u8 } else { 0 };
            assert!(page.iter().all(|&b| b == want), "page {p}");
        }
        assert_eq!(layer.cpu_state().len(), 1);
    }
}

//! The stacking loop with plugins made for the test: order, ambiguity, explain, failures,
//! loops and branches.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use vmsnap_core::{
    AddressSpace, ChildRole, Error, FileLayer, Layer, MemSource, NamedLayer, OpenCtx, Options,
    Plugin, PluginKind, Probe, Registry, Resolver, Result, SliceLayer, SniffWindow,
};
use vmsnap_stack::{Outcome, Stacker};

/// Accepts a layer starting with `tag` and strips the 4-byte tag.
fn strip(tag: &'static [u8; 4], lower: Arc<dyn Layer>, name: &str) -> Result<Arc<dyn Layer>> {
    let mut head = [0u8; 4];
    lower.read_at(0, &mut head)?;
    assert_eq!(&head, tag);
    let len = lower.len() - 4;
    Ok(Arc::new(SliceLayer::new(
        name,
        AddressSpace::Stream,
        lower,
        4,
        len,
    )?))
}

fn probe_aaaa(w: &SniffWindow<'_>) -> Probe {
    if w.head.starts_with(b"AAAA") {
        Probe::Yes
    } else {
        Probe::No("no AAAA magic")
    }
}
fn open_aaaa(l: Arc<dyn Layer>, _: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    strip(b"AAAA", l, "a")
}
fn probe_bbbb(w: &SniffWindow<'_>) -> Probe {
    if w.head.starts_with(b"BBBB") {
        Probe::Yes
    } else {
        Probe::No("no BBBB magic")
    }
}
fn open_bbbb(l: Arc<dyn Layer>, _: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    strip(b"BBBB", l, "b")
}
fn open_fail(_: Arc<dyn Layer>, _: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Err(Error::malformed(8, "table outside the file"))
}
fn always(_: &SniffWindow<'_>) -> Probe {
    Probe::Yes
}
fn open_wrap(l: Arc<dyn Layer>, _: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    let len = l.len();
    Ok(Arc::new(SliceLayer::new(
        "loop",
        AddressSpace::Stream,
        l,
        0,
        len,
    )?))
}

const fn plugin(
    name: &'static str,
    priority: u16,
    probe: fn(&SniffWindow<'_>) -> Probe,
    open: vmsnap_core::OpenFn,
) -> Plugin {
    Plugin {
        name,
        kind: PluginKind::Disk,
        priority,
        stacks_on: &[AddressSpace::File, AddressSpace::Stream],
        summary: "test",
        options: &[],
        probe,
        open,
    }
}

static A: Plugin = plugin("a", 10, probe_aaaa, open_aaaa);
static B: Plugin = plugin("b", 20, probe_bbbb, open_bbbb);
static B_TWIN: Plugin = plugin("b-twin", 20, probe_bbbb, open_bbbb);
static A_BROKEN: Plugin = plugin("a-broken", 5, probe_aaaa, open_fail);
static LOOPY: Plugin = plugin("loopy", 90, always, open_wrap);

fn file(bytes: &[u8]) -> Arc<dyn Layer> {
    Arc::new(FileLayer::new(Arc::new(MemSource::new(bytes.to_vec()))))
}

fn names(stack: &vmsnap_stack::Stack) -> Vec<String> {
    stack.entries.iter().map(|e| e.name.clone()).collect()
}

#[test]
fn stacks_in_priority_order_until_none_accepts() {
    let reg = Registry::empty().with(&B).unwrap().with(&A).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o).stack(file(b"AAAABBBBpayload"));
    assert_eq!(names(&stack), ["file", "a", "b"]);
    let mut buf = [0u8; 7];
    stack.entries[2].layer.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"payload");
    assert!(stack.findings.is_empty());
    assert!(stack.error.is_none());
    assert_eq!(stack.main_top(), 2);
}

#[test]
fn a_sniff_read_by_the_caller_is_used_for_the_base_layer_only() {
    let reg = Registry::empty().with(&B).unwrap().with(&A).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let base = file(b"AAAABBBBpayload");
    let sniff = vmsnap_core::Sniff::read(base.as_ref()).unwrap();
    let stack = Stacker::new(&reg, &r, &o).stack_sniffed(base, Some(sniff));
    // "b" is found by a fresh sniff of layer "a", not by the base layer's head.
    assert_eq!(names(&stack), ["file", "a", "b"]);
    let mut buf = [0u8; 7];
    stack.entries[2].layer.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"payload");
}

#[test]
fn equal_priority_double_acceptance_is_an_ambiguity_finding() {
    let reg = Registry::empty().with(&B_TWIN).unwrap().with(&B).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o).stack(file(b"BBBBx"));
    // Ties are broken by name, never by registration order.
    assert_eq!(names(&stack), ["file", "b"]);
    let (on, f) = &stack.findings[0];
    assert_eq!(*on, 0);
    assert_eq!(f.rule, "multiple_formats");
    assert!(f.message.contains("b, b-twin"), "{}", f.message);
}

#[test]
fn explain_records_every_refusal_with_its_reason() {
    let reg = Registry::empty().with(&A).unwrap().with(&B).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o)
        .explain(true)
        .stack(file(b"zzzz"));
    assert_eq!(names(&stack), ["file"]);
    assert!(stack
        .attempts
        .iter()
        .any(|a| a.plugin == "a" && a.outcome == Outcome::Refused("no AAAA magic".into())));
    assert!(stack
        .attempts
        .iter()
        .any(|a| a.plugin == "b" && a.outcome == Outcome::Refused("no BBBB magic".into())));
    let quiet = Stacker::new(&reg, &r, &o).stack(file(b"zzzz"));
    assert!(quiet.attempts.is_empty());
}

#[test]
fn a_failed_open_falls_back_to_the_next_acceptor_and_is_recorded() {
    let reg = Registry::empty().with(&A_BROKEN).unwrap().with(&A).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o).stack(file(b"AAAAdata"));
    assert_eq!(names(&stack), ["file", "a"]);
    assert!(
        matches!(&stack.attempts[0].outcome, Outcome::Failed(m) if m.contains("table outside"))
    );
    // With no fallback the error is kept, naming layer and offset.
    let reg = Registry::empty().with(&A_BROKEN).unwrap();
    let stack = Stacker::new(&reg, &r, &o).stack(file(b"AAAAdata"));
    assert_eq!(names(&stack), ["file"]);
    let e = stack.error.unwrap();
    assert_eq!(e.context().layer.as_deref(), Some("a-broken"));
    assert_eq!(e.context().offset, Some(8));
}

#[test]
fn a_plugin_is_never_stacked_twice_in_a_chain() {
    let reg = Registry::empty().with(&LOOPY).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o).stack(file(b"anything"));
    assert_eq!(names(&stack), ["file", "loopy"]);
}

#[test]
fn empty_input_stacks_nothing() {
    let reg = Registry::empty().with(&LOOPY).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o).stack(file(b""));
    assert_eq!(names(&stack), ["file"]);
}

/// A layer with a stackable child holding `BBBB…`.
#[derive(Debug)]
struct WithChild(Arc<dyn Layer>);
impl Layer for WithChild {
    fn name(&self) -> &str {
        "parent"
    }
    fn space(&self) -> AddressSpace {
        AddressSpace::GuestDisk
    }
    fn len(&self) -> u64 {
        4
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        vmsnap_core::check_read(self, offset, buf.len())?;
        buf.fill(0);
        Ok(())
    }
    fn lower(&self) -> Vec<Arc<dyn Layer>> {
        vec![self.0.clone()]
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"format": "parent"})
    }
    fn children(&self) -> Vec<NamedLayer> {
        vec![
            NamedLayer {
                name: "vmstate:1".into(),
                role: ChildRole::VmState,
                stackable: true,
                layer: file(b"BBBBstate"),
            },
            NamedLayer {
                name: "snapshot:1".into(),
                role: ChildRole::Snapshot,
                stackable: false,
                layer: file(b"BBBBdisk"),
            },
            NamedLayer {
                name: "snapshot:base/disk:scsi0:0".into(),
                role: ChildRole::Snapshot,
                stackable: false,
                layer: file(b"nested"),
            },
        ]
    }
}
fn probe_parent(w: &SniffWindow<'_>) -> Probe {
    if w.head.starts_with(b"PPPP") {
        Probe::Yes
    } else {
        Probe::No("no PPPP")
    }
}
fn open_parent(l: Arc<dyn Layer>, _: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Ok(Arc::new(WithChild(l)))
}
static P: Plugin = plugin("p", 10, probe_parent, open_parent);

#[test]
fn stackable_children_become_branches_and_every_child_is_selectable() {
    let reg = Registry::empty().with(&P).unwrap().with(&B).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o).stack(file(b"PPPP"));
    assert_eq!(names(&stack), ["file", "p", "p/vmstate:1", "p/vmstate:1/b"]);
    assert_eq!(stack.main_top(), 1);
    assert_eq!(stack.default_selection().name, "p");
    let sel = stack.select("p/vmstate:1/b").unwrap();
    let mut buf = [0u8; 5];
    sel.layer.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"state");
    assert_eq!(stack.select("snapshot:1").unwrap().name, "p/snapshot:1");
    // A child name holding `/` is selected whole, alone or after its owner.
    for spec in ["snapshot:base/disk:scsi0:0", "p/snapshot:base/disk:scsi0:0"] {
        let sel = stack.select(spec).unwrap();
        assert_eq!(sel.name, "p/snapshot:base/disk:scsi0:0");
        assert_eq!(sel.layer.len(), 6);
    }
    assert!(stack.select("base/disk:scsi0:0").is_err());
    assert_eq!(stack.select("3").unwrap().name, "p/vmstate:1/b");
    assert!(stack.select("9").is_err());
    let e = stack.select("nope").unwrap_err();
    assert!(e.to_string().contains("p/snapshot:1"), "{e}");
}

fn open_declined(_: Arc<dyn Layer>, _: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Err(Error::declined("no RAM keys in this saved state"))
}
static GUESS: Plugin = plugin("guess", 5, probe_aaaa, open_declined);

#[test]
fn an_open_that_finds_it_is_not_its_format_is_a_refusal_not_an_error() {
    let reg = Registry::empty().with(&GUESS).unwrap().with(&A).unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o)
        .explain(true)
        .stack(file(b"AAAAdata"));
    assert_eq!(names(&stack), ["file", "a"]);
    assert!(stack.error.is_none());
    assert!(stack.attempts.iter().any(|a| a.plugin == "guess"
        && matches!(&a.outcome, Outcome::Refused(m) if m.contains("no RAM keys"))));
}

fn open_not_found(_: Arc<dyn Layer>, _: &OpenCtx<'_>) -> Result<Arc<dyn Layer>> {
    Err(Error::new(
        vmsnap_core::ErrorKind::NotFound,
        "a file the format needs is missing",
    ))
}
static NOT_FOUND: Plugin = plugin("needs-file", 5, probe_aaaa, open_not_found);

#[test]
fn any_other_error_of_an_open_is_a_failure_even_not_found() {
    let reg = Registry::empty()
        .with(&NOT_FOUND)
        .unwrap()
        .with(&A)
        .unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o).stack(file(b"AAAAdata"));
    // The next plugin is still tried, but the failure is reported, not taken for "not
    // this format".
    assert_eq!(names(&stack), ["file", "a"]);
    assert!(stack.attempts.iter().any(|a| a.plugin == "needs-file"
        && matches!(&a.outcome, Outcome::Failed(m) if m.contains("missing"))));
}

fn never_probed(_: &SniffWindow<'_>) -> Probe {
    panic!("probed on a space it does not stack on")
}
static PHYS_ONLY: Plugin = Plugin {
    stacks_on: &[AddressSpace::GuestPhysical],
    ..plugin("phys-only", 1, never_probed, open_wrap)
};

#[test]
fn a_plugin_is_not_probed_on_a_space_it_does_not_stack_on() {
    let reg = Registry::empty()
        .with(&PHYS_ONLY)
        .unwrap()
        .with(&A)
        .unwrap();
    let (r, o) = (Resolver::default(), Options::new());
    let stack = Stacker::new(&reg, &r, &o)
        .explain(true)
        .stack(file(b"AAAAdata"));
    assert_eq!(names(&stack), ["file", "a"]);
    let on_file: Vec<&Outcome> = stack
        .attempts
        .iter()
        .filter(|a| a.plugin == "phys-only" && a.on == 0)
        .map(|a| &a.outcome)
        .collect();
    assert_eq!(
        on_file,
        [&Outcome::NotTried("stacks on guest_physical".into())]
    );
}

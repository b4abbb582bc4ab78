//! The stacking loop.

use std::sync::Arc;

use serde::Serialize;
use vmsnap_core::limits::MAX_STACK_DEPTH;
use vmsnap_core::{
    Error, ErrorKind, Finding, Layer, OpenCtx, Options, Plugin, Probe, Registry, Resolver,
    Severity, Sniff, SniffWindow,
};

/// One layer of a stack.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StackEntry {
    /// Unique name within the stack: the plugin name on the main chain (`qcow2`), and
    /// `<parent>/<child>` or `<parent>/<child>/<plugin>` on branches.
    pub name: String,
    /// The plugin that opened it (`None` for the file and for children).
    pub plugin: Option<&'static Plugin>,
    /// The layer.
    pub layer: Arc<dyn Layer>,
    /// The entry it was stacked on (`None` for the file).
    pub parent: Option<usize>,
    /// When it is a named child of its parent, the child's name.
    pub via: Option<String>,
}

impl StackEntry {
    /// An entry on its own: no plugin, no parent, not a named child (a stack an embedder or a
    /// test builds by hand).
    pub fn new(name: impl Into<String>, layer: Arc<dyn Layer>) -> Self {
        StackEntry {
            name: name.into(),
            plugin: None,
            layer,
            parent: None,
            via: None,
        }
    }
}

/// What happened when a plugin was tried on a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The probe accepted and the plugin was stacked.
    Stacked,
    /// The probe accepted but an earlier plugin was stacked instead.
    Outranked,
    /// The probe said no.
    Refused(String),
    /// The probe accepted but opening failed.
    Failed(String),
    /// Not tried: already stacked in this chain.
    AlreadyStacked,
    /// Not tried: the layer's space is not one the plugin stacks on (`stacks on file,
    /// guest_disk`).
    NotTried(String),
}

/// One plugin tried on one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Attempt {
    /// Index of the entry it was tried on.
    pub on: usize,
    /// Plugin name.
    pub plugin: &'static str,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The result of stacking.
#[derive(Debug, Default)]
pub struct Stack {
    /// Every layer, file first; branches follow their parents.
    pub entries: Vec<StackEntry>,
    /// Findings of the stacking itself (ambiguity), with the entry they concern.
    pub findings: Vec<(usize, Finding)>,
    /// Every probe and open, when explaining (only stacked and failed ones otherwise).
    pub attempts: Vec<Attempt>,
    /// The error of a plugin that accepted but could not open, when no other could.
    pub error: Option<Error>,
}

impl Stack {
    /// The last entry of the main chain (file → … without branches).
    pub fn main_top(&self) -> usize {
        let mut top = 0;
        for (i, e) in self.entries.iter().enumerate() {
            if e.parent == Some(top) && e.via.is_none() {
                top = i;
            }
        }
        top
    }

    /// All findings of every layer and of the stacking, with the entry index.
    pub fn all_findings(&self) -> Vec<(usize, Finding)> {
        let mut v = self.findings.clone();
        for (i, e) in self.entries.iter().enumerate() {
            if e.via.is_some() && e.plugin.is_none() {
                continue; // a child's findings are its parent's
            }
            v.extend(e.layer.findings().into_iter().map(|f| (i, f)));
        }
        v
    }

    /// Whether any finding is unsafe.
    pub fn any_unsafe(&self) -> bool {
        self.all_findings()
            .iter()
            .any(|(_, f)| f.severity == Severity::Unsafe)
    }
}

/// Builds stacks.
#[derive(Debug, Clone, Copy)]
pub struct Stacker<'a> {
    registry: &'a Registry,
    resolver: &'a Resolver,
    options: &'a Options,
    explain: bool,
    branches: bool,
    max_layers: usize,
}

impl<'a> Stacker<'a> {
    /// A stacker over `registry`, resolving external references with `resolver`.
    pub fn new(registry: &'a Registry, resolver: &'a Resolver, options: &'a Options) -> Self {
        Stacker {
            registry,
            resolver,
            options,
            explain: false,
            branches: true,
            max_layers: MAX_STACK_DEPTH,
        }
    }

    /// Stacks at most `n` format layers on the file (inspection wants the image's own
    /// format only, without reading guest data to look for nested formats).
    pub fn max_layers(mut self, n: usize) -> Self {
        self.max_layers = n.min(MAX_STACK_DEPTH);
        self
    }

    /// Records every refusal, not only successes and failures.
    pub fn explain(mut self, on: bool) -> Self {
        self.explain = on;
        self
    }

    /// Whether to stack on stackable children (default on).
    pub fn branches(mut self, on: bool) -> Self {
        self.branches = on;
        self
    }

    /// Stacks on `base` (usually a [`vmsnap_core::FileLayer`]).
    pub fn stack(&self, base: Arc<dyn Layer>) -> Stack {
        self.stack_sniffed(base, None)
    }

    /// Stacks on `base` whose head and tail the caller has already read (`sniff`, from
    /// [`Sniff::read`] of the same layer), so they are not read a second time.
    pub fn stack_sniffed(&self, base: Arc<dyn Layer>, sniff: Option<Sniff>) -> Stack {
        let mut stack = Stack::default();
        stack.entries.push(StackEntry {
            name: base.name().to_string(),
            plugin: None,
            layer: base,
            parent: None,
            via: None,
        });
        self.grow(&mut stack, 0, &[], 1, sniff);
        stack
    }

    fn ctx(&self) -> OpenCtx<'a> {
        OpenCtx::new(self.resolver, self.registry, self.options)
    }

    /// Grows a chain from entry `from`; `used` are the plugins stacked below it.
    fn grow(
        &self,
        stack: &mut Stack,
        from: usize,
        used: &[&'static str],
        depth: usize,
        mut sniff: Option<Sniff>,
    ) {
        let mut top = from;
        let mut used: Vec<&'static str> = used.to_vec();
        let mut chain = vec![from];
        let mut depth = depth;
        while depth < MAX_STACK_DEPTH && depth <= self.max_layers {
            let Some(layer) = stack.entries.get(top).map(|e| e.layer.clone()) else {
                break;
            };
            match self.step(stack, top, &layer, &used, sniff.take()) {
                Some((plugin, new_layer)) => {
                    used.push(plugin.name);
                    let name = format!("{}{}", branch_prefix(stack, top), plugin.name);
                    stack.entries.push(StackEntry {
                        name,
                        plugin: Some(plugin),
                        layer: new_layer,
                        parent: Some(top),
                        via: None,
                    });
                    top = stack.entries.len() - 1;
                    chain.push(top);
                    depth += 1;
                }
                None => break,
            }
        }
        if !self.branches {
            return;
        }
        for idx in chain {
            let Some(entry) = stack.entries.get(idx) else {
                continue;
            };
            let parent_name = entry.name.clone();
            let children = entry.layer.children();
            for child in children.into_iter().filter(|c| c.stackable) {
                if depth >= MAX_STACK_DEPTH {
                    return;
                }
                stack.entries.push(StackEntry {
                    name: format!("{parent_name}/{}", child.name),
                    plugin: None,
                    layer: child.layer,
                    parent: Some(idx),
                    via: Some(child.name),
                });
                let at = stack.entries.len() - 1;
                self.grow(stack, at, &used_below(stack, at), depth + 1, None);
            }
        }
    }

    /// Probes every plugin on `layer` and opens the first that accepts.
    fn step(
        &self,
        stack: &mut Stack,
        on: usize,
        layer: &Arc<dyn Layer>,
        used: &[&'static str],
        sniff: Option<Sniff>,
    ) -> Option<(&'static Plugin, Arc<dyn Layer>)> {
        if layer.is_empty() {
            return None;
        }
        let sniff = match sniff.map_or_else(|| Sniff::read(layer.as_ref()), Ok) {
            Ok(s) => s,
            // Its head or tail comes from a reference that was not opened: nothing can be
            // stacked on it, and that is not a failure of the layer (it is reported).
            Err(e) if e.kind() == ErrorKind::Unavailable => return None,
            Err(e) => {
                stack.error.get_or_insert(e);
                return None;
            }
        };
        let cpu = layer.cpu_state();
        let window = SniffWindow {
            cpu: &cpu,
            ..sniff.window(layer.as_ref())
        };
        let mut accepting: Vec<&'static Plugin> = Vec::new();
        for &plugin in self.registry.plugins() {
            if used.contains(&plugin.name) {
                self.note(stack, on, plugin.name, Outcome::AlreadyStacked);
                continue;
            }
            if !plugin.stacks_on_space(window.space) {
                if self.explain {
                    let why = format!("stacks on {}", plugin.stacks_on_names());
                    self.note(stack, on, plugin.name, Outcome::NotTried(why));
                }
                continue;
            }
            match (plugin.probe)(&window) {
                Probe::Yes => accepting.push(plugin),
                Probe::No(why) => self.note(stack, on, plugin.name, Outcome::Refused(why.into())),
                // An outcome this stacker does not know is not an acceptance.
                _ => self.note(
                    stack,
                    on,
                    plugin.name,
                    Outcome::Refused("unknown probe outcome".into()),
                ),
            }
        }
        let first = *accepting.first()?;
        let ties: Vec<&str> = accepting
            .iter()
            .filter(|p| p.priority == first.priority)
            .map(|p| p.name)
            .collect();
        if ties.len() > 1 {
            stack.findings.push((
                on,
                Finding::unsafe_(
                    vmsnap_core::rule::MULTIPLE_FORMATS,
                    format!(
                        "more than one format matches at the same priority: {} (using {})",
                        ties.join(", "),
                        first.name
                    ),
                ),
            ));
        }
        let mut first_error = None;
        for (i, &plugin) in accepting.iter().enumerate() {
            match (plugin.open)(layer.clone(), &self.ctx()) {
                Ok(new_layer) => {
                    stack.attempts.push(Attempt {
                        on,
                        plugin: plugin.name,
                        outcome: Outcome::Stacked,
                    });
                    for other in accepting.iter().skip(i + 1) {
                        self.note(stack, on, other.name, Outcome::Outranked);
                    }
                    return Some((plugin, new_layer));
                }
                // "Not this format after all" (a probe can only guess from head and tail):
                // a refusal with its reason, not a failure.
                Err(e) if e.kind() == ErrorKind::Declined => {
                    self.note(stack, on, plugin.name, Outcome::Refused(e.to_string()));
                }
                // It needs bytes of a reference that was not opened (page tables in a
                // missing `.vmem`): the layer below stands, with the reference reported.
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    stack.attempts.push(Attempt {
                        on,
                        plugin: plugin.name,
                        outcome: Outcome::Failed(e.to_string()),
                    });
                }
                Err(e) => {
                    let e = e.in_layer(plugin.name);
                    stack.attempts.push(Attempt {
                        on,
                        plugin: plugin.name,
                        outcome: Outcome::Failed(e.to_string()),
                    });
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            let e = match layer.path() {
                Some(p) => e.in_file(p),
                None => e,
            };
            stack.error.get_or_insert(e);
        }
        None
    }

    fn note(&self, stack: &mut Stack, on: usize, plugin: &'static str, outcome: Outcome) {
        if self.explain {
            stack.attempts.push(Attempt {
                on,
                plugin,
                outcome,
            });
        }
    }
}

/// `"<child entry>/"` for entries on a branch (the nearest ancestor that is a named
/// child), `""` on the main chain.
fn branch_prefix(stack: &Stack, at: usize) -> String {
    let mut cur = Some(at);
    let mut guard = 0;
    while let Some(i) = cur {
        let Some(e) = stack.entries.get(i) else { break };
        if e.via.is_some() {
            return format!("{}/", e.name);
        }
        cur = e.parent;
        guard += 1;
        if guard > MAX_STACK_DEPTH * 4 {
            break;
        }
    }
    String::new()
}

/// Plugins stacked on the chain from the file to entry `at`.
fn used_below(stack: &Stack, at: usize) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut cur = Some(at);
    let mut guard = 0;
    while let Some(i) = cur {
        let Some(e) = stack.entries.get(i) else { break };
        if let Some(p) = e.plugin {
            v.push(p.name);
        }
        cur = e.parent;
        guard += 1;
        if guard > MAX_STACK_DEPTH * 4 {
            break;
        }
    }
    v
}

//! `vmsnap._vmsnap`: the native half of the `vmsnap` Python package. The Python half
//! (`python/vmsnap/__init__.py`) wraps a `PyLayer` into an `io.RawIOBase` and re-exports
//! everything; the documents (`describe()`, `extents()`, `check()`) are built by
//! `vmsnap-report`, the same code as the CLI's `--json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde_json::Value;
use vmsnap::core::{
    Error, ExternalPolicy, FileLayer, InputKind, Layer, MissingPolicy, Options, RefDecision,
    Registry, Resolver,
};
use vmsnap::inspect::{inspect, names, CheckOptions};
use vmsnap::stack::Stack;
use vmsnap_report::chain::origins;
use vmsnap_report::check::{error_of, report_json, LimitedInspector, DEFAULT_MAX_STREAM};
use vmsnap_report::map::{alone_pieces, annotate, extent_json};
use vmsnap_report::open::{parse_external, parse_missing, OpenSettings};

/// The exception type, in a module of its own so that Python sees it as `vmsnap.Error`.
mod exc {
    pyo3::create_exception!(
        vmsnap,
        Error,
        pyo3::exceptions::PyException,
        "Every error vmsnap raises: `.kind` is the CLI's error kind (`malformed`, `truncated`, \
         `policy_denied`, …), `.file`, `.layer` and `.offset` say where (None where unknown)."
    );
}

/// The Python exception for `e`, with the CLI's line (`FILE: layer: at offset …: message`)
/// and the JSON error object's fields as attributes.
fn py_err(py: Python<'_>, e: &Error, input: Option<&Path>) -> PyErr {
    let obj = vmsnap_report::json::error_object(e, input);
    let line = vmsnap_report::json::error_line(e, input);
    let err = exc::Error::new_err(line);
    let value = err.value(py);
    for key in ["kind", "file", "layer", "offset"] {
        let v = to_py(py, obj.get(key).unwrap_or(&Value::Null)).unwrap_or_else(|_| py.None());
        // Setting attributes on a fresh exception instance cannot fail in practice; if it
        // did, the message still says everything.
        let _ = value.setattr(key, v);
    }
    err
}

/// A JSON value as plain Python data (dict, list, str, int, float, bool, None).
fn to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    let text =
        serde_json::to_string(v).map_err(|e| PyErr::new::<PyException, _>(format!("JSON: {e}")))?;
    let json = py.import("json")?;
    Ok(json.call_method1("loads", (text,))?.unbind())
}

/// An offset or count from Python: negative ones are a ValueError, as for `os.pread`.
fn non_negative(v: i64) -> PyResult<u64> {
    u64::try_from(v).map_err(|_| {
        PyErr::new::<pyo3::exceptions::PyValueError, _>("offset and count must not be negative")
    })
}

fn registry(py: Python<'_>) -> PyResult<Registry> {
    vmsnap::registry().map_err(|e| py_err(py, &e, None))
}

/// What `open` keeps alive together: the stack and the resolver that opened its references.
#[derive(Debug)]
struct Opened {
    stack: Stack,
    policy: ExternalPolicy,
    resolver: Resolver,
    file: String,
    /// The input as given (depth 0 of a chain).
    path: PathBuf,
}

/// A stack of layers opened from one file (made by `vmsnap.open`).
#[pyclass(module = "vmsnap._vmsnap", name = "Stack", frozen)]
#[derive(Debug)]
struct PyStack {
    opened: Arc<Opened>,
}

/// One layer of a stack: read it at any offset, map it, translate through it.
#[pyclass(module = "vmsnap._vmsnap", name = "NativeLayer", frozen)]
#[derive(Debug)]
struct PyLayer {
    opened: Arc<Opened>,
    index: usize,
    layer: Arc<dyn Layer>,
    name: String,
}

/// Opens `path` and stacks it: `external` is the policy for files it references
/// (`"same_dir"`, `"vm_dir"`, `"none"`, `"any"`; by default `"vm_dir"` for a VM
/// configuration or bundle, else `"same_dir"`), `missing` what reads do where such a file is not
/// opened (`"error"` or `"zeros"`), `options` plugin options (`{"qemu.ram_block": "pc.ram"}`).
#[pyfunction]
#[pyo3(signature = (path, external=None, missing="error", options=None))]
fn open(
    py: Python<'_>,
    path: PathBuf,
    external: Option<&str>,
    missing: &str,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyStack> {
    let file = path.display().to_string();
    let input = Some(path.as_path());
    let err = |e: Error| py_err(py, &e, None);
    let mut settings = OpenSettings {
        external: external.map(parse_external).transpose().map_err(err)?,
        missing: parse_missing(missing).map_err(err)?,
        options: Options::new(),
    };
    let registry = registry(py)?;
    if let Some(d) = options {
        for (k, v) in d.iter() {
            let k: String = k.str()?.extract()?;
            let v: String = match v.extract::<bool>() {
                Ok(b) => b.to_string(),
                Err(_) => v.str()?.extract()?,
            };
            settings.options.set(k.trim(), v.trim());
        }
    }
    let opened = py
        .detach(|| -> Result<Opened, Error> {
            // An accepted format that failed to open is an error, as for `map` or `cat`.
            let o = vmsnap_report::open::open_for_data(&registry, &path, &settings)?;
            Ok(Opened {
                stack: o.stack,
                policy: o.policy,
                resolver: o.resolver,
                file: file.clone(),
                path: path.clone(),
            })
        })
        .map_err(|e| py_err(py, &e, input))?;
    Ok(PyStack {
        opened: Arc::new(opened),
    })
}

impl PyStack {
    fn layer_at(&self, index: usize) -> Option<PyLayer> {
        let e = self.opened.stack.entries.get(index)?;
        Some(PyLayer {
            opened: self.opened.clone(),
            index,
            layer: e.layer.clone(),
            name: e.name.clone(),
        })
    }

    fn err(&self, py: Python<'_>, e: &Error) -> PyErr {
        py_err(py, e, Some(Path::new(&self.opened.file)))
    }
}

#[pymethods]
impl PyStack {
    /// The file the stack was opened from.
    #[getter]
    fn file(&self) -> String {
        self.opened.file.clone()
    }

    /// Every layer, bottom (the file) first, as `info` numbers them.
    #[getter]
    fn layers(&self) -> Vec<PyLayer> {
        (0..self.opened.stack.entries.len())
            .filter_map(|i| self.layer_at(i))
            .collect()
    }

    /// The layer `vmsnap cat` reads without `--layer`.
    #[getter]
    fn default(&self) -> PyResult<PyLayer> {
        let sel = self.opened.stack.default_selection();
        self.find(&sel.layer)
            .ok_or_else(|| PyErr::new::<PyException, _>("the default layer is not in the stack"))
    }

    /// The layer `spec` names, as `--layer` takes it (an index, a name, `qcow2/snap1`).
    fn layer(&self, py: Python<'_>, spec: &str) -> PyResult<PyLayer> {
        let sel = self
            .opened
            .stack
            .select(spec)
            .map_err(|e| self.err(py, &e))?;
        match self.find(&sel.layer) {
            Some(mut l) => {
                l.name = sel.name;
                Ok(l)
            }
            None => Ok(PyLayer {
                opened: self.opened.clone(),
                index: usize::MAX,
                layer: sel.layer,
                name: sel.name,
            }),
        }
    }

    /// The whole `info --json` document as plain Python data.
    fn describe(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let o = &self.opened;
        to_py(
            py,
            &vmsnap_report::info::report(&o.stack, o.policy, &o.file, false),
        )
    }

    /// Every finding of every layer (`info --json`'s `findings`).
    #[getter]
    fn findings(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let o = &self.opened;
        let doc = vmsnap_report::info::report(&o.stack, o.policy, &o.file, false);
        to_py(py, doc.get("findings").unwrap_or(&Value::Null))
    }

    /// Every external reference the stack's files make, with what became of it.
    #[getter]
    fn external_refs(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_py(py, &serde_json::json!(self.opened.resolver.log()))
    }

    fn __len__(&self) -> usize {
        self.opened.stack.entries.len()
    }

    fn __repr__(&self) -> String {
        let names: Vec<&str> = self
            .opened
            .stack
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        format!(
            "<vmsnap.Stack {:?}: {}>",
            self.opened.file,
            names.join(" -> ")
        )
    }
}

impl PyStack {
    fn find(&self, layer: &Arc<dyn Layer>) -> Option<PyLayer> {
        let i = self
            .opened
            .stack
            .entries
            .iter()
            .position(|e| Arc::ptr_eq(&e.layer, layer))?;
        self.layer_at(i)
    }
}

impl PyLayer {
    fn err(&self, py: Python<'_>, e: &Error) -> PyErr {
        py_err(py, e, Some(Path::new(&self.opened.file)))
    }

    /// How many bytes a read of `n` at `offset` returns: short past the end.
    fn clamp(&self, offset: u64, n: usize) -> usize {
        let left = self.layer.len().saturating_sub(offset);
        usize::try_from(left).map_or(n, |left| left.min(n))
    }
}

#[pymethods]
impl PyLayer {
    /// The layer's name in the stack (`qcow2`, `qcow2/snap1`, `x86`).
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The index in `Stack.layers` (as `info` numbers it), or None for a child layer that
    /// was not stacked.
    #[getter]
    fn index(&self) -> Option<usize> {
        (self.index != usize::MAX).then_some(self.index)
    }

    /// The address space (`file`, `guest_disk`, `guest_physical`, `guest_virtual`, …).
    #[getter]
    fn space(&self) -> String {
        serde_json::to_value(self.layer.space())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// What opened it: the plugin's kind (`disk`, `memory`, `translation`, …), None for
    /// the file.
    #[getter]
    fn plugin_kind(&self) -> Option<&'static str> {
        let e = self.opened.stack.entries.get(self.index)?;
        e.plugin.map(|p| p.kind.as_str())
    }

    /// The plugin that opened it (`qcow2`), None for the file.
    #[getter]
    fn plugin(&self) -> Option<&'static str> {
        let e = self.opened.stack.entries.get(self.index)?;
        e.plugin.map(|p| p.name)
    }

    /// Its size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.layer.len()
    }

    /// This layer's entry of `info --json`'s `layers` as plain Python data.
    fn describe(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.opened.stack.entries.get(self.index) {
            Some(e) => to_py(py, &vmsnap_report::info::layer(self.index, e)),
            None => to_py(py, &self.layer.describe()),
        }
    }

    /// Reads up to `n` bytes at `offset`: fewer past the end, like `os.pread`. The GIL is
    /// released while reading.
    fn read_at<'py>(&self, py: Python<'py>, offset: i64, n: i64) -> PyResult<Bound<'py, PyBytes>> {
        let (offset, n) = (non_negative(offset)?, non_negative(n)?);
        let n = self.clamp(offset, usize::try_from(n).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(PyBytes::new(py, b""));
        }
        let layer = &self.layer;
        let mut failure: Option<Error> = None;
        let bytes = PyBytes::new_with(py, n, |buf| {
            if let Err(e) = py.detach(|| layer.read_at(offset, buf)) {
                failure = Some(e);
            }
            Ok(())
        })?;
        match failure {
            Some(e) => Err(self.err(py, &e)),
            None => Ok(bytes),
        }
    }

    /// Reads into `buffer` (any writable C-contiguous buffer: bytearray, memoryview,
    /// numpy array) at `offset`, without an intermediate copy; returns how many bytes were
    /// read (fewer past the end). The GIL is released while reading.
    fn readinto_at(&self, py: Python<'_>, offset: i64, buffer: PyBuffer<u8>) -> PyResult<usize> {
        let offset = non_negative(offset)?;
        if buffer.readonly() {
            return Err(PyErr::new::<pyo3::exceptions::PyTypeError, _>(
                "readinto needs a writable buffer",
            ));
        }
        if !buffer.is_c_contiguous() {
            return Err(PyErr::new::<pyo3::exceptions::PyTypeError, _>(
                "readinto needs a C-contiguous buffer",
            ));
        }
        let n = self.clamp(offset, buffer.len_bytes());
        if n == 0 {
            return Ok(0);
        }
        // The buffer stays exported (so neither moved nor resized) until `buffer` drops,
        // after the read; the pointer crosses the GIL release as an address.
        let addr = buffer.buf_ptr() as usize;
        let layer = &self.layer;
        py.detach(|| {
            // SAFETY: `addr` points to `len_bytes() >= n` writable bytes held by the
            // exporter for as long as `buffer` lives, which outlives this closure. Zero-copy
            // `readinto` is what keeps Python at the Rust reader's rate (docs/performance.md).
            #[allow(unsafe_code)]
            let slice = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, n) };
            layer.read_at(offset, slice)
        })
        .map_err(|e| self.err(py, &e))?;
        Ok(n)
    }

    /// The layer's extents as `map --json` lists them (`start`, `length`, `data`, `zero`,
    /// `kind`, `offset`, `depth`, `file`, `compressed`).
    fn extents(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let layer = &self.layer;
        let extents = py
            .detach(|| layer.extents(0..layer.len()))
            .map_err(|e| self.err(py, &e))?;
        let o = &self.opened;
        let zeros = o.resolver.missing() == MissingPolicy::Zeros;
        let alone = !o
            .resolver
            .log()
            .iter()
            .any(|r| matches!(r.decision, RefDecision::Opened { .. }));
        let is_input_disk = o
            .stack
            .entries
            .get(self.index)
            .is_some_and(|e| e.parent == Some(0) && e.via.is_none());
        // As `vmsnap map` (the same code): the input's own disk says which file of its
        // chain stores each extent and whether compressed.
        let origins = if is_input_disk {
            let registry = registry(py)?;
            py.detach(|| origins(&o.path, &o.resolver, &registry, layer))
        } else {
            None
        };
        let pieces = match &origins {
            Some(chain) => annotate(&extents, &chain.origins),
            None => alone_pieces(&extents, alone),
        };
        let v: Vec<Value> = pieces
            .iter()
            .map(|(e, origin)| {
                let file = match &origins {
                    Some(chain) => chain.file_of(origin.as_ref()),
                    // Alone, the input holds what is stored (depth 0).
                    None => origin
                        .as_ref()
                        .and_then(|o| o.depth)
                        .map(|_| o.path.display().to_string()),
                };
                extent_json(layer.as_ref(), e, origin.as_ref(), file, zeros)
            })
            .collect();
        to_py(py, &Value::Array(v))
    }

    /// How the virtual address `addr` translates (`translate --json`): the page-table
    /// walk and the physical address. For translation layers (x86 paging) only.
    fn translate(&self, py: Python<'_>, addr: u64) -> PyResult<Py<PyAny>> {
        let layer = &self.layer;
        let (name, file) = (&self.name, &self.opened.file);
        let doc = py
            .detach(|| vmsnap_report::translate::document(layer.as_ref(), name, file, addr))
            .map_err(|e| self.err(py, &e))?;
        to_py(py, &doc)
    }

    /// The CPU state the snapshot records (`info --json`'s `cpu`), registers as ints.
    fn cpu_state(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_py(py, &serde_json::json!(self.layer.cpu_state()))
    }

    /// For benchmarks: reads `0..min(limit, size)` front to back in `chunk`-byte reads
    /// from Rust alone (one reused buffer, the GIL released); returns (bytes, seconds).
    fn bench_sequential(&self, py: Python<'_>, chunk: usize, limit: u64) -> PyResult<(u64, f64)> {
        let layer = &self.layer;
        let end = limit.min(layer.len());
        let chunk = chunk.clamp(1, 1 << 30);
        py.detach(|| -> Result<(u64, f64), Error> {
            let mut buf = vec![0u8; chunk];
            let start = std::time::Instant::now();
            let mut pos = 0u64;
            while pos < end {
                let n = usize::try_from(end - pos).map_or(chunk, |left| left.min(chunk));
                let b = buf.get_mut(..n).unwrap_or_default();
                layer.read_at(pos, b)?;
                pos += n as u64;
            }
            Ok((pos, start.elapsed().as_secs_f64()))
        })
        .map_err(|e| self.err(py, &e))
    }

    fn __repr__(&self) -> String {
        format!(
            "<vmsnap.Layer {} ({}, {} bytes)>",
            self.name,
            self.space(),
            self.layer.len()
        )
    }
}

/// How `check` names formats: aliases resolved, unknown names refused.
fn check_options_of(
    registry: &Registry,
    format: Option<&str>,
    allow: Vec<String>,
) -> Result<CheckOptions, Error> {
    let expected_format = match format {
        Some(f) => Some(names::format_list(f, registry)?.join(",")),
        None => None,
    };
    let allow = allow
        .iter()
        .map(|a| names::combination(a, registry).map(|v| v.join("+")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CheckOptions {
        expected_format,
        allow,
    })
}

/// Checks the file at `path` as `vmsnap check --json` does; returns that object. A FIFO,
/// pipe or character device is read as a stream, up to `max_stream` bytes.
#[pyfunction]
#[pyo3(signature = (path, format=None, allow=Vec::new(), max_stream=DEFAULT_MAX_STREAM))]
fn check_path(
    py: Python<'_>,
    path: PathBuf,
    format: Option<&str>,
    allow: Vec<String>,
    max_stream: u64,
) -> PyResult<Py<PyAny>> {
    let registry = registry(py)?;
    let opts = check_options_of(&registry, format, allow).map_err(|e| py_err(py, &e, None))?;
    let name = path.display().to_string();
    let input = Some(path.as_path());
    let report = py
        .detach(|| -> Result<_, Error> {
            let kind = InputKind::of_path(&path)?;
            if kind.is_stream() {
                let file = std::fs::File::open(&path)
                    .map_err(|e| Error::from(e).in_file(&path).during("opening the stream"))?;
                return vmsnap_report::check::inspect_stream(
                    file,
                    max_stream,
                    "max_stream= raises it",
                    &registry,
                    &opts,
                );
            }
            let file: Arc<dyn Layer> = Arc::new(FileLayer::open(&path)?);
            Ok(inspect(file, &registry, &opts))
        })
        .map_err(|e| py_err(py, &e, input))?;
    let error = error_of(&report);
    to_py(py, &report_json(&name, &report, error.as_ref()))
}

/// Inspects a stream fed in chunks with bounded memory (what `vmsnap check -` does):
/// `feed()` each chunk, then `finish()` returns the `check --json` object.
#[pyclass(module = "vmsnap._vmsnap", name = "Inspector")]
#[derive(Debug)]
struct PyInspector {
    inner: Option<LimitedInspector>,
    opts: CheckOptions,
    name: String,
}

#[pymethods]
impl PyInspector {
    #[new]
    #[pyo3(signature = (format=None, allow=Vec::new(), max_stream=DEFAULT_MAX_STREAM, name="-".to_string()))]
    fn new(
        py: Python<'_>,
        format: Option<&str>,
        allow: Vec<String>,
        max_stream: u64,
        name: String,
    ) -> PyResult<Self> {
        let registry = registry(py)?;
        let opts = check_options_of(&registry, format, allow).map_err(|e| py_err(py, &e, None))?;
        Ok(PyInspector {
            inner: Some(LimitedInspector::new(max_stream, "max_stream= raises it")),
            opts,
            name,
        })
    }

    /// Feeds the next chunk (any bytes-like object). Returns False once the stream is
    /// longer than `max_stream`: the rest need not be fed.
    fn feed(&mut self, py: Python<'_>, data: PyBuffer<u8>) -> PyResult<bool> {
        let Some(inner) = self.inner.as_mut() else {
            return Err(PyErr::new::<pyo3::exceptions::PyValueError, _>(
                "feed() after finish()",
            ));
        };
        let chunk = data.to_vec(py)?;
        Ok(inner.feed(&chunk))
    }

    /// Bytes fed so far.
    #[getter]
    fn total(&self) -> u64 {
        self.inner.as_ref().map_or(0, LimitedInspector::total)
    }

    /// Bytes held in memory now (bounded, whatever the stream's length).
    #[getter]
    fn retained(&self) -> usize {
        self.inner.as_ref().map_or(0, LimitedInspector::retained)
    }

    /// Ends the stream and returns the `check --json` object.
    fn finish(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let Some(inner) = self.inner.take() else {
            return Err(PyErr::new::<pyo3::exceptions::PyValueError, _>(
                "finish() called twice",
            ));
        };
        let registry = registry(py)?;
        let opts = &self.opts;
        let report = py.detach(|| inner.finish(&registry, opts));
        let error = error_of(&report);
        to_py(py, &report_json(&self.name, &report, error.as_ref()))
    }
}

/// Every format name `check` and `open` know (plugins and detectors), as `vmsnap formats`.
#[pyfunction]
fn format_names(py: Python<'_>) -> PyResult<Vec<String>> {
    Ok(names::vocabulary(&registry(py)?))
}

/// The native module.
#[pymodule]
fn _vmsnap(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Error", m.py().get_type::<exc::Error>())?;
    m.add_class::<PyStack>()?;
    m.add_class::<PyLayer>()?;
    m.add_class::<PyInspector>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(check_path, m)?)?;
    m.add_function(wrap_pyfunction!(format_names, m)?)?;
    m.add("SCHEMA_VERSION", vmsnap_report::json::SCHEMA_VERSION)?;
    Ok(())
}

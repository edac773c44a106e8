//! Python bindings of the CEL engine: `Env`, `compile` -> `Program`,
//! `interpolate` -> `Template`.
//!
//! The activation is read lazily: a program's variable paths are walked on
//! the caller's Mappings with keys interned at compile time, and only the
//! values at the end of a path are converted. A Mapping reached as a value
//! becomes a lazy CEL map that converts entries on access.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::guard::guard;
use edgeward_core::cel::{
    self, CelType, CompileError, ErrorKind, EvalError, EvalResult, LazyMap, PathSpec, Step,
    Timestamp, Ty, Value,
};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyDict,
    PyFloat, PyFrozenSet, PyInt, PyList, PyMapping, PyMemoryView, PyString, PyTimeAccess, PyTuple,
    PyType, PyTzInfo, PyTzInfoAccess,
};

// --- exceptions and classes of the Python package ---------------------------

static UINT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static POLICY_EXPR_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static EVAL_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn package_type<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, "edgeward_native", name)
}

fn uint_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    package_type(py, &UINT, "UInt")
}

/// `edgeward_native.UInt`, or an int subclass of the same name (the pure-
/// Python twin defines its own), so that values move between the twins.
fn is_uint_class(py: Python<'_>, t: &Bound<'_, PyType>) -> bool {
    uint_type(py).is_ok_and(|u| t.is(u) || t.is_subclass(u).unwrap_or(false))
        || (t.is_subclass_of::<PyInt>().unwrap_or(false)
            && t.name()
                .is_ok_and(|n| n.to_str().is_ok_and(|n| n == "UInt")))
}

fn compile_error(py: Python<'_>, source: &str, e: CompileError) -> PyErr {
    match package_type(py, &POLICY_EXPR_ERROR, "PolicyExprError")
        .and_then(|t| t.call1((e.message.as_str(), e.line, e.column, source)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

thread_local! {
    /// A Python exception raised by a caller's Mapping during evaluation,
    /// re-raised unchanged once the evaluation unwinds (`ErrorKind::Host`).
    static HOST_ERROR: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

pub(crate) fn host_error(err: PyErr) -> EvalError {
    HOST_ERROR.with(|h| *h.borrow_mut() = Some(err));
    EvalError::new(ErrorKind::Host, "exception raised by the activation")
}

pub(crate) fn eval_error(py: Python<'_>, e: EvalError) -> PyErr {
    if e.is_host() {
        if let Some(err) = HOST_ERROR.with(|h| h.borrow_mut().take()) {
            return err;
        }
    }
    match package_type(py, &EVAL_ERROR, "EvalError")
        .and_then(|t| t.call1((e.kind().as_str(), e.message())))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

// --- Env ----------------------------------------------------------------------

#[pyclass(frozen, module = "edgeward_native", name = "Env")]
pub struct PyEnv {
    env: cel::Env,
}

fn parse_decl(path: &str, decl: &Bound<'_, PyAny>) -> PyResult<Ty> {
    if let Ok(text) = decl.cast::<PyString>() {
        return Ty::parse(text.to_str()?)
            .map_err(|m| PyValueError::new_err(format!("{path}: {m}")));
    }
    let Ok(fields) = decl.cast::<PyMapping>() else {
        return Err(PyValueError::new_err(format!(
            "{path}: a type must be a string or a dict"
        )));
    };
    let mut object = cel::types::ObjectTy {
        fields: BTreeMap::new(),
        own: None,
    };
    for item in fields.items()?.iter() {
        let (name, ty): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let Ok(name) = name.extract::<String>() else {
            return Err(PyValueError::new_err(format!(
                "{path}: field names must be strings, not {}",
                name.repr()?
            )));
        };
        let sub = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        if name.is_empty() {
            let own = parse_decl(&sub, &ty)?;
            if matches!(own, Ty::Object(_)) || !ty.is_instance_of::<PyString>() {
                return Err(PyValueError::new_err(format!(
                    "{path}: the own value (\"\") must be a type name"
                )));
            }
            object.own = Some(own);
        } else {
            object.fields.insert(name, parse_decl(&sub, &ty)?);
        }
    }
    Ok(Ty::Object(Arc::new(object)))
}

#[pymethods]
impl PyEnv {
    #[new]
    #[pyo3(
        signature = (variables=None, *, secrets=None, max_source_length=None, max_depth=None, max_iterations=None),
        text_signature = "(variables=None, *, secrets=None, max_source_length=4096, max_depth=64, max_iterations=10000)"
    )]
    fn new(
        variables: Option<&Bound<'_, PyAny>>,
        secrets: Option<&Bound<'_, PyAny>>,
        max_source_length: Option<&Bound<'_, PyAny>>,
        max_depth: Option<&Bound<'_, PyAny>>,
        max_iterations: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        guard(|| {
            new_env(
                variables,
                secrets,
                max_source_length,
                max_depth,
                max_iterations,
            )
        })
    }

    fn __repr__(&self) -> String {
        let names = match &self.env.variables {
            None => "any".to_string(),
            Some(v) => format!("{:?}", v.keys().collect::<Vec<_>>()),
        };
        let secrets = match &self.env.secrets {
            None => String::new(),
            Some(t) => format!("secrets=<{} vault(s)>, ", t.vault_count()),
        };
        format!(
            "Env(variables={names}, {secrets}max_source_length={}, max_depth={}, max_iterations={})",
            self.env.max_source_length, self.env.max_depth, self.env.max_iterations
        )
    }
}

/// A private copy of a secrets table (vault -> name -> value), checked; the
/// messages name the vault and secret, never the value.
fn secret_table(secrets: &Bound<'_, PyAny>) -> PyResult<cel::SecretTable> {
    let bad = |m: String| PyValueError::new_err(m);
    let map = secrets
        .cast::<PyMapping>()
        .map_err(|_| bad("secrets must be a mapping of vault names to mappings".into()))?;
    let mut vaults = BTreeMap::new();
    for item in map.items()?.iter() {
        let (vault, entries): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let (Ok(vault_name), Ok(entries)) =
            (vault.extract::<String>(), entries.cast::<PyMapping>())
        else {
            return Err(bad(format!(
                "secrets: vault {} must be a str mapped to a mapping",
                vault.repr()?
            )));
        };
        let mut names = BTreeMap::new();
        for entry in entries.items()?.iter() {
            let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = entry.extract()?;
            let (Ok(n), Ok(v)) = (name.extract::<String>(), value.extract::<String>()) else {
                return Err(bad(format!(
                    "secrets: {}/{} must be a str with a str value",
                    vault.repr()?,
                    name.repr()?
                )));
            };
            names.insert(n, Arc::<str>::from(v));
        }
        vaults.insert(vault_name, names);
    }
    Ok(cel::SecretTable::new(vaults))
}

fn new_env(
    variables: Option<&Bound<'_, PyAny>>,
    secrets: Option<&Bound<'_, PyAny>>,
    max_source_length: Option<&Bound<'_, PyAny>>,
    max_depth: Option<&Bound<'_, PyAny>>,
    max_iterations: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyEnv> {
    let limit = |name: &str, v: Option<&Bound<'_, PyAny>>, default: u64| -> PyResult<u64> {
        let Some(v) = v else {
            return Ok(default);
        };
        match (v.is_instance_of::<PyBool>(), v.extract::<u64>()) {
            (false, Ok(n)) if n >= 1 => Ok(n),
            _ => Err(PyValueError::new_err(format!(
                "{name} must be a positive int, not {}",
                v.repr()?
            ))),
        }
    };
    let defaults = cel::Env::default();
    let max_source_length = limit(
        "max_source_length",
        max_source_length,
        defaults.max_source_length as u64,
    )? as usize;
    let max_depth = limit("max_depth", max_depth, defaults.max_depth as u64)?;
    if max_depth > cel::types::MAX_DEPTH_LIMIT as u64 {
        return Err(PyValueError::new_err(format!(
            "max_depth must be at most {}, not {max_depth}",
            cel::types::MAX_DEPTH_LIMIT
        )));
    }
    let max_depth = max_depth as u32;
    let max_iterations = limit("max_iterations", max_iterations, defaults.max_iterations)?;
    let variables = match variables {
        None => None,
        Some(v) => {
            let map = v
                .cast::<PyMapping>()
                .map_err(|_| PyValueError::new_err("variables must be a mapping"))?;
            let mut decls = BTreeMap::new();
            for item in map.items()?.iter() {
                let (name, ty): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
                let name = match name.extract::<String>() {
                    Ok(n) if is_identifier(&n) => n,
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "variable names must be identifiers, not {}",
                            name.repr()?
                        )))
                    }
                };
                let parsed = parse_decl(&name, &ty)?;
                decls.insert(name, parsed);
            }
            Some(decls)
        }
    };
    let secrets = match secrets {
        Some(s) if !s.is_none() => Some(secret_table(s)?),
        _ => None,
    };
    Ok(PyEnv {
        env: cel::Env {
            variables,
            secrets,
            max_source_length,
            max_depth,
            max_iterations,
        },
    })
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn env_of(env: Option<&Bound<'_, PyEnv>>) -> cel::Env {
    env.map(|e| e.get().env.clone()).unwrap_or_default()
}

// --- Program ------------------------------------------------------------------

/// Python keys of one path, interned once: the root name, then one key per
/// step (`None` for a step that is not a Mapping lookup).
pub(crate) struct PathKeys {
    root: Py<PyString>,
    steps: Vec<Option<Py<PyAny>>>,
}

fn path_keys(py: Python<'_>, paths: &[PathSpec]) -> PyResult<Vec<PathKeys>> {
    paths
        .iter()
        .map(|p| {
            let steps = p
                .steps
                .iter()
                .map(|s| {
                    Ok(match s {
                        Step::Field(f) | Step::ObjField(f) => {
                            Some(PyString::intern(py, f).into_any().unbind())
                        }
                        Step::Own => Some(PyString::intern(py, "").into_any().unbind()),
                        Step::Index(k) => python_key(py, k)?.map(Bound::unbind),
                    })
                })
                .collect::<PyResult<_>>()?;
            Ok(PathKeys {
                root: PyString::intern(py, &p.root).unbind(),
                steps,
            })
        })
        .collect()
}

fn frozenset(
    py: Python<'_>,
    items: &std::collections::BTreeSet<String>,
) -> PyResult<Py<PyFrozenSet>> {
    Ok(PyFrozenSet::new(py, items.iter())?.unbind())
}

fn secret_refs(
    py: Python<'_>,
    items: &std::collections::BTreeSet<cel::SecretRef>,
) -> PyResult<Py<PyFrozenSet>> {
    let pairs = items
        .iter()
        .map(|(v, n)| PyTuple::new(py, [v.as_deref(), n.as_deref()]))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyFrozenSet::new(py, pairs)?.unbind())
}

#[pyclass(frozen, module = "edgeward_native", name = "Program")]
pub struct PyProgram {
    pub(crate) program: cel::Program,
    pub(crate) keys: Vec<PathKeys>,
    #[pyo3(get)]
    source: Py<PyString>,
    #[pyo3(get)]
    references: Py<PyFrozenSet>,
    #[pyo3(get)]
    secrets_read: Py<PyFrozenSet>,
}

#[pymethods]
impl PyProgram {
    /// The static type of the expression's result (`bool`, `string`, `dyn`...).
    #[getter]
    fn result_type(&self) -> String {
        self.program.result_type().to_string()
    }

    /// Evaluates against `activation` (any Mapping, read lazily).
    fn evaluate(&self, py: Python<'_>, activation: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let mut act = PyActivation {
                root: activation,
                keys: &self.keys,
            };
            match self.program.evaluate(&mut act) {
                Ok(v) => to_python(py, &v, 0),
                Err(e) => Err(eval_error(py, e)),
            }
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        guard(|| Ok(format!("Program({})", self.source.bind(py).repr()?)))
    }
}

#[pyfunction]
#[pyo3(signature = (source, *, env=None))]
pub fn compile(
    py: Python<'_>,
    source: &Bound<'_, PyString>,
    env: Option<&Bound<'_, PyEnv>>,
) -> PyResult<PyProgram> {
    guard(|| {
        let text = source.to_str()?;
        let program = cel::compile(text, &env_of(env)).map_err(|e| compile_error(py, text, e))?;
        Ok(PyProgram {
            keys: path_keys(py, program.paths())?,
            references: frozenset(py, program.references())?,
            secrets_read: secret_refs(py, program.secrets_read())?,
            source: source.clone().unbind(),
            program,
        })
    })
}

// --- Template -----------------------------------------------------------------

#[pyclass(frozen, module = "edgeward_native", name = "Template")]
pub struct PyTemplate {
    pub(crate) template: cel::Template,
    pub(crate) keys: Vec<Vec<PathKeys>>,
    #[pyo3(get)]
    source: Py<PyString>,
    #[pyo3(get)]
    references: Py<PyFrozenSet>,
    #[pyo3(get)]
    secrets_read: Py<PyFrozenSet>,
    #[pyo3(get)]
    is_constant: bool,
}

#[pymethods]
impl PyTemplate {
    fn render(&self, py: Python<'_>, activation: &Bound<'_, PyAny>) -> PyResult<String> {
        guard(|| {
            let result = self.template.render_with(|i, program| {
                let mut act = PyActivation {
                    root: activation,
                    keys: &self.keys[i],
                };
                program.evaluate(&mut act)
            });
            result.map_err(|e| eval_error(py, e))
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        guard(|| Ok(format!("Template({})", self.source.bind(py).repr()?)))
    }
}

#[pyfunction]
#[pyo3(signature = (template, *, env=None))]
pub fn interpolate(
    py: Python<'_>,
    template: &Bound<'_, PyString>,
    env: Option<&Bound<'_, PyEnv>>,
) -> PyResult<PyTemplate> {
    guard(|| {
        let text = template.to_str()?;
        let compiled =
            cel::interpolate(text, &env_of(env)).map_err(|e| compile_error(py, text, e))?;
        let keys = compiled
            .programs()
            .map(|p| path_keys(py, p.paths()))
            .collect::<PyResult<_>>()?;
        Ok(PyTemplate {
            keys,
            references: frozenset(py, compiled.references())?,
            secrets_read: secret_refs(py, compiled.secrets_read())?,
            is_constant: compiled.is_constant(),
            source: template.clone().unbind(),
            template: compiled,
        })
    })
}

// --- the activation ---------------------------------------------------------------

pub(crate) struct PyActivation<'a, 'py> {
    pub(crate) root: &'a Bound<'py, PyAny>,
    pub(crate) keys: &'a [PathKeys],
}

/// `mapping[key]`: `Ok(None)` on KeyError (exact dicts skip the exception).
fn lookup<'py>(
    mapping: &Bound<'py, PyAny>,
    key: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = mapping.cast_exact::<PyDict>() {
        return d.get_item(key);
    }
    match mapping.get_item(key) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_instance_of::<PyKeyError>(mapping.py()) => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_mapping(v: &Bound<'_, PyAny>) -> bool {
    v.is_instance_of::<PyDict>()
        || (!v.is_instance_of::<PyString>()
            && !v.is_instance_of::<PyList>()
            && v.cast::<PyMapping>().is_ok())
}

impl cel::Activation for PyActivation<'_, '_> {
    fn resolve(&mut self, path: &PathSpec) -> EvalResult {
        let keys = &self.keys[path.id as usize];
        let py = self.root.py();
        let mut cur = match lookup(self.root, keys.root.bind(py).as_any()) {
            Ok(Some(v)) => v,
            Ok(None) => return Err(cel::program::unbound(&path.root)),
            Err(e) => return Err(host_error(e)),
        };
        for (i, step) in path.steps.iter().enumerate() {
            let key = match &keys.steps[i] {
                Some(k) if is_mapping(&cur) => k.bind(py),
                _ => {
                    // Not a Mapping step: finish on CEL values.
                    if matches!(step, Step::Own) && !is_mapping(&cur) {
                        continue;
                    }
                    let v = from_python(&cur, 0)?;
                    return cel::program::walk_steps(v, &path.steps[i..]);
                }
            };
            cur = match lookup(&cur, key) {
                Ok(Some(v)) => v,
                Ok(None) => {
                    return Err(match step {
                        Step::ObjField(f) => EvalError::no_such_field(f),
                        Step::Own => EvalError::no_such_field("\"\" (own value)"),
                        Step::Field(f) => EvalError::no_such_key(f),
                        Step::Index(k) => EvalError::no_such_key(format!("{k:?}")),
                    })
                }
                Err(e) => return Err(host_error(e)),
            };
        }
        from_python(&cur, 0)
    }
}

/// A Python Mapping seen as a CEL map, read on access.
pub(crate) struct PyLazyMap(pub(crate) Py<PyAny>);

/// The Python key for a CEL key value; `None` if no Python key can match.
fn python_key<'py>(py: Python<'py>, key: &Value) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(Some(match key {
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Uint(u) => u.into_pyobject(py)?.into_any(),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Double(d) if d.fract() == 0.0 && d.is_finite() => {
            if *d >= -cel::value::TWO_POW_63 && *d < cel::value::TWO_POW_63 {
                (*d as i64).into_pyobject(py)?.into_any()
            } else if *d >= 0.0 && *d < cel::value::TWO_POW_64 {
                (*d as u64).into_pyobject(py)?.into_any()
            } else {
                return Ok(None);
            }
        }
        _ => return Ok(None),
    }))
}

impl LazyMap for PyLazyMap {
    fn get(&self, key: &Value) -> EvalResult<Option<Value>> {
        Python::attach(|py| {
            let Some(k) = python_key(py, key).map_err(host_error)? else {
                return Ok(None);
            };
            match lookup(self.0.bind(py), &k) {
                Ok(Some(v)) => from_python(&v, 0).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(host_error(e)),
            }
        })
    }

    fn contains(&self, key: &Value) -> EvalResult<bool> {
        Python::attach(|py| {
            let Some(k) = python_key(py, key).map_err(host_error)? else {
                return Ok(false);
            };
            self.0.bind(py).contains(k).map_err(host_error)
        })
    }

    fn len(&self) -> EvalResult<usize> {
        Python::attach(|py| self.0.bind(py).len().map_err(host_error))
    }

    fn keys(&self) -> EvalResult<Vec<Value>> {
        Python::attach(|py| {
            let mut keys = Vec::new();
            for k in self.0.bind(py).try_iter().map_err(host_error)? {
                keys.push(from_python(&k.map_err(host_error)?, 0)?);
            }
            Ok(keys)
        })
    }
}

// --- conversions ------------------------------------------------------------------

fn range_error(what: &str) -> EvalError {
    EvalError::range(format!("{what} out of range"))
}

/// Host lists are converted eagerly at most this deep below the value read
/// (deeper elements are `limit` errors when read), which bounds the
/// recursion of the conversion. Twice `MAX_VALUE_DEPTH`: an index chain (at
/// most `max_depth` <= 100 levels) followed by a whole-value walk (at most
/// `MAX_VALUE_DEPTH` levels) never reaches it, so the reference twin, which
/// reads lists lazily, gives the same results. Mappings are read lazily,
/// one level per access, and need no bound here.
const MAX_CONVERT_DEPTH: usize = 2 * cel::MAX_VALUE_DEPTH;

/// Converts a Python value read from the activation to a CEL value;
/// `level` counts the lists it sits in below the value read.
pub(crate) fn from_python(v: &Bound<'_, PyAny>, level: usize) -> EvalResult {
    let py = v.py();
    if let Ok(s) = v.cast::<PyString>() {
        // A lone surrogate has no UTF-8 form: not a CEL string.
        return s
            .to_str()
            .map(Value::str)
            .map_err(|_| EvalError::invalid("a string with a lone surrogate is not a CEL string"));
    }
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = v.cast::<PyInt>() {
        if !i.is_exact_instance_of::<PyInt>() && is_uint_class(py, &i.get_type()) {
            return i
                .extract::<u64>()
                .map(Value::Uint)
                .map_err(|_| range_error("uint"));
        }
        return i
            .extract::<i64>()
            .map(Value::Int)
            .map_err(|_| range_error("int"));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Value::Double(f.value()));
    }
    if is_mapping(v) {
        return Ok(Value::Lazy(Arc::new(PyLazyMap(v.clone().unbind()))));
    }
    if let Ok(l) = v.cast::<PyList>() {
        too_deep(level)?;
        return l
            .iter()
            .map(|x| element(&x, level + 1))
            .collect::<EvalResult<Vec<_>>>()
            .map(Value::from);
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        too_deep(level)?;
        return t
            .iter()
            .map(|x| element(&x, level + 1))
            .collect::<EvalResult<Vec<_>>>()
            .map(Value::from);
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Value::Bytes(Arc::from(b.as_bytes())));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(Value::Bytes(Arc::from(b.to_vec())));
    }
    if v.cast::<PyMemoryView>().is_ok() {
        let b: Vec<u8> = v
            .call_method0("tobytes")
            .and_then(|b| b.extract())
            .map_err(host_error)?;
        return Ok(Value::Bytes(Arc::from(b)));
    }
    if let Ok(dt) = v.cast::<PyDateTime>() {
        return datetime_to_timestamp(dt);
    }
    if let Ok(d) = v.cast::<PyDelta>() {
        let nanos = (d.get_days() as i128 * 86_400 + d.get_seconds() as i128) * 1_000_000_000
            + d.get_microseconds() as i128 * 1_000;
        return cel::Duration::new(nanos).map(Value::Duration);
    }
    if let Ok(t) = v.cast::<PyType>() {
        if let Some(ct) = python_type_to_cel(py, t) {
            return Ok(Value::Type(ct));
        }
    }
    Err(EvalError::invalid(format!(
        "a Python value of type {} has no CEL type",
        v.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    )))
}

fn too_deep(level: usize) -> EvalResult<()> {
    if level >= MAX_CONVERT_DEPTH {
        return Err(EvalError::new(
            ErrorKind::Limit,
            format!("a list nested deeper than {MAX_CONVERT_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// A list element: one without a CEL value is an error only when read.
fn element(v: &Bound<'_, PyAny>, level: usize) -> EvalResult {
    match from_python(v, level) {
        Err(e) if !e.is_host() => Ok(Value::Unreadable(Arc::new(e))),
        other => other,
    }
}

fn datetime_to_timestamp(dt: &Bound<'_, PyDateTime>) -> EvalResult {
    // Naive datetimes are UTC; aware ones are converted by their offset.
    let py = dt.py();
    let utc = if dt.get_tzinfo().is_some() {
        dt.call_method1("astimezone", (PyTzInfo::utc(py).map_err(host_error)?,))
            .map_err(host_error)?
    } else {
        dt.clone().into_any()
    };
    let utc = utc.cast::<PyDateTime>().map_err(|e| host_error(e.into()))?;
    Timestamp::from_civil(
        utc.get_year(),
        utc.get_month() as u32,
        utc.get_day() as u32,
        utc.get_hour() as u32,
        utc.get_minute() as u32,
        utc.get_second() as u32,
        utc.get_microsecond() * 1_000,
    )
    .map(Value::Timestamp)
    .ok_or_else(|| range_error("timestamp"))
}

fn python_type_to_cel(py: Python<'_>, t: &Bound<'_, PyType>) -> Option<CelType> {
    let is = |other: &Bound<'_, PyType>| t.is(other);
    Some(if is(&py.get_type::<PyBool>()) {
        CelType::Bool
    } else if is_uint_class(py, t) {
        CelType::Uint
    } else if is(&py.get_type::<PyInt>()) {
        CelType::Int
    } else if is(&py.get_type::<PyFloat>()) {
        CelType::Double
    } else if is(&py.get_type::<PyString>()) {
        CelType::String
    } else if is(&py.get_type::<PyBytes>()) {
        CelType::Bytes
    } else if is(&py.get_type::<PyList>()) {
        CelType::List
    } else if is(&py.get_type::<PyDict>()) {
        CelType::Map
    } else if is(&py.get_type::<PyType>()) {
        CelType::Type
    } else if t.is(py.None().bind(py).get_type()) {
        CelType::Null
    } else if DATETIME
        .import(py, "datetime", "datetime")
        .map(|d| t.is(d))
        .unwrap_or(false)
    {
        CelType::Timestamp
    } else if TIMEDELTA
        .import(py, "datetime", "timedelta")
        .map(|d| t.is(d))
        .unwrap_or(false)
    {
        CelType::Duration
    } else {
        return None;
    })
}

/// Converts a CEL result to Python; `level` counts the lists and maps it
/// sits in (at most `MAX_VALUE_DEPTH`, as every walk of a whole value).
pub(crate) fn to_python(py: Python<'_>, v: &Value, level: usize) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Value::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Value::Uint(u) => uint_type(py)?.call1((*u,))?.unbind(),
        Value::Double(d) => PyFloat::new(py, *d).into_any().unbind(),
        Value::String(s) => PyString::new(py, s).into_any().unbind(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any().unbind(),
        Value::List(items) => {
            cel::check_depth(level).map_err(|e| eval_error(py, e))?;
            let list = PyList::empty(py);
            for item in items.iter() {
                list.append(to_python(py, item, level + 1)?)?;
            }
            list.into_any().unbind()
        }
        Value::Map(_) | Value::Lazy(_) => {
            cel::check_depth(level).map_err(|e| eval_error(py, e))?;
            let dict = PyDict::new(py);
            for (k, val) in v.map_entries().map_err(|e| eval_error(py, e))? {
                dict.set_item(
                    to_python(py, &k, level + 1)?,
                    to_python(py, &val, level + 1)?,
                )?;
            }
            dict.into_any().unbind()
        }
        Value::Timestamp(t) => {
            let micros = t.nanos / 1_000;
            let epoch = DATETIME.import(py, "datetime", "datetime")?.call1((
                1970,
                1,
                1,
                0,
                0,
                0,
                0,
                PyTzInfo::utc(py)?,
            ))?;
            let days = t.secs.div_euclid(86_400);
            let secs = t.secs.rem_euclid(86_400);
            let offset = PyDelta::new(py, days as i32, secs as i32, micros as i32, true)?;
            epoch.call_method1("__add__", (offset,))?.unbind()
        }
        Value::Duration(d) => {
            // Truncate toward zero to microseconds.
            let micros = d.nanos / 1_000;
            let days = micros.div_euclid(86_400_000_000);
            let rest = micros.rem_euclid(86_400_000_000);
            PyDelta::new(
                py,
                days as i32,
                (rest / 1_000_000) as i32,
                (rest % 1_000_000) as i32,
                true,
            )?
            .into_any()
            .unbind()
        }
        Value::Type(t) => cel_type_to_python(py, t)?,
        Value::Unreadable(e) => return Err(eval_error(py, (**e).clone())),
    })
}

fn cel_type_to_python(py: Python<'_>, t: &CelType) -> PyResult<Py<PyAny>> {
    Ok(match t {
        CelType::Bool => py.get_type::<PyBool>().into_any().unbind(),
        CelType::Int => py.get_type::<PyInt>().into_any().unbind(),
        CelType::Uint => uint_type(py)?.clone().into_any().unbind(),
        CelType::Double => py.get_type::<PyFloat>().into_any().unbind(),
        CelType::String => py.get_type::<PyString>().into_any().unbind(),
        CelType::Bytes => py.get_type::<PyBytes>().into_any().unbind(),
        CelType::List => py.get_type::<PyList>().into_any().unbind(),
        CelType::Map => py.get_type::<PyDict>().into_any().unbind(),
        CelType::Type => py.get_type::<PyType>().into_any().unbind(),
        CelType::Null => py.None().bind(py).get_type().into_any().unbind(),
        CelType::Timestamp => DATETIME
            .import(py, "datetime", "datetime")?
            .clone()
            .into_any()
            .unbind(),
        CelType::Duration => TIMEDELTA
            .import(py, "datetime", "timedelta")?
            .clone()
            .into_any()
            .unbind(),
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEnv>()?;
    m.add_class::<PyProgram>()?;
    m.add_class::<PyTemplate>()?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(interpolate, m)?)?;
    Ok(())
}

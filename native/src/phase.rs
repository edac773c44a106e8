//! The native phase runner: one call runs a Traffic Policy phase's rules on
//! a request (or response) head, as `edgeward.policy.engine.run_rules`
//! does, for the rules and actions it knows (see docs/policy.md, "The
//! native phase runner").
//!
//! The CEL variables a rule reads are built here from the head and the
//! connection (`req.method`, `req.url.path`, `req.headers`, `conn.client_ip`,
//! `res.status_code`...); any other variable (`req.cookies`,
//! `req.user_agent.is_bot`, `endpoint.*`, `time.*`, `vars.*`) is asked of
//! the caller's `fallback(root)` once per root and read as `Program.evaluate`
//! reads a Mapping. Actions without I/O run here (`Action`); one that
//! answers (deny, a refused rate-limit or basic-auth...) returns its answer
//! for the engine to build the decision from, a `log` returns its metadata
//! for the engine to emit; at anything else (an action that needs I/O, an
//! expression that fails, a header value that is not allowed, a credential
//! only Python decodes) the runner stops and returns where the Python
//! engine resumes the phase, so its decisions, events and error answers
//! have one implementation.
//!
//! In timing mode (`PhaseRunner(..., timed=True)`, for `edgeward bench
//! policy`) each run also adds the time and calls of each rule's
//! expressions and of each step it performs to counters (`Times`); off, the
//! same loop runs with a clock that reads nothing (`Untimed`).
use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use edgeward_core::basic_auth;
use edgeward_core::cel::{self, EvalError, EvalResult, Map, PathSpec, Step, Value};
use edgeward_core::ipnet::Addr;
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::cel::{
    eval_error, from_python, host_error, to_python, PathKeys, PyActivation, PyLazyMap, PyProgram,
    PyTemplate,
};
use crate::guard::guard;
use crate::ipnet::IpPolicy;
use crate::ratelimit::RateLimitStore;

enum HeaderValue {
    Constant(Py<PyBytes>),
    Template(Py<PyTemplate>),
}

enum Action {
    AddHeaders {
        headers: Vec<(Py<PyBytes>, HeaderValue)>,
        sets_host: bool,
    },
    RemoveHeaders {
        names: Vec<Vec<u8>>,
    },
    RestrictIps {
        policy: Py<IpPolicy>,
        enforce: bool,
    },
    /// The bucket check of `rate-limit` (keys whose values are strings).
    RateLimit {
        store: Py<RateLimitStore>,
        capacity: u64,
        window: f64,
        keys: Vec<Py<PyProgram>>,
        enforce: bool,
    },
    /// `deny`: the engine builds its answer.
    Deny,
    /// `custom-response`: the body and header values rendered here.
    CustomResponse {
        body: Option<Py<PyTemplate>>,
        headers: Vec<(Py<PyBytes>, HeaderValue)>,
    },
    /// `redirect`: the `to` URL rendered, rewritten by the action's own
    /// regex code (`rewrite(url, to)`, None without `from`), the headers
    /// rendered here.
    Redirect {
        to: UrlText,
        rewrite: Option<Py<PyAny>>,
        headers: Vec<(Py<PyBytes>, HeaderValue)>,
    },
    /// `url-rewrite`: as `redirect`, on the URL forwarded so far; the new
    /// URL is checked and split by the action's own code (`split(url)`:
    /// `(target, authority)`, None when the action refuses it).
    UrlRewrite {
        to: UrlText,
        rewrite: Option<Py<PyAny>>,
        split: Py<PyAny>,
    },
    /// `set-vars`: each entry evaluated here, in order, into `vars`.
    SetVars {
        entries: Vec<(Py<PyString>, VarValue)>,
    },
    /// `basic-auth` with credentials known at load (their SHA-256
    /// digests): the check here, a refusal answered by the engine.
    BasicAuth {
        entries: Vec<basic_auth::Entry>,
        enforce: bool,
    },
    /// `log`: the metadata evaluated here; the engine emits the event
    /// from it when the runner returns (`Wire.logged`).
    Log {
        metadata: VarValue,
    },
    /// Run by the Python engine: the runner stops here.
    Python,
}

/// A `set-vars` value (`values.compile_value`'s shapes).
enum VarValue {
    Constant(Py<PyAny>),
    Expression(Py<PyProgram>),
    Text(Py<PyTemplate>),
    Items(Vec<VarValue>),
    Fields(Vec<(Py<PyAny>, VarValue)>),
}

/// `("constant", value)`, `("expression", Program)`, `("text",
/// Template)`, `("items", [value])` or `("fields", [(key, value)])`.
fn var_value_of(item: &Bound<'_, PyAny>) -> PyResult<VarValue> {
    let tuple = item.cast::<PyTuple>()?;
    let kind: String = tuple.get_item(0)?.extract()?;
    let arg = tuple.get_item(1)?;
    Ok(match kind.as_str() {
        "constant" => VarValue::Constant(arg.unbind()),
        "expression" => VarValue::Expression(arg.cast_into::<PyProgram>()?.unbind()),
        "text" => VarValue::Text(arg.cast_into::<PyTemplate>()?.unbind()),
        "items" => VarValue::Items(
            arg.try_iter()?
                .map(|v| var_value_of(&v?))
                .collect::<PyResult<_>>()?,
        ),
        "fields" => {
            let mut fields = Vec::new();
            for pair in arg.try_iter()? {
                let pair = pair?;
                let pair = pair.cast::<PyTuple>()?;
                fields.push((
                    pair.get_item(0)?.unbind(),
                    var_value_of(&pair.get_item(1)?)?,
                ));
            }
            VarValue::Fields(fields)
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown set-vars value {other:?}"
            )))
        }
    })
}

/// A URL-valued template (`expressions.UrlTemplate`): text kept as
/// written, each interpolated value passed through `escape`.
struct UrlText {
    parts: Vec<UrlPart>,
    escape: Py<PyAny>,
}

enum UrlPart {
    Text(String),
    Value(Py<PyTemplate>),
}

struct Rule {
    condition: Option<Py<PyProgram>>,
    chain: Option<(Py<PyProgram>, usize)>,
    steps: Vec<Action>,
}

/// One phase of one compiled policy; see `edgeward_native.PhaseRunner`.
#[pyclass(frozen, module = "edgeward_native", name = "PhaseRunner")]
pub struct PhaseRunner {
    rules: Vec<Rule>,
    /// `user_agent(raw)`: the parsed `req.user_agent` fields (a Mapping).
    user_agent: Option<Py<PyAny>>,
    /// The counters of timing mode; None: off.
    times: Option<Times>,
}

// --- timing mode ----------------------------------------------------------------

/// Nanoseconds and calls, added to by runs (atomics: no lock is held
/// while a run calls back into Python).
#[derive(Default)]
struct Cost {
    ns: AtomicU64,
    calls: AtomicU64,
}

impl Cost {
    fn add(&self, since: Instant, call: bool) {
        let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.ns.fetch_add(ns, Ordering::Relaxed);
        self.calls.fetch_add(u64::from(call), Ordering::Relaxed);
    }

    fn read(&self) -> (u64, u64) {
        (
            self.ns.load(Ordering::Relaxed),
            self.calls.load(Ordering::Relaxed),
        )
    }

    fn reset(&self) {
        self.ns.store(0, Ordering::Relaxed);
        self.calls.store(0, Ordering::Relaxed);
    }
}

/// Per rule: its expressions (the chain it starts, then its condition),
/// and each of its steps.
struct Times(Vec<(Cost, Vec<Cost>)>);

impl Times {
    fn for_rules(rules: &[Rule]) -> Self {
        Times(
            rules
                .iter()
                .map(|r| {
                    (
                        Cost::default(),
                        r.steps.iter().map(|_| Cost::default()).collect(),
                    )
                })
                .collect(),
        )
    }
}

/// Where a run's time goes: the hooks of the rule loop.
trait Clock {
    type Mark;
    fn start(&self) -> Self::Mark;
    /// Rule `rule`'s expressions were tested (once).
    fn expressions(&self, rule: usize, since: Self::Mark);
    /// Step `step` of rule `rule` ran; `performed`: by the runner (not
    /// left to the engine), which counts a call.
    fn step(&self, rule: usize, step: usize, since: Self::Mark, performed: bool);
}

/// Timing mode off: no clock read, nothing counted.
struct Untimed;

impl Clock for Untimed {
    type Mark = ();
    #[inline(always)]
    fn start(&self) {}
    #[inline(always)]
    fn expressions(&self, _: usize, _: ()) {}
    #[inline(always)]
    fn step(&self, _: usize, _: usize, _: (), _: bool) {}
}

impl Clock for Times {
    type Mark = Instant;
    fn start(&self) -> Instant {
        Instant::now()
    }
    fn expressions(&self, rule: usize, since: Instant) {
        self.0[rule].0.add(since, true);
    }
    fn step(&self, rule: usize, step: usize, since: Instant, performed: bool) {
        self.0[rule].1[step].add(since, performed);
    }
}

/// Per rule, `((ns, calls) of its expressions, [(ns, calls) of each step])`.
type Timings = Vec<((u64, u64), Vec<(u64, u64)>)>;

fn step_of(item: &Bound<'_, PyAny>) -> PyResult<Action> {
    let tuple = item.cast::<PyTuple>()?;
    let kind: String = tuple.get_item(0)?.extract()?;
    Ok(match kind.as_str() {
        "add-headers" => Action::AddHeaders {
            headers: header_values(&tuple.get_item(1)?)?,
            sets_host: tuple.get_item(2)?.extract()?,
        },
        "remove-headers" => {
            let mut names = Vec::new();
            for name in tuple.get_item(1)?.try_iter()? {
                names.push(
                    name?
                        .cast_into::<PyBytes>()?
                        .as_bytes()
                        .to_ascii_lowercase(),
                );
            }
            Action::RemoveHeaders { names }
        }
        "restrict-ips" => Action::RestrictIps {
            policy: tuple.get_item(1)?.cast_into::<IpPolicy>()?.unbind(),
            enforce: tuple.get_item(2)?.extract()?,
        },
        "rate-limit" => Action::RateLimit {
            store: tuple.get_item(1)?.cast_into::<RateLimitStore>()?.unbind(),
            capacity: tuple.get_item(2)?.extract()?,
            window: tuple.get_item(3)?.extract()?,
            keys: tuple
                .get_item(4)?
                .try_iter()?
                .map(|p| Ok(p?.cast_into::<PyProgram>()?.unbind()))
                .collect::<PyResult<_>>()?,
            enforce: tuple.get_item(5)?.extract()?,
        },
        "deny" => Action::Deny,
        "custom-response" => {
            let body = tuple.get_item(1)?;
            Action::CustomResponse {
                body: if body.is_none() {
                    None
                } else {
                    Some(body.cast_into::<PyTemplate>()?.unbind())
                },
                headers: header_values(&tuple.get_item(2)?)?,
            }
        }
        "redirect" => {
            let rewrite = tuple.get_item(3)?;
            Action::Redirect {
                to: url_text(&tuple.get_item(1)?, &tuple.get_item(2)?)?,
                rewrite: if rewrite.is_none() {
                    None
                } else {
                    Some(rewrite.unbind())
                },
                headers: header_values(&tuple.get_item(4)?)?,
            }
        }
        "url-rewrite" => {
            let rewrite = tuple.get_item(3)?;
            Action::UrlRewrite {
                to: url_text(&tuple.get_item(1)?, &tuple.get_item(2)?)?,
                rewrite: if rewrite.is_none() {
                    None
                } else {
                    Some(rewrite.unbind())
                },
                split: tuple.get_item(4)?.unbind(),
            }
        }
        "set-vars" => {
            let mut entries = Vec::new();
            for pair in tuple.get_item(1)?.try_iter()? {
                let pair = pair?;
                let pair = pair.cast::<PyTuple>()?;
                entries.push((
                    pair.get_item(0)?.cast_into::<PyString>()?.unbind(),
                    var_value_of(&pair.get_item(1)?)?,
                ));
            }
            Action::SetVars { entries }
        }
        "basic-auth" => {
            let mut entries = Vec::new();
            for pair in tuple.get_item(1)?.try_iter()? {
                let pair = pair?;
                let pair = pair.cast::<PyTuple>()?;
                let digest = |k| -> PyResult<[u8; 32]> {
                    let item = pair.get_item(k)?;
                    let bytes = item.cast::<PyBytes>()?;
                    bytes
                        .as_bytes()
                        .try_into()
                        .map_err(|_| PyValueError::new_err("a basic-auth digest is 32 bytes"))
                };
                entries.push((digest(0)?, digest(1)?));
            }
            Action::BasicAuth {
                entries,
                enforce: tuple.get_item(2)?.extract()?,
            }
        }
        "log" => Action::Log {
            metadata: var_value_of(&tuple.get_item(1)?)?,
        },
        "python" => Action::Python,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown native step {other:?}"
            )))
        }
    })
}

/// `[str | Template]` and the escape function of interpolated values.
fn url_text(parts: &Bound<'_, PyAny>, escape: &Bound<'_, PyAny>) -> PyResult<UrlText> {
    let mut out = Vec::new();
    for part in parts.try_iter()? {
        let part = part?;
        out.push(if let Ok(text) = part.cast::<PyString>() {
            UrlPart::Text(text.to_str()?.to_owned())
        } else {
            UrlPart::Value(part.cast_into::<PyTemplate>()?.unbind())
        });
    }
    Ok(UrlText {
        parts: out,
        escape: escape.clone().unbind(),
    })
}

/// `[(name, bytes | Template)]`.
fn header_values(list: &Bound<'_, PyAny>) -> PyResult<Vec<(Py<PyBytes>, HeaderValue)>> {
    let mut headers = Vec::new();
    for pair in list.try_iter()? {
        let pair = pair?;
        let pair = pair.cast::<PyTuple>()?;
        let name = pair.get_item(0)?.cast_into::<PyBytes>()?.unbind();
        let value = pair.get_item(1)?;
        let value = if let Ok(b) = value.cast::<PyBytes>() {
            HeaderValue::Constant(b.clone().unbind())
        } else {
            HeaderValue::Template(value.cast_into::<PyTemplate>()?.unbind())
        };
        headers.push((name, value));
    }
    Ok(headers)
}

fn rule_of(item: &Bound<'_, PyAny>) -> PyResult<Rule> {
    let tuple = item.cast::<PyTuple>()?;
    let condition = tuple.get_item(0)?;
    let chain = tuple.get_item(1)?;
    let chain_end: usize = tuple.get_item(2)?.extract()?;
    let steps = tuple
        .get_item(3)?
        .try_iter()?
        .map(|s| step_of(&s?))
        .collect::<PyResult<_>>()?;
    Ok(Rule {
        condition: if condition.is_none() {
            None
        } else {
            Some(condition.cast_into::<PyProgram>()?.unbind())
        },
        chain: if chain.is_none() {
            None
        } else {
            Some((chain.cast_into::<PyProgram>()?.unbind(), chain_end))
        },
        steps,
    })
}

type Header<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>);
/// A header as read, with the list item it came from.
type Item<'py> = (Header<'py>, Bound<'py, PyAny>);

fn headers_of<'py>(list: &Bound<'py, PyAny>) -> PyResult<Vec<Item<'py>>> {
    let mut out = Vec::new();
    for item in list.try_iter()? {
        let item = item?;
        let pair = item.cast::<PyTuple>()?;
        if pair.len() != 2 {
            return Err(PyTypeError::new_err("a header is a (name, value) pair"));
        }
        let name = pair.get_item(0)?.cast_into::<PyBytes>()?;
        let value = pair.get_item(1)?.cast_into::<PyBytes>()?;
        out.push(((name, value), item));
    }
    Ok(out)
}

/// What the caller gets back: the index of the rule to resume at (the
/// number of rules: the phase is done), the step in it (-1: test its
/// expressions), the new header list (None: unchanged), the new
/// authority and target (None: unchanged), the answer of that step when
/// the runner performed it (None: the engine runs the step), the
/// phase's `vars` (None: none set or read), and the `log` steps it ran as
/// `[(rule, step, metadata)]` in order (None: none), whose events the
/// engine emits.
type Outcome = (
    usize,
    i64,
    Option<Py<PyList>>,
    Option<Py<PyBytes>>,
    Option<Py<PyBytes>>,
    Option<Py<PyAny>>,
    Option<Py<PyAny>>,
    Option<Py<PyList>>,
);

#[pymethods]
impl PhaseRunner {
    #[new]
    #[pyo3(signature = (rules, *, user_agent=None, timed=false))]
    fn new(
        rules: &Bound<'_, PyAny>,
        user_agent: Option<&Bound<'_, PyAny>>,
        timed: bool,
    ) -> PyResult<Self> {
        guard(|| {
            let rules: Vec<Rule> = rules
                .try_iter()?
                .map(|r| rule_of(&r?))
                .collect::<PyResult<_>>()?;
            Ok(PhaseRunner {
                times: timed.then(|| Times::for_rules(&rules)),
                rules,
                user_agent: user_agent.map(|u| u.clone().unbind()),
            })
        })
    }

    /// Timing mode's counters since the last reset; None when off.
    fn timings(&self) -> Option<Timings> {
        let times = self.times.as_ref()?;
        Some(
            times
                .0
                .iter()
                .map(|(expressions, steps)| {
                    (expressions.read(), steps.iter().map(Cost::read).collect())
                })
                .collect(),
        )
    }

    fn reset_timings(&self) {
        for (expressions, steps) in self.times.iter().flat_map(|t| &t.0) {
            expressions.reset();
            steps.iter().for_each(Cost::reset);
        }
    }

    #[getter]
    fn rule_count(&self) -> usize {
        self.rules.len()
    }

    #[pyo3(signature = (head, conn, fallback, response=None, *, clock=None))]
    fn run(
        &self,
        py: Python<'_>,
        head: &Bound<'_, PyAny>,
        conn: &Bound<'_, PyAny>,
        fallback: &Bound<'_, PyAny>,
        response: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Outcome> {
        guard(|| {
            let user_agent = self.user_agent.as_ref().map(|u| u.bind(py).clone());
            let mut wire = Wire::new(py, head, conn, fallback, response, user_agent)?;
            wire.clock = clock.cloned();
            match &self.times {
                None => self.run_rules(py, &mut wire, &Untimed),
                Some(times) => self.run_rules(py, &mut wire, times),
            }
        })
    }

    fn __repr__(&self) -> String {
        let timed = if self.times.is_some() { ", timed" } else { "" };
        format!("<PhaseRunner of {} rules{timed}>", self.rules.len())
    }
}

enum Stop {
    Resume(usize, i64),
    /// The step at (rule, step) answered: the engine turns this into its decision.
    Answer(usize, i64, Py<PyAny>),
    Raise(PyErr),
}

/// What a step did: went on, left it to the engine, answered, or logged
/// (went on, the engine emits the event of this metadata).
enum Done<'py> {
    Next,
    Engine,
    Answer(Py<PyAny>),
    Logged(Bound<'py, PyAny>),
}

/// What testing a rule's expressions found: the first rule whose
/// expressions hold (itself, or one later in the chain it starts), or the
/// rule to test next.
enum Tested {
    Holds(usize),
    From(usize),
}

/// Tests rule `i`'s expressions (and the chain it starts).
fn test<'py>(py: Python<'py>, wire: &mut Wire<'py>, rule: &Rule, i: usize) -> Result<Tested, Stop> {
    if let Some((chain, end)) = &rule.chain {
        let program = chain.get();
        match wire.evaluate(py, &program.program, &program.keys) {
            Ok(Value::Int(first)) if first >= 0 => {
                let first = first as usize;
                if first >= *end {
                    return Ok(Tested::From(first));
                }
                return Ok(Tested::Holds(first));
            }
            Err(e) if e.is_host() => return Err(Stop::Raise(eval_error(py, e))),
            _ => {} // rule by rule, from this one
        }
    }
    let Some(condition) = &rule.condition else {
        return Ok(Tested::Holds(i));
    };
    let program = condition.get();
    match wire.evaluate(py, &program.program, &program.keys) {
        Ok(Value::Bool(true)) => Ok(Tested::Holds(i)),
        Ok(Value::Bool(false)) => Ok(Tested::From(i + 1)),
        Err(e) if e.is_host() => Err(Stop::Raise(eval_error(py, e))),
        _ => Err(Stop::Resume(i, -1)), // the engine reports it
    }
}

impl From<PyErr> for Stop {
    fn from(e: PyErr) -> Self {
        Stop::Raise(e)
    }
}

impl PhaseRunner {
    fn run_rules<'py>(
        &self,
        py: Python<'py>,
        wire: &mut Wire<'py>,
        clock: &impl Clock,
    ) -> PyResult<Outcome> {
        let stop = match self.rules_until_stop(py, wire, clock) {
            Ok(()) => Stop::Resume(self.rules.len(), -1),
            Err(stop) => stop,
        };
        let (rule, step, answer) = match stop {
            Stop::Raise(e) => return Err(e),
            Stop::Resume(rule, step) => (rule, step, None),
            Stop::Answer(rule, step, answer) => (rule, step, Some(answer)),
        };
        let headers = match wire.edited.take() {
            None => None,
            Some(items) => Some(PyList::new(py, items.into_iter().map(|(_, t)| t))?.unbind()),
        };
        let vars = match &wire.py_roots {
            None => None,
            Some(roots) => roots.get_item(intern!(py, "vars"))?,
        };
        let logged = match wire.logged.take() {
            None => None,
            Some(items) => Some(PyList::new(py, items)?.unbind()),
        };
        Ok((
            rule,
            step,
            headers,
            wire.authority.take().map(Bound::unbind),
            wire.target.take().map(Bound::unbind),
            answer,
            vars.map(Bound::unbind),
            logged,
        ))
    }

    fn rules_until_stop<'py>(
        &self,
        py: Python<'py>,
        wire: &mut Wire<'py>,
        clock: &impl Clock,
    ) -> Result<(), Stop> {
        let rules = &self.rules;
        let n = rules.len();
        let mut i = 0;
        loop {
            // the first rule from i whose expressions hold (engine.next_match)
            let found = loop {
                if i >= n {
                    break None;
                }
                let mark = clock.start();
                let tested = test(py, wire, &rules[i], i);
                clock.expressions(i, mark);
                match tested? {
                    Tested::Holds(first) => break Some(first),
                    Tested::From(next) => i = next,
                }
            };
            let Some(found) = found else {
                return Ok(());
            };
            for (j, step) in rules[found].steps.iter().enumerate() {
                let mark = clock.start();
                let done = self.step(py, wire, step);
                clock.step(found, j, mark, !matches!(done, Ok(Done::Engine)));
                match done? {
                    Done::Next => {}
                    Done::Engine => return Err(Stop::Resume(found, j as i64)),
                    Done::Answer(answer) => return Err(Stop::Answer(found, j as i64, answer)),
                    Done::Logged(metadata) => {
                        let at = PyTuple::new(
                            py,
                            [
                                PyInt::new(py, found).into_any(),
                                PyInt::new(py, j).into_any(),
                                metadata,
                            ],
                        )?;
                        wire.logged.get_or_insert_with(Vec::new).push(at);
                    }
                }
            }
            i = found + 1;
        }
    }

    /// Runs one action: go on, let the engine run it (and the rest), or
    /// stop with its answer.
    fn step<'py>(
        &self,
        py: Python<'py>,
        wire: &mut Wire<'py>,
        step: &Action,
    ) -> Result<Done<'py>, Stop> {
        let go_on = |next: bool| if next { Done::Next } else { Done::Engine };
        match step {
            Action::Python => Ok(Done::Engine),
            Action::Log { metadata } => match var_value(py, wire, metadata)? {
                Some(metadata) => Ok(Done::Logged(metadata)),
                None => Ok(Done::Engine), // the engine evaluates it again and reports it
            },
            Action::BasicAuth { entries, enforce } => {
                // `ctx.received`: the headers the client sent
                let values: Vec<&[u8]> = wire
                    .req_headers()?
                    .iter()
                    .filter(|((name, _), _)| name.as_bytes() == b"authorization")
                    .map(|((_, value), _)| value.as_bytes())
                    .collect();
                let (presented, username) = match basic_auth::parse(&values) {
                    basic_auth::Parsed::Unsure => return Ok(Done::Engine),
                    basic_auth::Parsed::Absent => (false, None),
                    basic_auth::Parsed::Malformed => (true, None),
                    basic_auth::Parsed::Credentials(username, password) => {
                        if basic_auth::check(&username, &password, entries) {
                            return Ok(Done::Next); // its results: recorded only when read
                        }
                        (true, Some(username))
                    }
                };
                if !enforce {
                    return Ok(Done::Next);
                }
                let username = match username {
                    None => py.None().into_bound(py),
                    Some(u) => PyBytes::new(py, &u).into_any(),
                };
                let presented = PyBool::new(py, presented).to_owned().into_any();
                let answer = PyTuple::new(py, [presented, username])?;
                Ok(Done::Answer(answer.into_any().unbind()))
            }
            Action::RestrictIps { policy, enforce } => {
                let allowed = Addr::parse_ascii(wire.client_ip()?.as_bytes())
                    .map(|a| policy.get().policy.decide(a))
                    .unwrap_or(false);
                Ok(go_on(allowed || !enforce))
            }
            Action::RemoveHeaders { names } => {
                let edited = wire.edited_headers()?;
                edited.retain(|(name, _)| !names.contains(&name.as_bytes().to_ascii_lowercase()));
                Ok(Done::Next)
            }
            Action::RateLimit {
                store,
                capacity,
                window,
                keys,
                enforce,
            } => {
                let Some(key) = bucket_key(py, wire, keys)? else {
                    return Ok(Done::Engine);
                };
                let Some(now) = wire.now()? else {
                    return Ok(Done::Engine);
                };
                match store.get().hit_text(&key, *capacity, *window, now) {
                    Some(wait) if *enforce => {
                        Ok(Done::Answer(PyFloat::new(py, wait).into_any().unbind()))
                    }
                    _ => Ok(Done::Next),
                }
            }
            Action::Deny => Ok(Done::Answer(PyTuple::empty(py).into_any().unbind())),
            Action::UrlRewrite { to, rewrite, split } => {
                let Some(to) = render_url(py, wire, to)? else {
                    return Ok(Done::Engine);
                };
                // the URL forwarded so far (`full_url(ctx.request)`)
                let authority = match &wire.authority {
                    Some(a) => latin1(a.as_bytes()),
                    None => wire.req()?.authority.clone(),
                };
                let target = match &wire.target {
                    Some(t) => latin1(t.as_bytes()),
                    None => wire.req()?.target.clone(),
                };
                let url = format!("{}://{authority}{target}", wire.req()?.scheme);
                let new = match rewritten(py, rewrite, &url, to)? {
                    Some(new) if new != url => new,
                    _ => return Ok(Done::Next), // results: as redirect's
                };
                let parts = split.bind(py).call1((new,))?;
                if parts.is_none() {
                    return Ok(Done::Engine); // the engine's error
                }
                wire.target = Some(
                    parts
                        .get_item(0)?
                        .cast_into::<PyBytes>()
                        .map_err(PyErr::from)?,
                );
                wire.authority = Some(
                    parts
                        .get_item(1)?
                        .cast_into::<PyBytes>()
                        .map_err(PyErr::from)?,
                );
                Ok(Done::Next)
            }
            Action::SetVars { entries } => {
                // into a copy, which later entries read: a failing entry
                // puts the phase's `vars` back as they were
                let roots = wire.py_roots().clone();
                let key = intern!(py, "vars");
                let before = roots.get_item(key)?;
                let vars = match &before {
                    Some(v) => v.cast::<PyDict>().map_err(PyErr::from)?.copy()?,
                    None => PyDict::new(py),
                };
                roots.set_item(key, &vars)?;
                for (name, value) in entries {
                    match var_value(py, wire, value)? {
                        Some(v) => vars.set_item(name.bind(py), v)?,
                        None => {
                            match &before {
                                Some(v) => roots.set_item(key, v)?,
                                None => roots.del_item(key)?,
                            }
                            return Ok(Done::Engine);
                        }
                    }
                }
                Ok(Done::Next)
            }
            Action::Redirect {
                to,
                rewrite,
                headers,
            } => {
                // as `Redirect.apply`: `to`, the rewrite of the URL the
                // client sent, then the headers
                let Some(to) = render_url(py, wire, to)? else {
                    return Ok(Done::Engine);
                };
                let r = wire.req()?;
                let url = format!("{}://{}{}", r.scheme, r.authority, r.target);
                let Some(location) = rewritten(py, rewrite, &url, to)? else {
                    return Ok(Done::Next); // its results: recorded only when read (never here)
                };
                if location == url {
                    return Ok(Done::Next); // its results: recorded only when read (never here)
                }
                if location.contains(['\r', '\n', '\0']) {
                    return Ok(Done::Engine); // the engine's error
                }
                let Some(added) = render_headers(py, wire, headers)? else {
                    return Ok(Done::Engine);
                };
                let answer = PyTuple::new(
                    py,
                    [
                        PyString::new(py, &location).into_any(),
                        header_list(py, added)?.into_any(),
                    ],
                )?;
                Ok(Done::Answer(answer.into_any().unbind()))
            }
            Action::CustomResponse { body, headers } => {
                // in the engine's order: the body, then each header
                let text = match body {
                    None => String::new(),
                    Some(t) => match render(py, wire, t.get())? {
                        Some(text) => text,
                        None => return Ok(Done::Engine),
                    },
                };
                let Some(added) = render_headers(py, wire, headers)? else {
                    return Ok(Done::Engine);
                };
                let added = header_list(py, added)?;
                let answer =
                    PyTuple::new(py, [PyString::new(py, &text).into_any(), added.into_any()])?;
                Ok(Done::Answer(answer.into_any().unbind()))
            }
            Action::AddHeaders { headers, sets_host } => {
                // every value first: a failing one leaves the head unchanged
                let Some(added) = render_headers(py, wire, headers)? else {
                    return Ok(Done::Engine);
                };
                let response = wire.response.is_some();
                for (name, value) in added {
                    if *sets_host && !response && name.as_bytes() == b"host" {
                        wire.authority = Some(value);
                        wire.edited_headers()?
                            .retain(|(n, _)| !n.as_bytes().eq_ignore_ascii_case(b"host"));
                    } else {
                        let tuple = PyTuple::new(py, [name.as_any(), value.as_any()])?;
                        wire.edited_headers()?.push((name, tuple.into_any()));
                    }
                }
                Ok(Done::Next)
            }
        }
    }
}

/// `Rewrite.apply`'s URL: `to` without `from`, else `url` with every
/// match of `from` replaced (`rewrite(url, to)`); None: nothing matched.
fn rewritten(
    py: Python<'_>,
    rewrite: &Option<Py<PyAny>>,
    url: &str,
    to: String,
) -> PyResult<Option<String>> {
    let Some(rewrite) = rewrite else {
        return Ok(Some(to));
    };
    let out = rewrite.bind(py).call1((url, to))?;
    if out.get_item(1)?.is_empty()? {
        return Ok(None);
    }
    Ok(Some(out.get_item(0)?.extract()?))
}

/// A `set-vars` value as the engine makes it; None: it fails (the engine
/// evaluates it again and reports the error).
fn var_value<'py>(
    py: Python<'py>,
    wire: &mut Wire<'py>,
    value: &VarValue,
) -> Result<Option<Bound<'py, PyAny>>, Stop> {
    Ok(Some(match value {
        VarValue::Constant(v) => v.bind(py).clone(),
        VarValue::Expression(program) => {
            let program = program.get();
            match wire.evaluate(py, &program.program, &program.keys) {
                Ok(v) => match to_python(py, &v, 0) {
                    Ok(v) => v.into_bound(py),
                    Err(_) => return Ok(None),
                },
                Err(e) if e.is_host() => return Err(Stop::Raise(eval_error(py, e))),
                Err(_) => return Ok(None),
            }
        }
        VarValue::Text(t) => match render(py, wire, t.get())? {
            Some(text) => PyString::new(py, &text).into_any(),
            None => return Ok(None),
        },
        VarValue::Items(items) => {
            let list = PyList::empty(py);
            for item in items {
                let Some(v) = var_value(py, wire, item)? else {
                    return Ok(None);
                };
                list.append(v)?;
            }
            list.into_any()
        }
        VarValue::Fields(fields) => {
            let dict = PyDict::new(py);
            for (key, item) in fields {
                let Some(v) = var_value(py, wire, item)? else {
                    return Ok(None);
                };
                dict.set_item(key.bind(py), v)?;
            }
            dict.into_any()
        }
    }))
}

/// A URL template rendered as `UrlTemplate.render` does; None: a value
/// fails to render.
fn render_url<'py>(
    py: Python<'py>,
    wire: &mut Wire<'py>,
    url: &UrlText,
) -> Result<Option<String>, Stop> {
    let mut out = String::new();
    for part in &url.parts {
        match part {
            UrlPart::Text(text) => out.push_str(text),
            UrlPart::Value(t) => {
                let Some(value) = render(py, wire, t.get())? else {
                    return Ok(None);
                };
                let escaped = url.escape.bind(py).call1((value,))?;
                out.push_str(escaped.cast::<PyString>().map_err(PyErr::from)?.to_str()?);
            }
        }
    }
    Ok(Some(out))
}

/// `[(name, value)]`.
fn header_list<'py>(py: Python<'py>, headers: Rendered<'py>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(
        py,
        headers
            .into_iter()
            .map(|(n, v)| PyTuple::new(py, [n.into_any(), v.into_any()]))
            .collect::<PyResult<Vec<_>>>()?,
    )
}

/// A template rendered as `Template.render` does; None: it fails (the
/// engine renders it again and reports the error).
fn render<'py>(
    py: Python<'py>,
    wire: &mut Wire<'py>,
    t: &PyTemplate,
) -> Result<Option<String>, Stop> {
    match t
        .template
        .render_with(|k, program| wire.evaluate(py, program, &t.keys[k]))
    {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.is_host() => Err(Stop::Raise(eval_error(py, e))),
        Err(_) => Ok(None),
    }
}

type Rendered<'py> = Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>;

/// Header values rendered as `ActionContext.render_header_value` does
/// (UTF-8); None: one fails or holds CR, LF or NUL (the engine reports it).
fn render_headers<'py>(
    py: Python<'py>,
    wire: &mut Wire<'py>,
    headers: &[(Py<PyBytes>, HeaderValue)],
) -> Result<Option<Rendered<'py>>, Stop> {
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = match value {
            HeaderValue::Constant(b) => b.bind(py).clone(),
            HeaderValue::Template(t) => match render(py, wire, t.get())? {
                Some(text) if !text.contains(['\r', '\n', '\0']) => {
                    PyBytes::new(py, text.as_bytes())
                }
                _ => return Ok(None),
            },
        };
        out.push((name.bind(py).clone(), value));
    }
    Ok(Some(out))
}

/// The bucket key text as `rate_limit.RateLimit.apply` makes it: one
/// string value as it is, several as a JSON list (`json.dumps(...,
/// ensure_ascii=False)`). None: a value is not a string, or fails (the
/// engine runs the step: JSON of other values, the error).
fn bucket_key<'py>(
    py: Python<'py>,
    wire: &mut Wire<'py>,
    keys: &[Py<PyProgram>],
) -> Result<Option<String>, Stop> {
    let mut texts = Vec::with_capacity(keys.len());
    for program in keys {
        let program = program.get();
        match wire.evaluate(py, &program.program, &program.keys) {
            Ok(Value::String(s)) => texts.push(s),
            Err(e) if e.is_host() => return Err(Stop::Raise(eval_error(py, e))),
            _ => return Ok(None),
        }
    }
    if let [one] = texts.as_slice() {
        return Ok(Some(one.to_string()));
    }
    let mut out = String::from("[");
    for (i, text) in texts.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_string(&mut out, text);
    }
    out.push(']');
    Ok(Some(out))
}

/// A JSON string as Python's `json.dumps(s, ensure_ascii=False)` writes it.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

// --- the variables ------------------------------------------------------------

/// The request as `req.*` reads it, decoded once (Latin-1), shared with a
/// `ReqRoot` when `req` is read whole.
struct ReqData {
    method: String,
    target: String,
    authority: String,
    scheme: String,
    version: Vec<u8>,
    headers: Fields,
}

impl ReqData {
    fn first(&self, name: &str) -> Option<&str> {
        first_value(&self.headers, name)
    }

    /// A field of `req` other than `url` and `user_agent`: Some(None) when
    /// absent, None when not built here.
    fn field(&self, name: &str) -> EvalResult<Option<Option<Value>>> {
        Ok(Some(match name {
            "method" => Some(str_value(&self.method)),
            "host" => Some(str_value(&self.authority)),
            "version" => Some(if self.version == b"2" {
                str_value("HTTP/2.0")
            } else {
                str_value(&format!("HTTP/{}", String::from_utf8_lossy(&self.version)))
            }),
            "headers" => Some(HeaderMap::value(&self.headers)),
            "content_length" => match self.first("content-length") {
                None => None,
                Some(v) => python_int(v.trim_matches(py_space))?,
            },
            "location" => match self.first("location") {
                None | Some("") => None,
                Some(v) => Some(str_value(v)),
            },
            "cookies" => Some(cookies(
                self.headers
                    .iter()
                    .filter(|(n, _)| n == "cookie")
                    .map(|(_, v)| v.as_str()),
            )?),
            _ => return Ok(None),
        }))
    }
}

/// `req` read whole (`has(req.content_length)`, `size(req)`): the fields
/// built here, the others (and the keys) from the caller's `req`.
struct ReqRoot {
    data: Arc<ReqData>,
    fallback: Py<PyAny>,
    py: OnceLock<PyLazyMap>,
}

impl ReqRoot {
    fn py(&self) -> EvalResult<&PyLazyMap> {
        if let Some(m) = self.py.get() {
            return Ok(m);
        }
        let root = Python::attach(|py| {
            self.fallback
                .bind(py)
                .call1(("req",))
                .map(Bound::unbind)
                .map_err(host_error)
        })?;
        Ok(self.py.get_or_init(|| PyLazyMap(root)))
    }
}

impl cel::LazyMap for ReqRoot {
    fn get(&self, key: &Value) -> EvalResult<Option<Value>> {
        if let Value::String(name) = key {
            if let Some(value) = self.data.field(name)? {
                return Ok(value);
            }
        }
        self.py()?.get(key)
    }

    fn len(&self) -> EvalResult<usize> {
        self.py()?.len()
    }

    fn keys(&self) -> EvalResult<Vec<Value>> {
        self.py()?.keys()
    }
}

/// The head, the connection and what was built of them, for one run.
struct Wire<'py> {
    /// The request head (`RequestHead`), read into `req` and `req_headers`
    /// only when something needs them: a cold read of every field and
    /// header costs more than a phase that reads none (a response phase
    /// that adds a header) spends on everything else.
    head: Bound<'py, PyAny>,
    req: OnceCell<Arc<ReqData>>,
    req_headers: OnceCell<Vec<Item<'py>>>,
    user_agent: Option<Bound<'py, PyAny>>,
    response: Option<(i64, Vec<Item<'py>>)>,
    conn: Bound<'py, PyAny>,
    client_ip: OnceCell<String>,
    res_map: Option<Value>,
    fallback: Bound<'py, PyAny>,
    /// The roots asked of `fallback`, and `vars`; made when first needed.
    py_roots: Option<Bound<'py, PyDict>>,
    /// The edited header list (request: the forwarded copy; response: the
    /// response's), once an action changed it.
    edited: Option<Vec<(Bound<'py, PyBytes>, Bound<'py, PyAny>)>>,
    authority: Option<Bound<'py, PyBytes>>,
    /// The forwarded target, once url-rewrite changed it.
    target: Option<Bound<'py, PyBytes>>,
    /// The policy's clock (`ActionContext.now`), for rate-limit; None:
    /// the engine runs such steps.
    clock: Option<Bound<'py, PyAny>>,
    /// `(rule, step, metadata)` of each `log` step run, in order.
    logged: Option<Vec<Bound<'py, PyTuple>>>,
}

impl<'py> Wire<'py> {
    fn new(
        py: Python<'py>,
        head: &Bound<'py, PyAny>,
        conn: &Bound<'py, PyAny>,
        fallback: &Bound<'py, PyAny>,
        response: Option<&Bound<'py, PyAny>>,
        user_agent: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        let response = match response {
            None => None,
            Some(r) => Some((
                r.getattr(intern!(py, "status"))?.extract::<i64>()?,
                headers_of(&r.getattr(intern!(py, "headers"))?)?,
            )),
        };
        Ok(Wire {
            head: head.clone(),
            req: OnceCell::new(),
            req_headers: OnceCell::new(),
            user_agent,
            response,
            conn: conn.clone(),
            client_ip: OnceCell::new(),
            res_map: None,
            fallback: fallback.clone(),
            py_roots: None,
            edited: None,
            authority: None,
            target: None,
            clock: None,
            logged: None,
        })
    }

    fn py_roots(&mut self) -> &Bound<'py, PyDict> {
        let py = self.head.py();
        self.py_roots.get_or_insert_with(|| PyDict::new(py))
    }

    /// `conn.client_ip`.
    fn client_ip(&self) -> PyResult<&str> {
        if let Some(ip) = self.client_ip.get() {
            return Ok(ip);
        }
        let ip = self.conn.getattr(intern!(self.conn.py(), "client_ip"))?;
        let ip = ip.cast::<PyString>()?.to_str().unwrap_or("").to_owned();
        Ok(self.client_ip.get_or_init(|| ip))
    }

    /// The request's header list as the caller holds it.
    fn req_headers(&self) -> PyResult<&Vec<Item<'py>>> {
        if let Some(headers) = self.req_headers.get() {
            return Ok(headers);
        }
        let py = self.head.py();
        let headers = headers_of(&self.head.getattr(intern!(py, "headers"))?)?;
        Ok(self.req_headers.get_or_init(|| headers))
    }

    /// The request head, read for programs and actions.
    fn req(&self) -> PyResult<&Arc<ReqData>> {
        if let Some(req) = self.req.get() {
            return Ok(req);
        }
        let py = self.head.py();
        let bytes = |name: &Bound<'py, PyString>| -> PyResult<Bound<'py, PyBytes>> {
            Ok(self.head.getattr(name)?.cast_into::<PyBytes>()?)
        };
        let text = |name| -> PyResult<String> { Ok(latin1(bytes(name)?.as_bytes())) };
        let req = ReqData {
            method: text(intern!(py, "method"))?,
            target: text(intern!(py, "target"))?,
            authority: text(intern!(py, "authority"))?,
            scheme: text(intern!(py, "scheme"))?,
            version: bytes(intern!(py, "http_version"))?.as_bytes().to_vec(),
            headers: fields(self.req_headers()?),
        };
        Ok(self.req.get_or_init(|| Arc::new(req)))
    }

    /// The clock's time now, as `ActionContext.now()` reads it.
    fn now(&self) -> PyResult<Option<f64>> {
        match &self.clock {
            None => Ok(None),
            Some(clock) => Ok(Some(clock.call0()?.extract()?)),
        }
    }

    fn edited_headers(&mut self) -> PyResult<&mut Vec<(Bound<'py, PyBytes>, Bound<'py, PyAny>)>> {
        if self.edited.is_none() {
            let source = match &self.response {
                Some((_, headers)) => headers,
                None => self.req_headers()?,
            };
            let copy = source
                .iter()
                .map(|((name, _), item)| (name.clone(), item.clone()))
                .collect();
            self.edited = Some(copy);
        }
        Ok(self.edited.get_or_insert_with(Vec::new))
    }

    fn evaluate(
        &mut self,
        py: Python<'py>,
        program: &cel::Program,
        keys: &[PathKeys],
    ) -> EvalResult {
        let mut act = Act {
            wire: self,
            keys,
            py,
        };
        program.evaluate(&mut act)
    }
}

struct Act<'a, 'py> {
    wire: &'a mut Wire<'py>,
    keys: &'a [PathKeys],
    py: Python<'py>,
}

impl cel::Activation for Act<'_, '_> {
    fn resolve(&mut self, path: &PathSpec) -> EvalResult {
        if let Some((value, used)) = self.native(path)? {
            return cel::program::walk_steps(value, &path.steps[used..]);
        }
        // built by the caller: its root, once per run
        let root = PyString::new(self.py, &path.root);
        let roots = self.wire.py_roots().clone();
        if !roots.contains(&root).map_err(host_error)? {
            match self.wire.fallback.call1((&root,)) {
                Ok(v) => roots.set_item(&root, v).map_err(host_error)?,
                Err(e) if e.is_instance_of::<PyKeyError>(self.py) => {}
                Err(e) => return Err(host_error(e)),
            }
        }
        let mut act = PyActivation {
            root: roots.as_any(),
            keys: self.keys,
        };
        cel::Activation::resolve(&mut act, path)
    }
}

fn field_name(step: Option<&Step>) -> Option<&str> {
    match step {
        Some(Step::Field(f) | Step::ObjField(f)) => Some(f),
        _ => None,
    }
}

fn missing(step: &Step) -> EvalError {
    match step {
        Step::ObjField(f) => EvalError::no_such_field(f),
        Step::Field(f) => EvalError::no_such_key(f),
        Step::Own => EvalError::no_such_field("\"\" (own value)"),
        Step::Index(k) => EvalError::no_such_key(format!("{k:?}")),
    }
}

/// Latin-1, as `bytes.decode("latin-1")`: lossless for any byte.
fn latin1(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if b.is_ascii() => s.to_owned(),
        _ => b.iter().map(|&c| c as char).collect(),
    }
}

fn str_value(s: &str) -> Value {
    Value::String(Arc::from(s))
}

/// Header fields as text (Latin-1), in order, shared by the values read
/// from them.
type Fields = Arc<[(String, String)]>;

fn fields(headers: &[Item<'_>]) -> Fields {
    headers
        .iter()
        .map(|((name, value), _)| (latin1(name.as_bytes()), latin1(value.as_bytes())))
        .collect()
}

fn first_value<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `req.headers` and `res.headers`: name -> values, in order of first
/// appearance, read from the fields when a program asks. Most rules test
/// a name or read one (`'x-debug' in req.headers`): that scans a few
/// fields, where building the whole map allocated every name and value.
struct HeaderMap(Fields);

impl HeaderMap {
    fn value(fields: &Fields) -> Value {
        Value::Lazy(Arc::new(HeaderMap(fields.clone())))
    }

    /// Each name once, in order of first appearance.
    fn names(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.0
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| seen.insert(*n))
            .collect()
    }
}

impl cel::LazyMap for HeaderMap {
    fn get(&self, key: &Value) -> EvalResult<Option<Value>> {
        let Value::String(name) = key else {
            return Ok(None);
        };
        let values: Vec<Value> = self
            .0
            .iter()
            .filter(|(n, _)| **n == **name)
            .map(|(_, v)| str_value(v))
            .collect();
        Ok((!values.is_empty()).then(|| Value::from(values)))
    }

    fn contains(&self, key: &Value) -> EvalResult<bool> {
        Ok(matches!(key, Value::String(name) if first_value(&self.0, name).is_some()))
    }

    fn len(&self) -> EvalResult<usize> {
        Ok(self.names().len())
    }

    fn keys(&self) -> EvalResult<Vec<Value>> {
        Ok(self.names().into_iter().map(str_value).collect())
    }
}

fn first_header<'a>(
    headers: &'a [(Header<'_>, Bound<'_, PyAny>)],
    name: &[u8],
) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|((n, _), _)| n.as_bytes() == name)
        .map(|((_, v), _)| v.as_bytes())
}

/// `str.isspace` over Latin-1.
fn py_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f' | ' ' | '\u{85}' | '\u{a0}'
    )
}

/// An int parsed as the Python builders do (`x.isdigit()` then `int(x)`);
/// None when it is not one (absent), an error when CEL cannot hold it.
fn python_int(text: &str) -> EvalResult<Option<Value>> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    text.parse::<i64>()
        .map(|n| Some(Value::Int(n)))
        .map_err(|_| EvalError::range("int out of range"))
}

fn content_length(headers: &[Item<'_>]) -> EvalResult<Option<Value>> {
    match first_header(headers, b"content-length") {
        None => Ok(None),
        Some(v) => python_int(latin1(v).trim_matches(py_space)),
    }
}

fn location(headers: &[Item<'_>]) -> Option<Value> {
    match first_header(headers, b"location") {
        None | Some(b"") => None,
        Some(v) => Some(str_value(&latin1(v))),
    }
}

/// `urllib.parse.unquote` (UTF-8, errors="replace"): each run of ASCII
/// characters is percent-decoded to bytes and decoded; other characters
/// are kept.
fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run: Vec<u8> = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let hex = |c: char| c.to_digit(16);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !c.is_ascii() {
            if !run.is_empty() {
                out.push_str(&String::from_utf8_lossy(&run));
                run.clear();
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == '%' {
            if let (Some(&a), Some(&b)) = (chars.get(i + 1), chars.get(i + 2)) {
                if let (Some(h), Some(l)) = (hex(a), hex(b)) {
                    if a.is_ascii() && b.is_ascii() {
                        run.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                }
            }
        }
        run.push(c as u8);
        i += 1;
    }
    if !run.is_empty() {
        out.push_str(&String::from_utf8_lossy(&run));
    }
    out
}

/// Name -> values, in order of first appearance.
fn grouped(pairs: Vec<(String, Value)>) -> EvalResult {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(pairs.len());
    let mut entries: Vec<(Value, Vec<Value>)> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        match index.get(&name) {
            Some(&k) => entries[k].1.push(value),
            None => {
                index.insert(name.clone(), entries.len());
                entries.push((str_value(&name), vec![value]));
            }
        }
    }
    let entries = entries
        .into_iter()
        .map(|(n, v)| (n, Value::from(v)))
        .collect();
    Ok(Value::Map(Arc::new(Map::from_entries(entries)?)))
}

/// `variables.request_cookies`: the `Cookie` pairs by name.
fn cookies<'a>(values: impl Iterator<Item = &'a str>) -> EvalResult {
    let mut pairs = Vec::new();
    for value in values {
        for pair in value.split(';') {
            let Some((name, val)) = pair.trim_matches(py_space).split_once('=') else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let cookie = Map::from_entries(vec![
                (str_value("name"), str_value(name)),
                (str_value("value"), str_value(val.trim_matches('"'))),
            ])?;
            pairs.push((name.to_owned(), Value::Map(Arc::new(cookie))));
        }
    }
    grouped(pairs)
}

/// `urllib.parse.parse_qs(query, keep_blank_values=True)`.
fn query_params(query: &str) -> EvalResult {
    let mut pairs = Vec::new();
    if !query.is_empty() {
        for field in query.split('&') {
            if field.is_empty() {
                continue;
            }
            let (name, value) = field.split_once('=').unwrap_or((field, ""));
            let name = unquote(&name.replace('+', " "));
            let value = unquote(&value.replace('+', " "));
            pairs.push((name, str_value(&value)));
        }
    }
    grouped(pairs)
}

impl Act<'_, '_> {
    /// The value of a path's first steps when built here, and how many
    /// steps it used; None: the caller's.
    fn native(&mut self, path: &PathSpec) -> EvalResult<Option<(Value, usize)>> {
        let steps = &path.steps;
        let Some(name) = field_name(steps.first()) else {
            if &*path.root == "req" {
                let root = ReqRoot {
                    data: self.wire.req().map_err(host_error)?.clone(),
                    fallback: self.wire.fallback.clone().unbind(),
                    py: OnceLock::new(),
                };
                return Ok(Some((Value::Lazy(Arc::new(root)), 0)));
            }
            return Ok(None);
        };
        let own = matches!(steps.get(1), Some(Step::Own));
        let w = &mut *self.wire;
        let value = match (&*path.root, name) {
            ("req", "url") => return self.url(steps),
            ("req", "user_agent") if !own => {
                // the parsed fields: one call of the caller's `user_agent`
                let Some(parse) = &w.user_agent else {
                    return Ok(None);
                };
                let raw = w
                    .req()
                    .map_err(host_error)?
                    .first("user-agent")
                    .unwrap_or("");
                let fields = parse.call1((raw,)).map_err(host_error)?;
                from_python(&fields, 0)?
            }
            ("req", field) if field != "user_agent" => {
                match w.req().map_err(host_error)?.field(field)? {
                    Some(Some(v)) => v,
                    Some(None) => return Err(missing(&steps[0])),
                    None => return Ok(None),
                }
            }
            ("req", "user_agent") => {
                let ua = w
                    .req()
                    .map_err(host_error)?
                    .first("user-agent")
                    .unwrap_or("");
                return Ok(Some((str_value(ua), 2)));
            }
            ("conn", "client_ip") if own => {
                let ip = w.client_ip().map_err(host_error)?;
                return Ok(Some((str_value(ip), 2)));
            }
            ("conn", "server_ip") if own => {
                let ip = w
                    .conn
                    .getattr(intern!(self.py, "server_ip"))
                    .map_err(host_error)?;
                let ip = ip.cast::<PyString>().map_err(|e| host_error(e.into()))?;
                return Ok(Some((str_value(ip.to_str().unwrap_or("")), 2)));
            }
            ("conn", "client_port" | "server_port" | "bytes_in" | "bytes_out") => {
                let v = w.conn.getattr(name).map_err(host_error)?;
                Value::Int(
                    v.extract::<i64>()
                        .map_err(|_| EvalError::range("int out of range"))?,
                )
            }
            ("conn", "server_region") => str_value(""),
            ("res", field) => {
                let Some((status, headers)) = &w.response else {
                    return Ok(None);
                };
                match field {
                    "status_code" => Value::Int(*status),
                    "headers" => {
                        if w.res_map.is_none() {
                            w.res_map = Some(HeaderMap::value(&fields(headers)));
                        }
                        w.res_map.clone().unwrap_or(Value::Null)
                    }
                    "content_length" => match content_length(headers)? {
                        Some(v) => v,
                        None => return Err(missing(&steps[0])),
                    },
                    "location" => match location(headers) {
                        Some(v) => v,
                        None => return Err(missing(&steps[0])),
                    },
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some((value, 1)))
    }

    /// `req.url` and its fields (`variables.URL_FIELDS`).
    fn url(&self, steps: &[Step]) -> EvalResult<Option<(Value, usize)>> {
        let w = &*self.wire;
        let field = match steps.get(1) {
            Some(Step::Own) => "",
            other => match field_name(other) {
                Some(f) => f,
                None => return Ok(None),
            },
        };
        let req = w.req().map_err(host_error)?;
        let (target, authority, scheme) = (&req.target, &req.authority, &req.scheme);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (target.as_str(), ""),
        };
        let raw_path = if path.is_empty() { "/" } else { path };
        let host_port = authority
            .rsplit_once('@')
            .map_or(authority.as_str(), |(_, h)| h);
        let value = match field {
            "" | "raw" => str_value(&format!("{scheme}://{authority}{target}")),
            "scheme" => str_value(scheme),
            "authority" => str_value(authority),
            "host" => {
                let host = if let Some(rest) = host_port.strip_prefix('[') {
                    match rest.find(']') {
                        Some(k) => rest[..k].to_owned(),
                        None => {
                            let mut inner = rest.to_owned();
                            inner.pop();
                            inner
                        }
                    }
                } else {
                    host_port.split(':').next().unwrap_or("").to_owned()
                };
                str_value(&host.to_lowercase())
            }
            "port" => {
                let port = if host_port.ends_with(']') {
                    None
                } else {
                    match host_port.rsplit_once(':') {
                        None => None,
                        Some((_, p)) => python_int(p)?,
                    }
                };
                match port {
                    Some(v) => v,
                    None => return Err(missing(&steps[1])),
                }
            }
            "path" => {
                if raw_path.contains('%') {
                    str_value(&unquote(raw_path))
                } else {
                    str_value(raw_path)
                }
            }
            "raw_path" => str_value(raw_path),
            "query" => str_value(query),
            "query_params" => query_params(query)?,
            "uri" => str_value(target),
            "user_password" => str_value(authority.rsplit_once('@').map_or("", |(u, _)| u)),
            _ => return Ok(None),
        };
        Ok(Some((value, 2)))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PhaseRunner>()?;
    Ok(())
}

//! The compiled form of an expression and its interpreter.
//!
//! Compilation resolves everything it can once: variable paths
//! (`req.url.path`) become one lookup the host performs without converting
//! intermediate objects, functions are bound to their implementation,
//! constant sub-expressions are folded and constant regexes pre-compiled.
//! Evaluation then only walks `Node`s.
use std::collections::BTreeSet;
use std::sync::Arc;

use super::ast::{BinaryOp, MacroKind};
use super::error::{ErrorKind, EvalError, EvalResult};
use super::functions;
use super::ops;
use super::types::{SecretTable, Ty};
use super::value::{Map, Value};
use crate::ipnet::Prefix;

pub type F1 = fn(&Value) -> EvalResult;
pub type F2 = fn(&Value, &Value) -> EvalResult;
pub type F3 = fn(&Value, &Value, &Value) -> EvalResult;
pub type FN = fn(&[Value]) -> EvalResult;

/// One step of a variable path after its root name.
#[derive(Clone, Debug)]
pub enum Step {
    /// `.name` of a map (missing: `no_such_key`)
    Field(Arc<str>),
    /// `.name` of a declared object (missing: `no_such_field`)
    ObjField(Arc<str>),
    /// `[constant]`
    Index(Value),
    /// The own value of a declared object (`""` entry of a map, or the
    /// value itself when it is not a map).
    Own,
}

impl Step {
    /// Applies this step to a value.
    pub fn apply(&self, v: Value) -> EvalResult {
        match self {
            Step::Field(f) => ops::select(&v, f),
            Step::ObjField(f) => ops::select_field(&v, f),
            Step::Index(k) => ops::index(&v, k),
            Step::Own => ops::own_value(v),
        }
    }
}

/// A variable path read from the activation: `root` then `steps`.
#[derive(Clone, Debug)]
pub struct PathSpec {
    /// Index in `Program::paths`, so that a host can keep per-path data.
    pub id: u32,
    pub root: Arc<str>,
    pub steps: Vec<Step>,
}

impl PathSpec {
    /// Applies the steps to an already resolved root value.
    pub fn walk(&self, root: Value) -> EvalResult {
        walk_steps(root, &self.steps)
    }
}

/// Applies path steps to a value with the semantics of select and index.
pub fn walk_steps(mut v: Value, steps: &[Step]) -> EvalResult {
    for step in steps {
        v = step.apply(v)?;
    }
    Ok(v)
}

/// Where the variables of one evaluation come from.
pub trait Activation {
    /// The value at `path`. An absent root is an `unbound` error; the steps
    /// follow `ops::select` / `ops::index` (so `PathSpec::walk` is always a
    /// correct implementation once the root is found).
    fn resolve(&mut self, path: &PathSpec) -> EvalResult;
}

/// An activation of plain values, for tests and constant folding.
impl Activation for std::collections::HashMap<String, Value> {
    fn resolve(&mut self, path: &PathSpec) -> EvalResult {
        match self.get(&*path.root) {
            Some(v) => path.walk(v.clone()),
            None => Err(unbound(&path.root)),
        }
    }
}

pub fn unbound(name: &str) -> EvalError {
    EvalError::new(
        ErrorKind::Unbound,
        format!("no value for variable '{name}'"),
    )
}

pub struct Comprehension {
    pub kind: MacroKind,
    pub range: Node,
    pub slot: u32,
    pub filter: Option<Node>,
    pub transform: Option<Node>,
}

pub enum Node {
    Const(Value),
    /// A path read once per evaluation.
    Path(u32),
    /// A path read more than once, cached in slot `.1` for the evaluation.
    CachedPath(u32, u32),
    /// A comprehension variable.
    Local(u32),
    Select(Box<Node>, Arc<str>),
    Has(Box<Node>, Arc<str>),
    Index(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Ternary(Box<Node>, Box<Node>, Box<Node>),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Call1(F1, Box<Node>),
    Call2(F2, Box<Node>, Box<Node>),
    Call3(F3, Box<[Node; 3]>),
    CallN(FN, Vec<Node>),
    /// `s.matches(re)` with a constant pattern, compiled once.
    Matches(Box<Node>, Arc<functions::LazyRegex>),
    /// `inCidrRange(ip, c)` / `inCidrRanges(ip, [c...])` with constant CIDRs
    /// parsed once.
    InCidr(Box<Node>, Arc<[Prefix]>),
    /// `lists.range(n)`: counts `n` iterations.
    Range(Box<Node>),
    /// `secrets.get(vault, name)` in the Env's table (`None`: it has none).
    Secret(Option<SecretTable>, Box<Node>, Box<Node>),
    Comprehension(Box<Comprehension>),
}

impl Node {
    pub fn as_const(&self) -> Option<&Value> {
        match self {
            Node::Const(v) => Some(v),
            _ => None,
        }
    }
}

/// A compiled expression: immutable, shareable between threads.
pub struct Program {
    pub(crate) root: Node,
    pub(crate) paths: Vec<PathSpec>,
    pub(crate) cache_slots: u32,
    pub(crate) local_slots: u32,
    pub(crate) max_iterations: u64,
    pub(crate) references: BTreeSet<String>,
    pub(crate) result_type: Ty,
    pub(crate) secrets_read: BTreeSet<super::compile::SecretRef>,
}

/// The state of one evaluation.
struct Frame<'a> {
    activation: &'a mut dyn Activation,
    cache: Vec<Option<EvalResult>>,
    locals: Vec<Value>,
    iterations: u64,
}

impl Program {
    /// Evaluates against `activation`.
    pub fn evaluate(&self, activation: &mut dyn Activation) -> EvalResult {
        if let Node::Const(v) = &self.root {
            return Ok(v.clone());
        }
        let mut frame = Frame {
            activation,
            cache: (0..self.cache_slots).map(|_| None).collect(),
            locals: vec![Value::Null; self.local_slots as usize],
            iterations: 0,
        };
        self.eval(&self.root, &mut frame)
    }

    /// The variable paths the program reads, indexed by `PathSpec::id`.
    pub fn paths(&self) -> &[PathSpec] {
        &self.paths
    }

    /// Variable paths the expression reads (`req.url.path`).
    pub fn references(&self) -> &BTreeSet<String> {
        &self.references
    }

    /// The static type the checker gave the whole expression (`bool`,
    /// `string`, `dyn`...): a caller that needs a condition refuses others.
    pub fn result_type(&self) -> &Ty {
        &self.result_type
    }

    /// The `(vault, name)` of every `secrets.get` (`None`: computed).
    pub fn secrets_read(&self) -> &BTreeSet<super::compile::SecretRef> {
        &self.secrets_read
    }

    /// Whether the program needs no activation.
    pub fn is_constant(&self) -> bool {
        matches!(self.root, Node::Const(_))
    }

    fn eval(&self, node: &Node, f: &mut Frame<'_>) -> EvalResult {
        match node {
            Node::Const(v) => Ok(v.clone()),
            Node::Path(i) => f.activation.resolve(&self.paths[*i as usize]),
            Node::CachedPath(i, slot) => {
                if let Some(r) = &f.cache[*slot as usize] {
                    return r.clone();
                }
                let r = f.activation.resolve(&self.paths[*i as usize]);
                f.cache[*slot as usize] = Some(r.clone());
                r
            }
            Node::Local(slot) => Ok(f.locals[*slot as usize].clone()),
            Node::Select(operand, field) => ops::select(&self.eval(operand, f)?, field),
            Node::Has(operand, field) => ops::has(&self.eval(operand, f)?, field).map(Value::Bool),
            Node::Index(c, k) => {
                let c = self.eval(c, f)?;
                ops::index(&c, &self.eval(k, f)?)
            }
            Node::Not(e) => ops::not(&self.eval(e, f)?),
            Node::Neg(e) => ops::negate(&self.eval(e, f)?),
            Node::Binary(op, a, b) => {
                let a = self.eval(a, f)?;
                ops::binary(*op, &a, &self.eval(b, f)?)
            }
            Node::And(items) => self.logic(items, false, f),
            Node::Or(items) => self.logic(items, true, f),
            Node::Ternary(c, a, b) => match self.eval(c, f)? {
                Value::Bool(true) => self.eval(a, f),
                Value::Bool(false) => self.eval(b, f),
                other => Err(EvalError::no_such_overload(format!(
                    "{} ? _ : _",
                    other.type_name()
                ))),
            },
            Node::List(items) => {
                let mut v = Vec::with_capacity(items.len());
                for item in items {
                    v.push(self.eval(item, f)?);
                }
                Ok(Value::from(v))
            }
            Node::Map(entries) => {
                let mut v = Vec::with_capacity(entries.len());
                for (k, e) in entries {
                    let k = self.eval(k, f)?;
                    v.push((k, self.eval(e, f)?));
                }
                Ok(Value::Map(Arc::new(Map::from_entries(v)?)))
            }
            Node::Call1(func, a) => func(&self.eval(a, f)?),
            Node::Call2(func, a, b) => {
                let a = self.eval(a, f)?;
                func(&a, &self.eval(b, f)?)
            }
            Node::Call3(func, args) => {
                let a = self.eval(&args[0], f)?;
                let b = self.eval(&args[1], f)?;
                func(&a, &b, &self.eval(&args[2], f)?)
            }
            Node::CallN(func, args) => {
                let mut v = Vec::with_capacity(args.len());
                for a in args {
                    v.push(self.eval(a, f)?);
                }
                func(&v)
            }
            Node::Matches(s, re) => match self.eval(s, f)? {
                Value::String(s) => re.is_match(&s).map(Value::Bool),
                other => Err(EvalError::no_such_overload(format!(
                    "{}.matches(string)",
                    other.type_name()
                ))),
            },
            Node::InCidr(ip, prefixes) => match self.eval(ip, f)? {
                Value::String(ip) => Ok(Value::Bool(functions::ip_in(&ip, prefixes))),
                other => Err(EvalError::no_such_overload(format!(
                    "inCidrRange({}, ...)",
                    other.type_name()
                ))),
            },
            Node::Range(n) => match self.eval(n, f)? {
                Value::Int(n) => {
                    let n = n.max(0);
                    self.iterate(f, n as u64)?;
                    Ok(Value::from((0..n).map(Value::Int).collect::<Vec<_>>()))
                }
                other => Err(EvalError::no_such_overload(format!(
                    "lists.range({})",
                    other.type_name()
                ))),
            },
            Node::Secret(table, vault, name) => {
                let vault = self.eval(vault, f)?;
                let name = self.eval(name, f)?;
                let (Value::String(vault), Value::String(name)) = (&vault, &name) else {
                    return Err(EvalError::no_such_overload(format!(
                        "secrets.get({}, {})",
                        vault.type_name(),
                        name.type_name()
                    )));
                };
                let Some(table) = table else {
                    return Err(EvalError::new(
                        ErrorKind::Unbound,
                        format!("no secrets are configured (secret {vault}/{name})"),
                    ));
                };
                match table.get(vault, name) {
                    Some(value) => Ok(Value::String(value.clone())),
                    None => Err(EvalError::no_such_key(format!(
                        "no secret {name:?} in vault {vault:?}"
                    ))),
                }
            }
            Node::Comprehension(c) => self.comprehension(c, f),
        }
    }

    /// `&&` (`short_on` false) and `||` (`short_on` true), left to right:
    /// the first decisive operand wins even after an error or a non-bool;
    /// otherwise the first error is the result.
    fn logic(&self, items: &[Node], short_on: bool, f: &mut Frame<'_>) -> EvalResult {
        let mut error = None;
        for item in items {
            match self.eval(item, f) {
                Ok(Value::Bool(b)) if b == short_on => return Ok(Value::Bool(b)),
                Ok(Value::Bool(_)) => {}
                Ok(other) => {
                    error.get_or_insert_with(|| logic_overload(short_on, &other));
                }
                Err(e) if e.is_host() => return Err(e),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(Value::Bool(!short_on)),
        }
    }

    /// Counts `n` more iterations against the limit of the whole evaluation.
    #[inline]
    fn iterate(&self, f: &mut Frame<'_>, n: u64) -> EvalResult<()> {
        f.iterations += n;
        if f.iterations > self.max_iterations {
            return Err(EvalError::new(
                ErrorKind::Limit,
                format!(
                    "comprehension iteration limit ({}) exceeded",
                    self.max_iterations
                ),
            ));
        }
        Ok(())
    }

    fn comprehension(&self, c: &Comprehension, f: &mut Frame<'_>) -> EvalResult {
        let range = self.eval(&c.range, f)?;
        let items: Vec<Value> = match &range {
            Value::List(items) => items.to_vec(),
            Value::Map(_) | Value::Lazy(_) if c.kind != MacroKind::SortBy => range.map_keys()?,
            other => {
                return Err(EvalError::no_such_overload(format!(
                    "{}.{}()",
                    other.type_name(),
                    c.kind.name()
                )))
            }
        };
        if let Some(bad) = items.iter().find(|v| matches!(v, Value::Unreadable(_))) {
            bad.readable()?;
        }
        let slot = c.slot as usize;
        match c.kind {
            MacroKind::All | MacroKind::Exists => {
                let decisive = c.kind == MacroKind::Exists;
                let mut error = None;
                for item in items {
                    self.iterate(f, 1)?;
                    f.locals[slot] = item;
                    match self.eval(c.filter.as_ref().expect("predicate"), f) {
                        Ok(Value::Bool(b)) if b == decisive => return Ok(Value::Bool(decisive)),
                        Ok(Value::Bool(_)) => {}
                        Ok(other) => error = error.or(Some(logic_overload(decisive, &other))),
                        Err(e) if e.is_host() => return Err(e),
                        Err(e) => error = error.or(Some(e)),
                    }
                }
                match error {
                    Some(e) => Err(e),
                    None => Ok(Value::Bool(!decisive)),
                }
            }
            MacroKind::ExistsOne => {
                let mut count = 0;
                for item in items {
                    self.iterate(f, 1)?;
                    f.locals[slot] = item;
                    match self.eval(c.filter.as_ref().expect("predicate"), f)? {
                        Value::Bool(true) => count += 1,
                        Value::Bool(false) => {}
                        other => return Err(logic_overload(false, &other)),
                    }
                }
                Ok(Value::Bool(count == 1))
            }
            MacroKind::SortBy => {
                let mut keys = Vec::with_capacity(items.len());
                for item in &items {
                    self.iterate(f, 1)?;
                    f.locals[slot] = item.clone();
                    keys.push(self.eval(c.transform.as_ref().expect("key"), f)?);
                }
                functions::sort_by_keys(items, keys)
            }
            MacroKind::Map | MacroKind::Filter => {
                let mut out = Vec::new();
                for item in items {
                    self.iterate(f, 1)?;
                    f.locals[slot] = item.clone();
                    if let Some(filter) = &c.filter {
                        match self.eval(filter, f)? {
                            Value::Bool(true) => {}
                            Value::Bool(false) => continue,
                            other => return Err(logic_overload(false, &other)),
                        }
                    }
                    out.push(match &c.transform {
                        Some(t) => self.eval(t, f)?,
                        None => item,
                    });
                }
                Ok(Value::from(out))
            }
        }
    }
}

fn logic_overload(or: bool, v: &Value) -> EvalError {
    EvalError::no_such_overload(format!(
        "{} with {}",
        if or { "||" } else { "&&" },
        v.type_name()
    ))
}

/// Evaluates a node made only of constants (constant folding).
pub(crate) fn fold(node: &Node) -> Option<Value> {
    let program = Program {
        root: Node::Const(Value::Null),
        paths: Vec::new(),
        cache_slots: 0,
        local_slots: 0,
        max_iterations: 0,
        references: BTreeSet::new(),
        result_type: Ty::Dyn,
        secrets_read: BTreeSet::new(),
    };
    let mut empty = std::collections::HashMap::new();
    let mut frame = Frame {
        activation: &mut empty,
        cache: Vec::new(),
        locals: Vec::new(),
        iterations: 0,
    };
    program.eval(node, &mut frame).ok()
}

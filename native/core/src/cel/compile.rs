//! The checker and code generator: one pass over the syntax tree that
//! computes static types (rejecting undeclared names, unknown fields of
//! declared objects and calls no overload accepts) and emits the
//! `program::Node` form with paths resolved, functions bound, constants
//! folded and constant regexes compiled.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::ast::{BinaryOp, Comprehension as AstComprehension, Expr, ExprKind, MacroKind, UnaryOp};
use super::error::CompileError;
use super::functions::{self, Imp, Lookup};
use super::parser;
use super::program::{fold, Comprehension, Node, PathSpec, Program, Step};
use super::types::{Env, Ty};
use super::value::{CelType, Value};

/// Parses, checks and compiles `source` against `env`.
pub fn compile(source: &str, env: &Env) -> Result<Program, CompileError> {
    if source.chars().count() > env.max_source_length {
        return Err(CompileError {
            message: format!(
                "expression longer than {} characters",
                env.max_source_length
            ),
            line: 1,
            column: 1,
        });
    }
    let ast = parser::parse(source, env.max_depth).map_err(|e| locate(source, e.pos, e.message))?;
    let mut c = Compiler {
        env,
        source,
        paths: Vec::new(),
        path_uses: Vec::new(),
        path_keys: HashMap::new(),
        scopes: Vec::new(),
        local_slots: 0,
        references: BTreeSet::new(),
        secrets_read: BTreeSet::new(),
    };
    let (mut root, result_type) = c.expr(&ast)?;
    let mut cache_slots = 0;
    cache_paths(
        &mut root,
        &c.path_uses,
        &mut vec![None; c.paths.len()],
        &mut cache_slots,
    );
    Ok(Program {
        root,
        paths: c.paths,
        cache_slots,
        local_slots: c.local_slots,
        max_iterations: env.max_iterations,
        references: c.references,
        result_type: result_type.value_type(),
        secrets_read: c.secrets_read,
    })
}

/// Converts a byte offset to a 1-based line and column (in characters).
pub fn locate(source: &str, pos: u32, message: String) -> CompileError {
    let pos = (pos as usize).min(source.len());
    let before = &source[..source.floor_char_boundary_compat(pos)];
    let line = before.matches('\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() as u32 + 1;
    CompileError {
        message,
        line,
        column,
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

struct Compiler<'a> {
    env: &'a Env,
    source: &'a str,
    paths: Vec<PathSpec>,
    path_uses: Vec<u32>,
    path_keys: HashMap<String, u32>,
    /// Comprehension variables in scope, innermost last: (name, slot, type).
    scopes: Vec<(Arc<str>, u32, Ty)>,
    local_slots: u32,
    references: BTreeSet<String>,
    secrets_read: BTreeSet<SecretRef>,
}

/// A `secrets.get(vault, name)` the program makes; `None` for an argument
/// computed at run time.
pub type SecretRef = (Option<String>, Option<String>);

type CResult<T = (Node, Ty)> = Result<T, CompileError>;

/// The types that have a name in expressions (`int`, `type(x) == list`).
const NAMED_TYPES: &[CelType] = &[
    CelType::Int,
    CelType::Uint,
    CelType::Double,
    CelType::Bool,
    CelType::String,
    CelType::Bytes,
    CelType::List,
    CelType::Map,
    CelType::Null,
    CelType::Type,
    CelType::Timestamp,
    CelType::Duration,
];

fn type_name_value(name: &str) -> Option<CelType> {
    NAMED_TYPES.iter().find(|t| t.name() == name).cloned()
}

impl Compiler<'_> {
    fn err<T>(&self, e: &Expr, message: impl Into<String>) -> CResult<T> {
        Err(locate(self.source, e.pos, message.into()))
    }

    fn local(&self, name: &str) -> Option<&(Arc<str>, u32, Ty)> {
        self.scopes.iter().rev().find(|(n, _, _)| &**n == name)
    }

    /// The declared type of a top-level variable, `None` if undeclared.
    fn variable(&self, name: &str) -> Option<Ty> {
        match &self.env.variables {
            None => Some(Ty::Dyn),
            Some(vars) => vars.get(name).cloned(),
        }
    }

    fn is_variable(&self, name: &str) -> bool {
        self.local(name).is_some()
            || match &self.env.variables {
                None => type_name_value(name).is_none(),
                Some(vars) => vars.contains_key(name),
            }
    }

    /// Compiles `e` where it is used as a value: an object (a call's URL
    /// object) stands for the map of its fields, as in the reference.
    fn expr(&mut self, e: &Expr) -> CResult {
        let (node, ty) = self.expr_inner(e)?;
        Ok((node, ty.value_type()))
    }

    /// Compiles `e` keeping an object type (the operand of a selection).
    fn expr_inner(&mut self, e: &Expr) -> CResult {
        match &e.kind {
            ExprKind::Literal(v) => Ok((Node::Const(v.clone()), literal_type(v))),
            ExprKind::Ident(name) => self.ident(e, name),
            ExprKind::Select {
                operand,
                field,
                test_only,
            } => {
                if *test_only {
                    return self.has(e, operand, field);
                }
                if let Some(name) = qualified(e) {
                    let root = name.split('.').next().unwrap_or_default();
                    let declared = self.local(root).is_some()
                        || matches!(&self.env.variables, Some(v) if v.contains_key(root));
                    if let (false, Some(t)) = (declared, type_name_value(&name)) {
                        return Ok((Node::Const(Value::Type(t)), Ty::Type));
                    }
                }
                if let Some(r) = self.path(e, true, true)? {
                    return Ok(r);
                }
                let (node, ty) = self.expr_inner(operand)?;
                let fty = self.field_type(e, &ty, field)?;
                Ok((self.fold(Node::Select(Box::new(node), field.clone())), fty))
            }
            ExprKind::Index(c, k) => {
                if let Some(r) = self.path(e, true, true)? {
                    return Ok(r);
                }
                let (cn, ct) = self.expr(c)?;
                let (kn, kt) = self.expr(k)?;
                let ty = self.index_type(e, &ct, &kt)?;
                Ok((self.fold(Node::Index(Box::new(cn), Box::new(kn))), ty))
            }
            ExprKind::Unary(op, x) => {
                let (n, t) = self.expr(x)?;
                match op {
                    UnaryOp::Not => {
                        if !t.compatible(&Ty::Bool) {
                            return self.err(
                                e,
                                format!("found no matching overload for '!_' applied to '({t})'"),
                            );
                        }
                        Ok((self.fold(Node::Not(Box::new(n))), Ty::Bool))
                    }
                    UnaryOp::Neg => {
                        if !matches!(t, Ty::Dyn | Ty::Int | Ty::Double) {
                            return self.err(
                                e,
                                format!("found no matching overload for '-_' applied to '({t})'"),
                            );
                        }
                        Ok((self.fold(Node::Neg(Box::new(n))), t))
                    }
                }
            }
            ExprKind::Binary(op, a, b) => {
                let (an, at) = self.expr(a)?;
                let (bn, bt) = self.expr(b)?;
                let ty = self.binary_type(e, *op, &at, &bt)?;
                Ok((self.fold(Node::Binary(*op, Box::new(an), Box::new(bn))), ty))
            }
            ExprKind::And(items) | ExprKind::Or(items) => {
                let is_and = matches!(e.kind, ExprKind::And(..));
                let mut nodes = Vec::with_capacity(items.len());
                for item in items {
                    let (n, t) = self.expr(item)?;
                    if !t.compatible(&Ty::Bool) {
                        let op = if is_and { "_&&_" } else { "_||_" };
                        return self.err(
                            item,
                            format!(
                                "found no matching overload for '{op}' applied to '({t}, ...)'"
                            ),
                        );
                    }
                    nodes.push(n);
                }
                let node = if is_and {
                    Node::And(nodes)
                } else {
                    Node::Or(nodes)
                };
                Ok((self.fold(node), Ty::Bool))
            }
            ExprKind::Ternary(c, a, b) => {
                let (cn, ct) = self.expr(c)?;
                if !ct.compatible(&Ty::Bool) {
                    return self.err(
                        e,
                        format!("found no matching overload for '_?_:_' applied to '({ct}, ...)'"),
                    );
                }
                let (an, at) = self.expr(a)?;
                let (bn, bt) = self.expr(b)?;
                let node = match cn {
                    Node::Const(Value::Bool(true)) => an,
                    Node::Const(Value::Bool(false)) => bn,
                    cn => Node::Ternary(Box::new(cn), Box::new(an), Box::new(bn)),
                };
                Ok((node, at.join(&bt)))
            }
            ExprKind::List(items) => {
                let mut nodes = Vec::with_capacity(items.len());
                let mut elem: Option<Ty> = None;
                for item in items {
                    let (n, t) = self.expr(item)?;
                    elem = Some(match elem {
                        None => t,
                        Some(prev) => prev.join(&t),
                    });
                    nodes.push(n);
                }
                let ty = Ty::List(Box::new(elem.unwrap_or(Ty::Dyn)));
                Ok((self.fold(Node::List(nodes)), ty))
            }
            ExprKind::Map(entries) => {
                let mut nodes = Vec::with_capacity(entries.len());
                let (mut kty, mut vty): (Option<Ty>, Option<Ty>) = (None, None);
                for (k, v) in entries {
                    let (kn, kt) = self.expr(k)?;
                    if !matches!(kt, Ty::Dyn | Ty::Int | Ty::Uint | Ty::Bool | Ty::String) {
                        return self.err(k, format!("unsupported map key type '{kt}'"));
                    }
                    let (vn, vt) = self.expr(v)?;
                    kty = Some(kty.map_or(kt.clone(), |p| p.join(&kt)));
                    vty = Some(vty.map_or(vt.clone(), |p| p.join(&vt)));
                    nodes.push((kn, vn));
                }
                let ty = Ty::Map(
                    Box::new(kty.unwrap_or(Ty::Dyn)),
                    Box::new(vty.unwrap_or(Ty::Dyn)),
                );
                Ok((self.fold(Node::Map(nodes)), ty))
            }
            ExprKind::Call {
                target,
                function,
                args,
            } => self.call(e, target.as_deref(), function, args),
            ExprKind::Comprehension(c) => self.comprehension(e, c),
        }
    }

    fn ident(&mut self, e: &Expr, name: &Arc<str>) -> CResult {
        if let Some((_, slot, ty)) = self.local(name) {
            return Ok((Node::Local(*slot), ty.clone()));
        }
        if let Some(r) = self.path(e, true, true)? {
            return Ok(r);
        }
        if let Some(t) = type_name_value(name) {
            return Ok((Node::Const(Value::Type(t)), Ty::Type));
        }
        self.err(e, format!("undeclared reference to '{name}'"))
    }

    /// Compiles `e` as a variable path if it is one: a declared (or, without
    /// declarations, any non-type) identifier followed by field selections
    /// and constant indexes.
    /// In value position a declared object stands for its own value.
    fn path(
        &mut self,
        e: &Expr,
        value_position: bool,
        record: bool,
    ) -> CResult<Option<(Node, Ty)>> {
        let mut steps = Vec::new();
        let mut cur = e;
        loop {
            match &cur.kind {
                ExprKind::Select {
                    operand,
                    field,
                    test_only: false,
                } => {
                    steps.push((Step::Field(field.clone()), cur));
                    cur = operand;
                }
                ExprKind::Index(c, k) => match &k.kind {
                    ExprKind::Literal(
                        v @ (Value::String(_) | Value::Int(_) | Value::Uint(_) | Value::Bool(_)),
                    ) => {
                        steps.push((Step::Index(v.clone()), cur));
                        cur = c;
                    }
                    _ => return Ok(None),
                },
                ExprKind::Ident(name) => {
                    if self.local(name).is_some() || !self.is_variable(name) {
                        return Ok(None);
                    }
                    let Some(mut ty) = self.variable(name) else {
                        return Ok(None);
                    };
                    steps.reverse();
                    let mut reference = name.to_string();
                    let mut in_fields = true;
                    let mut resolved = Vec::with_capacity(steps.len() + 1);
                    for (step, at) in steps {
                        let (step, next) = match step {
                            Step::Field(f) => {
                                if in_fields {
                                    reference.push('.');
                                    reference.push_str(&f);
                                }
                                let next = self.field_type(at, &ty, &f)?;
                                if matches!(ty, Ty::Object(_)) {
                                    (Step::ObjField(f), next)
                                } else {
                                    (Step::Field(f), next)
                                }
                            }
                            Step::Index(k) => {
                                in_fields = false;
                                let ty = ty.clone().value_type();
                                let next = self.index_type(at, &ty, &literal_type(&k))?;
                                (Step::Index(k), next)
                            }
                            other => (other, Ty::Dyn),
                        };
                        resolved.push(step);
                        ty = next;
                    }
                    if value_position {
                        if let Ty::Object(o) = &ty {
                            if o.own.is_some() {
                                resolved.push(Step::Own);
                            }
                            ty = ty.value_type();
                        }
                    }
                    let steps = resolved;
                    let key = format!("{name}{steps:?}");
                    let id = match self.path_keys.get(&key) {
                        Some(&id) => id,
                        None => {
                            let id = self.paths.len() as u32;
                            self.paths.push(PathSpec {
                                id,
                                root: name.clone(),
                                steps,
                            });
                            self.path_uses.push(0);
                            self.path_keys.insert(key, id);
                            id
                        }
                    };
                    self.path_uses[id as usize] += 1;
                    if record {
                        self.references.insert(reference);
                    }
                    return Ok(Some((Node::Path(id), ty)));
                }
                _ => return Ok(None),
            }
        }
    }

    fn field_type(&self, at: &Expr, ty: &Ty, field: &str) -> CResult<Ty> {
        match ty {
            Ty::Dyn => Ok(Ty::Dyn),
            Ty::Object(o) => match o.fields.get(field) {
                Some(t) => Ok(t.clone()),
                None => self.err(at, format!("undefined field '{field}'")),
            },
            Ty::Map(k, v) if k.compatible(&Ty::String) => Ok((**v).clone()),
            other => self.err(
                at,
                format!("type '{other}' does not support field selection"),
            ),
        }
    }

    fn index_type(&self, at: &Expr, container: &Ty, key: &Ty) -> CResult<Ty> {
        let ok = match container {
            Ty::Dyn => return Ok(Ty::Dyn),
            Ty::List(elem) => {
                matches!(key, Ty::Dyn | Ty::Int | Ty::Uint | Ty::Double).then(|| (**elem).clone())
            }
            Ty::Map(k, v) => key.comparable(k).then(|| (**v).clone()),
            _ => None,
        };
        match ok {
            Some(t) => Ok(t),
            None => self.err(
                at,
                format!("found no matching overload for '_[_]' applied to '({container}, {key})'"),
            ),
        }
    }

    fn has(&mut self, e: &Expr, operand: &Expr, field: &Arc<str>) -> CResult {
        let (node, ty) = match self.path(operand, false, false)? {
            Some(r) => r,
            None => self.expr_inner(operand)?,
        };
        match &ty {
            Ty::Dyn => {}
            Ty::Map(k, _) if k.compatible(&Ty::String) => {}
            Ty::Object(o) if o.fields.contains_key(&**field) => {}
            Ty::Object(_) => return self.err(e, format!("undefined field '{field}'")),
            other => {
                return self.err(
                    e,
                    format!("type '{other}' does not support field selection"),
                )
            }
        }
        if let Node::Path(id) = &node {
            // `has(a.b.c)` reads the path `a.b.c` (up to the first index).
            let p = &self.paths[*id as usize];
            let mut r = p.root.to_string();
            let mut fields_only = true;
            for s in &p.steps {
                match s {
                    Step::Field(f) | Step::ObjField(f) => {
                        r.push('.');
                        r.push_str(f);
                    }
                    _ => {
                        fields_only = false;
                        break;
                    }
                }
            }
            if fields_only {
                r.push('.');
                r.push_str(field);
            }
            self.references.insert(r);
        }
        Ok((
            self.fold(Node::Has(Box::new(node), field.clone())),
            Ty::Bool,
        ))
    }

    fn binary_type(&self, e: &Expr, op: BinaryOp, a: &Ty, b: &Ty) -> CResult<Ty> {
        use Ty::*;
        let fail = || {
            let name = match op {
                BinaryOp::In => "@in".to_string(),
                _ => format!("_{}_", op.symbol()),
            };
            self.err(
                e,
                format!("found no matching overload for '{name}' applied to '({a}, {b})'"),
            )
        };
        match op {
            BinaryOp::Eq | BinaryOp::Ne => {
                if a.comparable(b) {
                    Ok(Bool)
                } else {
                    fail()
                }
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let orderable = |t: &Ty| {
                    t.is_numeric()
                        || matches!(t, Dyn | Bool | String | Bytes | Timestamp | Duration)
                };
                let ok = match (a, b) {
                    (Dyn, t) | (t, Dyn) => orderable(t),
                    (x, y) if x.is_numeric() && y.is_numeric() => true,
                    (x, y) => x == y && matches!(x, Bool | String | Bytes | Timestamp | Duration),
                };
                if ok {
                    Ok(Bool)
                } else {
                    fail()
                }
            }
            BinaryOp::In => match b {
                Dyn => Ok(Bool),
                List(elem) if a.comparable(elem) => Ok(Bool),
                Map(k, _) if a.comparable(k) => Ok(Bool),
                _ => fail(),
            },
            _ => {
                // The arithmetic overloads (docs/cel.md §5.4); with `dyn` on
                // one side, the other side must fit some overload.
                let mut result: Option<Ty> = None;
                for (x, y, r) in arithmetic_overloads(op) {
                    if fits(&x, a) && fits(&y, b) {
                        let r = match &r {
                            List(_) if a == b => a.clone(),
                            _ => r,
                        };
                        result = Some(match result {
                            None => r,
                            Some(prev) if prev == r => prev,
                            Some(_) => Dyn,
                        });
                    }
                }
                result.map_or_else(fail, Ok)
            }
        }
    }

    fn call(
        &mut self,
        e: &Expr,
        target: Option<&Expr>,
        function: &Arc<str>,
        args: &[Expr],
    ) -> CResult {
        // `ns.fn(args)` where `ns.fn` is a namespaced global function (as the
        // reference's parser decides it: whatever `ns` otherwise names).
        let mut name = function.to_string();
        let mut receiver = target;
        let mut args = args;
        let mut e = e;
        if let Some(t) = target {
            if let Some(q) = qualified(t) {
                let qualified_name = format!("{q}.{function}");
                if functions::is_global(&qualified_name) {
                    name = qualified_name;
                    receiver = None;
                    e = t; // located at the namespace, as the reference does
                }
            }
        }
        // The pricing page's aliases (docs/cel.md §11.5).
        if receiver.is_none() {
            if let Some((_, path)) = functions::VARIABLE_ALIASES.iter().find(|(a, _)| *a == name) {
                if !args.is_empty() {
                    return self.err(e, format!("{name}() takes no arguments"));
                }
                let mut node = Expr::new(e.pos, ExprKind::Ident(Arc::from(path[0])));
                for field in &path[1..] {
                    node = Expr::new(
                        e.pos,
                        ExprKind::Select {
                            operand: Box::new(node),
                            field: Arc::from(*field),
                            test_only: false,
                        },
                    );
                }
                return self.expr_inner(&node);
            }
            if let Some((alias, canonical, as_receiver)) =
                functions::ALIASES.iter().find(|(a, _, _)| *a == name)
            {
                if *as_receiver {
                    let Some((first, rest)) = args.split_first() else {
                        return self.err(
                            e,
                            format!(
                                "{alias}() needs the value it applies to as its first argument"
                            ),
                        );
                    };
                    receiver = Some(first);
                    args = rest;
                }
                name = canonical.to_string();
            }
        }
        // Request helpers read an implicit variable: `getReqHeader(n)` is
        // `getReqHeader(req.headers, n)`.
        let expanded;
        let args = match functions::IMPLICIT_ARGUMENTS
            .iter()
            .find(|(n, arity, _)| receiver.is_none() && *n == name && *arity == args.len())
        {
            Some((_, _, path)) => {
                let mut implicit = Expr::new(e.pos, ExprKind::Ident(Arc::from(path[0])));
                for field in &path[1..] {
                    implicit = Expr::new(
                        e.pos,
                        ExprKind::Select {
                            operand: Box::new(implicit),
                            field: Arc::from(*field),
                            test_only: false,
                        },
                    );
                }
                expanded = std::iter::once(implicit)
                    .chain(args.iter().cloned())
                    .collect::<Vec<_>>();
                &expanded[..]
            }
            None => args,
        };
        let mut nodes = Vec::with_capacity(args.len() + 1);
        let mut tys = Vec::with_capacity(args.len() + 1);
        if let Some(t) = receiver {
            let (n, ty) = self.expr(t)?;
            nodes.push(n);
            tys.push(ty);
        }
        for a in args {
            let (n, ty) = self.expr(a)?;
            nodes.push(n);
            tys.push(ty);
        }
        let (imp, ty) = match functions::lookup(&name, receiver.is_some(), &tys) {
            Lookup::Found(imp, ty) => (imp, ty),
            Lookup::NoOverload => {
                let list: Vec<String> = tys.iter().map(ToString::to_string).collect();
                let shown = if receiver.is_some() {
                    format!("{}.{name}", list[0])
                } else {
                    name.clone()
                };
                let rest = if receiver.is_some() {
                    &list[1..]
                } else {
                    &list[..]
                };
                return self.err(
                    e,
                    format!(
                        "found no matching overload for '{shown}' applied to '({})'",
                        rest.join(", ")
                    ),
                );
            }
            Lookup::Unknown => return self.err(e, format!("undeclared reference to '{name}'")),
        };
        // Literal arguments (for the receiver style, after the receiver).
        let literal: Vec<bool> = receiver
            .into_iter()
            .chain(args)
            .map(|a| match &a.kind {
                ExprKind::Literal(_) => true,
                ExprKind::List(items) => {
                    items.iter().all(|i| matches!(i.kind, ExprKind::Literal(_)))
                }
                _ => false,
            })
            .collect();
        if name == "secrets.get" && receiver.is_none() && nodes.len() == 2 {
            return Ok((self.secret(e, nodes, &literal)?, ty));
        }
        if let Some(special) = self.special_call(e, &name, &mut nodes, &literal)? {
            return Ok((special, ty));
        }
        let node = match (imp, nodes.len()) {
            (Imp::F1(f), 1) => {
                let a = nodes.pop().expect("one argument");
                Node::Call1(f, Box::new(a))
            }
            (Imp::F2(f), 2) => {
                let b = nodes.pop().expect("two arguments");
                let a = nodes.pop().expect("two arguments");
                Node::Call2(f, Box::new(a), Box::new(b))
            }
            (Imp::F3(f), 3) => {
                let c = nodes.pop().expect("three arguments");
                let b = nodes.pop().expect("three arguments");
                let a = nodes.pop().expect("three arguments");
                Node::Call3(f, Box::new([a, b, c]))
            }
            (Imp::FN(f), _) => Node::CallN(f, nodes),
            _ => return self.err(e, format!("internal: arity mismatch for '{name}'")),
        };
        Ok((self.fold(node), ty))
    }

    /// `secrets.get(vault, name)` bound to the Env's table: with literal
    /// arguments, the value itself (an unknown secret is a compile error).
    fn secret(&mut self, e: &Expr, mut nodes: Vec<Node>, literal: &[bool]) -> CResult<Node> {
        let text = |i: usize, n: &Node| match (literal[i], n.as_const()) {
            (true, Some(Value::String(s))) => Some(s.to_string()),
            _ => None,
        };
        let (vault, name) = (text(0, &nodes[0]), text(1, &nodes[1]));
        self.secrets_read.insert((vault.clone(), name.clone()));
        if let (Some(table), Some(vault), Some(name)) = (&self.env.secrets, &vault, &name) {
            return match table.get(vault, name) {
                Some(value) => Ok(Node::Const(Value::String(value.clone()))),
                None => self.err(
                    e,
                    format!("invalid constant argument: no secret {name:?} in vault {vault:?}"),
                ),
            };
        }
        let name = nodes.pop().expect("two arguments");
        let vault = nodes.pop().expect("two arguments");
        Ok(Node::Secret(
            self.env.secrets.clone(),
            Box::new(vault),
            Box::new(name),
        ))
    }

    /// Calls compiled to nodes of their own, and constant arguments that
    /// must be valid at compile time (regexes, CIDRs, time zones, time
    /// literals).
    fn special_call(
        &self,
        e: &Expr,
        name: &str,
        nodes: &mut Vec<Node>,
        literal: &[bool],
    ) -> CResult<Option<Node>> {
        let const_str = |n: &Node| match n.as_const() {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        match (name, nodes.len()) {
            ("matches", 2) => {
                if let Some(p) = const_str(&nodes[1]) {
                    match functions::LazyRegex::new(&p) {
                        Ok(re) => {
                            let s = nodes.swap_remove(0);
                            return Ok(Some(self.fold(Node::Matches(Box::new(s), Arc::new(re)))));
                        }
                        Err(err) if literal[1] => {
                            return self
                                .err(e, format!("invalid constant argument: {}", err.message()))
                        }
                        Err(_) => {}
                    }
                }
            }
            ("inCidrRange", 2) => {
                if let Some(c) = const_str(&nodes[1]) {
                    match functions::parse_cidr(&c) {
                        Some(prefix) => {
                            let ip = nodes.swap_remove(0);
                            return Ok(Some(
                                self.fold(Node::InCidr(Box::new(ip), Arc::from([prefix]))),
                            ));
                        }
                        None if literal[1] => {
                            return self
                                .err(e, format!("invalid constant argument: invalid CIDR {c:?}"))
                        }
                        None => {}
                    }
                }
            }
            ("inCidrRanges", 2) => {
                if let Some(Value::List(items)) = nodes[1].as_const() {
                    for item in items.iter() {
                        if let Value::String(c) = item {
                            if literal[1] && functions::parse_cidr(c).is_none() {
                                return self.err(
                                    e,
                                    format!("invalid constant argument: invalid CIDR {c:?}"),
                                );
                            }
                        }
                    }
                    if let Ok(prefixes) = functions::cidr_list(&Value::List(items.clone())) {
                        let ip = nodes.swap_remove(0);
                        return Ok(Some(
                            self.fold(Node::InCidr(Box::new(ip), Arc::from(prefixes))),
                        ));
                    }
                }
            }
            ("lists.range", 1) => {
                let n = nodes.pop().expect("one argument");
                return Ok(Some(Node::Range(Box::new(n))));
            }
            ("timestamp" | "duration", 1) => {
                if let (Some(s), true) = (const_str(&nodes[0]), literal[0]) {
                    let f = if name == "timestamp" {
                        functions::parse_timestamp_value
                    } else {
                        functions::parse_duration_value
                    };
                    return match f(&s) {
                        Ok(v) => Ok(Some(Node::Const(v))),
                        Err(err) => {
                            self.err(e, format!("invalid constant argument: {}", err.message()))
                        }
                    };
                }
            }
            (
                "getFullYear" | "getMonth" | "getDate" | "getDayOfMonth" | "getDayOfWeek"
                | "getDayOfYear" | "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds",
                2,
            ) => {
                if let (Some(zone), true) = (const_str(&nodes[1]), literal[1]) {
                    if !functions::is_time_zone(&zone) {
                        return self.err(
                            e,
                            format!("invalid constant argument: unknown time zone {zone:?}"),
                        );
                    }
                }
            }
            _ => {}
        }
        Ok(None)
    }

    fn comprehension(&mut self, e: &Expr, c: &AstComprehension) -> CResult {
        let (range, rty) = self.expr(&c.range)?;
        if c.kind == MacroKind::SortBy && matches!(rty, Ty::Map(..)) {
            return self.err(&c.range, format!("sortBy() needs a list, not {rty}"));
        }
        let var_ty = match &rty {
            Ty::Dyn => Ty::Dyn,
            Ty::List(elem) => (**elem).clone(),
            Ty::Map(k, _) => (**k).clone(),
            other => {
                return self.err(
                    e,
                    format!("{}() cannot iterate over '{other}'", c.kind.name()),
                )
            }
        };
        let slot = self.scopes.len() as u32;
        self.local_slots = self.local_slots.max(slot + 1);
        self.scopes.push((c.var.clone(), slot, var_ty.clone()));
        let result = (|| {
            let filter = match &c.filter {
                Some(f) => {
                    let (n, t) = self.expr(f)?;
                    if !t.compatible(&Ty::Bool) {
                        return self.err(
                            f,
                            format!("{}() predicate must be bool, not '{t}'", c.kind.name()),
                        );
                    }
                    Some(n)
                }
                None => None,
            };
            let transform = match &c.transform {
                Some(t) => Some(self.expr(t)?),
                None => None,
            };
            Ok((filter, transform))
        })();
        self.scopes.pop();
        let (filter, transform) = result?;
        let ty = match c.kind {
            MacroKind::All | MacroKind::Exists | MacroKind::ExistsOne => Ty::Bool,
            MacroKind::Filter => Ty::List(Box::new(var_ty)),
            MacroKind::Map => Ty::List(Box::new(
                transform.as_ref().map_or(Ty::Dyn, |(_, t)| t.clone()),
            )),
            MacroKind::SortBy => match rty {
                Ty::List(_) => rty,
                _ => Ty::List(Box::new(Ty::Dyn)),
            },
        };
        let node = Node::Comprehension(Box::new(Comprehension {
            kind: c.kind,
            range,
            slot,
            filter,
            transform: transform.map(|(n, _)| n),
        }));
        Ok((node, ty))
    }

    /// Replaces a node whose operands are all constants by its value, when
    /// evaluating it succeeds (an error stays a runtime error).
    fn fold(&self, node: Node) -> Node {
        let c = |n: &Node| n.as_const().is_some();
        let all_const = match &node {
            Node::Select(a, _)
            | Node::Has(a, _)
            | Node::Not(a)
            | Node::Neg(a)
            | Node::Call1(_, a)
            | Node::Matches(a, _)
            | Node::InCidr(a, _) => c(a),
            Node::Index(a, b) | Node::Binary(_, a, b) | Node::Call2(_, a, b) => c(a) && c(b),
            Node::Call3(_, args) => args.iter().all(c),
            Node::CallN(_, args) | Node::List(args) | Node::And(args) | Node::Or(args) => {
                args.iter().all(c)
            }
            Node::Map(entries) => entries.iter().all(|(k, v)| c(k) && c(v)),
            _ => false,
        };
        if all_const {
            if let Some(v) = fold(&node) {
                return Node::Const(v);
            }
        }
        node
    }
}

/// Whether an argument of static type `arg` may match parameter `param`.
fn fits(param: &Ty, arg: &Ty) -> bool {
    match (param, arg) {
        (Ty::List(_), Ty::List(_)) => true,
        _ => arg.is_dyn() || param == arg,
    }
}

/// (left, right, result) of the overloads of an arithmetic operator
/// (docs/cel.md §5.4).
fn arithmetic_overloads(op: BinaryOp) -> Vec<(Ty, Ty, Ty)> {
    use Ty::*;
    let numbers = [
        (Int, Int, Int),
        (Uint, Uint, Uint),
        (Double, Double, Double),
    ];
    let list = || List(Box::new(Dyn));
    match op {
        BinaryOp::Add => numbers
            .into_iter()
            .chain([
                (String, String, String),
                (Bytes, Bytes, Bytes),
                (list(), list(), list()),
                (Timestamp, Duration, Timestamp),
                (Duration, Timestamp, Timestamp),
                (Duration, Duration, Duration),
            ])
            .collect(),
        BinaryOp::Sub => numbers
            .into_iter()
            .chain([
                (Timestamp, Timestamp, Duration),
                (Timestamp, Duration, Timestamp),
                (Duration, Duration, Duration),
            ])
            .collect(),
        BinaryOp::Mul | BinaryOp::Div => numbers.to_vec(),
        BinaryOp::Rem => numbers[..2].to_vec(),
        _ => Vec::new(),
    }
}

fn literal_type(v: &Value) -> Ty {
    match v {
        Value::Null => Ty::Null,
        Value::Bool(_) => Ty::Bool,
        Value::Int(_) => Ty::Int,
        Value::Uint(_) => Ty::Uint,
        Value::Double(_) => Ty::Double,
        Value::String(_) => Ty::String,
        Value::Bytes(_) => Ty::Bytes,
        _ => Ty::Dyn,
    }
}

/// `a.b.c` for a chain of identifiers.
fn qualified(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Ident(n) => Some(n.to_string()),
        ExprKind::Select {
            operand,
            field,
            test_only: false,
        } => qualified(operand).map(|q| format!("{q}.{field}")),
        _ => None,
    }
}

/// Gives paths read more than once a cache slot.
fn cache_paths(node: &mut Node, uses: &[u32], slots: &mut Vec<Option<u32>>, next: &mut u32) {
    if let Node::Path(id) = *node {
        if uses[id as usize] > 1 {
            let slot = *slots[id as usize].get_or_insert_with(|| {
                *next += 1;
                *next - 1
            });
            *node = Node::CachedPath(id, slot);
        }
        return;
    }
    let mut visit = |n: &mut Node| cache_paths(n, uses, slots, next);
    match node {
        Node::Select(a, _)
        | Node::Has(a, _)
        | Node::Not(a)
        | Node::Neg(a)
        | Node::Call1(_, a)
        | Node::Matches(a, _)
        | Node::InCidr(a, _)
        | Node::Range(a) => visit(a),
        Node::Index(a, b)
        | Node::Binary(_, a, b)
        | Node::Call2(_, a, b)
        | Node::Secret(_, a, b) => {
            visit(a);
            visit(b);
        }
        Node::Ternary(a, b, c) => {
            visit(a);
            visit(b);
            visit(c);
        }
        Node::Call3(_, args) => args.iter_mut().for_each(visit),
        Node::CallN(_, args) | Node::List(args) | Node::And(args) | Node::Or(args) => {
            args.iter_mut().for_each(visit)
        }
        Node::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            visit(k);
            visit(v);
        }),
        Node::Comprehension(c) => {
            visit(&mut c.range);
            if let Some(f) = &mut c.filter {
                visit(f);
            }
            if let Some(t) = &mut c.transform {
                visit(t);
            }
        }
        Node::Const(_) | Node::Path(_) | Node::CachedPath(..) | Node::Local(_) => {}
    }
}

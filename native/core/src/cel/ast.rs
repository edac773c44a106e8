//! The syntax tree the parser produces (macros already expanded). Every node
//! records its byte offset in the source and its height, so that limits are
//! checked when a node is built, never by a recursive walk.
use std::sync::Arc;

use super::value::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
        }
    }
}

/// The comprehension macros of CEL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacroKind {
    All,
    Exists,
    ExistsOne,
    Map,
    Filter,
    /// `list.sortBy(x, key)`: the key is the transform.
    SortBy,
}

impl MacroKind {
    pub fn name(self) -> &'static str {
        match self {
            MacroKind::All => "all",
            MacroKind::Exists => "exists",
            MacroKind::ExistsOne => "exists_one",
            MacroKind::Map => "map",
            MacroKind::Filter => "filter",
            MacroKind::SortBy => "sortBy",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Comprehension {
    pub kind: MacroKind,
    pub range: Expr,
    pub var: Arc<str>,
    /// The predicate (all/exists/exists_one/filter, or the filter of a
    /// three-argument map).
    pub filter: Option<Expr>,
    /// The transform of `map`.
    pub transform: Option<Expr>,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Literal(Value),
    Ident(Arc<str>),
    /// `operand.field`; `test_only` for `has(operand.field)`.
    Select {
        operand: Box<Expr>,
        field: Arc<str>,
        test_only: bool,
    },
    Index(Box<Expr>, Box<Expr>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `a && b && ...`: one n-ary node per chain.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    /// A global call `f(args)` or a receiver call `target.f(args)`.
    Call {
        target: Option<Box<Expr>>,
        function: Arc<str>,
        args: Vec<Expr>,
    },
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Comprehension(Box<Comprehension>),
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub pos: u32,
    pub height: u32,
    pub kind: ExprKind,
}

impl Expr {
    pub fn new(pos: u32, kind: ExprKind) -> Expr {
        let h = |e: &Expr| e.height;
        let child = match &kind {
            ExprKind::Literal(_) | ExprKind::Ident(_) => 0,
            ExprKind::Select { operand, .. } | ExprKind::Unary(_, operand) => h(operand),
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => h(a).max(h(b)),
            ExprKind::And(items) | ExprKind::Or(items) => items.iter().map(h).max().unwrap_or(0),
            ExprKind::Ternary(a, b, c) => h(a).max(h(b)).max(h(c)),
            ExprKind::Call { target, args, .. } => args
                .iter()
                .map(h)
                .chain(target.as_deref().map(h))
                .max()
                .unwrap_or(0),
            ExprKind::List(items) => items.iter().map(h).max().unwrap_or(0),
            ExprKind::Map(entries) => entries
                .iter()
                .map(|(k, v)| h(k).max(h(v)))
                .max()
                .unwrap_or(0),
            ExprKind::Comprehension(c) => h(&c.range)
                .max(c.filter.as_ref().map_or(0, h))
                .max(c.transform.as_ref().map_or(0, h)),
        };
        Expr {
            pos,
            height: child + 1,
            kind,
        }
    }
}

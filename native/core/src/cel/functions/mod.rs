//! The function library: each overload's signature (for the checker) and
//! its implementation (bound into the program at compile time). Modules
//! group functions by concern.
use super::program::{F1, F2, F3, FN};
use super::types::Ty;

mod conv;
mod format;
mod lists;
mod policy;
mod strings;
mod time;
mod url;

pub use conv::to_display_string;
pub use format::as_s;
pub use lists::sort_by_keys;
pub use policy::{
    cidr_list, ip_in, parse_cidr, url_type, ALIASES, IMPLICIT_ARGUMENTS, VARIABLE_ALIASES,
};
pub use time::is_time_zone;

use super::error::EvalResult;
use super::value::Value;

/// A constant `timestamp('...')`.
pub fn parse_timestamp_value(s: &str) -> EvalResult {
    time::parse_timestamp(s).map(Value::Timestamp)
}

/// A constant `duration('...')`.
pub fn parse_duration_value(s: &str) -> EvalResult {
    time::parse_duration(s).map(Value::Duration)
}
pub use strings::{check_len, compile_regex, LazyRegex, MAX_RESULT_LEN};

/// A signature pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum P {
    Any,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    Str,
    Bytes,
    Ts,
    Dur,
    List,
    ListStr,
    /// In a result: `list(int)`.
    ListInt,
    Map,
    /// `map(string, list(string))` (headers, query parameters).
    MapStrList,
    /// `map(string, dyn)`.
    MapStrDyn,
    Type,
    /// In a result: the type of the first argument.
    Arg0,
    /// In a result: the element type of the first argument (a list).
    Elem0,
    /// In a result: the URL object of `parseUrl()`.
    Url,
}

impl P {
    fn accepts(self, t: &Ty) -> bool {
        match (self, t) {
            (P::Any, _) | (_, Ty::Dyn) => true,
            (P::Null, Ty::Null) => true,
            (P::Bool, Ty::Bool) => true,
            (P::Int, Ty::Int) => true,
            (P::Uint, Ty::Uint) => true,
            (P::Double, Ty::Double) => true,
            (P::Str, Ty::String) => true,
            (P::Bytes, Ty::Bytes) => true,
            (P::Ts, Ty::Timestamp) => true,
            (P::Dur, Ty::Duration) => true,
            (P::List, Ty::List(_)) => true,
            (P::ListStr, Ty::List(e)) => matches!(**e, Ty::String | Ty::Dyn),
            (P::ListInt, Ty::List(e)) => matches!(**e, Ty::Int | Ty::Dyn),
            (P::Map, Ty::Map(..) | Ty::Object(_)) => true,
            (P::MapStrList | P::MapStrDyn, t) => P::Map.accepts(t),
            (P::Type, Ty::Type) => true,
            _ => false,
        }
    }

    fn result(self, args: &[Ty]) -> Ty {
        match self {
            P::Arg0 => args.first().cloned().unwrap_or(Ty::Dyn),
            P::Elem0 => match args.first() {
                Some(Ty::List(e)) => (**e).clone(),
                _ => Ty::Dyn,
            },
            P::Any => Ty::Dyn,
            P::Null => Ty::Null,
            P::Bool => Ty::Bool,
            P::Int => Ty::Int,
            P::Uint => Ty::Uint,
            P::Double => Ty::Double,
            P::Str => Ty::String,
            P::Bytes => Ty::Bytes,
            P::Ts => Ty::Timestamp,
            P::Dur => Ty::Duration,
            P::List => Ty::List(Box::new(Ty::Dyn)),
            P::ListStr => Ty::List(Box::new(Ty::String)),
            P::ListInt => Ty::List(Box::new(Ty::Int)),
            P::Map => Ty::Map(Box::new(Ty::Dyn), Box::new(Ty::Dyn)),
            P::MapStrList => Ty::Map(
                Box::new(Ty::String),
                Box::new(Ty::List(Box::new(Ty::String))),
            ),
            P::MapStrDyn => Ty::Map(Box::new(Ty::String), Box::new(Ty::Dyn)),
            P::Type => Ty::Type,
            P::Url => url_type(),
        }
    }
}

#[derive(Clone, Copy)]
pub enum Imp {
    F1(F1),
    F2(F2),
    F3(F3),
    FN(FN),
}

/// One function of one calling style and arity, with its overloads.
pub struct Def {
    pub name: &'static str,
    /// Called as `target.name(args)`; the target is the first parameter.
    pub receiver: bool,
    pub sigs: &'static [(&'static [P], P)],
    pub imp: Imp,
}

pub enum Lookup {
    Found(Imp, Ty),
    /// The function exists, but no overload accepts these argument types.
    NoOverload,
    Unknown,
}

fn all_defs() -> impl Iterator<Item = &'static Def> {
    conv::DEFS
        .iter()
        .chain(strings::DEFS)
        .chain(format::DEFS)
        .chain(time::DEFS)
        .chain(lists::DEFS)
        .chain(policy::DEFS)
}

/// Whether a global function of this (possibly qualified) name exists, or
/// an alias of one (`b64.decode`, `http.path`).
pub fn is_global(name: &str) -> bool {
    all_defs().any(|d| !d.receiver && d.name == name)
        || ALIASES.iter().any(|(a, _, _)| *a == name)
        || VARIABLE_ALIASES.iter().any(|(a, _)| *a == name)
}

/// Finds the function `name` called with `args` (the receiver first).
pub fn lookup(name: &str, receiver: bool, args: &[Ty]) -> Lookup {
    let mut known = false;
    for def in all_defs().filter(|d| d.name == name && d.receiver == receiver) {
        known = true;
        for (params, result) in def.sigs {
            if params.len() == args.len() && params.iter().zip(args).all(|(p, a)| p.accepts(a)) {
                return Lookup::Found(def.imp, result.result(args));
            }
        }
    }
    // A name known in the other calling style or arity is also "no overload".
    if known || all_defs().any(|d| d.name == name) {
        Lookup::NoOverload
    } else {
        Lookup::Unknown
    }
}

//! Static types of the checker and the declarations of an environment.
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Timestamp,
    Duration,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    /// A type value (`int`, `type(x)`).
    Type,
    /// An object with fixed fields (a declared variable given as a dict).
    Object(Arc<ObjectTy>),
}

/// A declared object: fixed fields, and optionally an own scalar value (the
/// `""` entry: `req.url` is a string and has the field `path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectTy {
    pub fields: BTreeMap<String, Ty>,
    pub own: Option<Ty>,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Dyn => write!(f, "dyn"),
            Ty::Null => write!(f, "null"),
            Ty::Bool => write!(f, "bool"),
            Ty::Int => write!(f, "int"),
            Ty::Uint => write!(f, "uint"),
            Ty::Double => write!(f, "double"),
            Ty::String => write!(f, "string"),
            Ty::Bytes => write!(f, "bytes"),
            Ty::Timestamp => write!(f, "timestamp"),
            Ty::Duration => write!(f, "duration"),
            Ty::List(e) => write!(f, "list({e})"),
            Ty::Map(k, v) => write!(f, "map({k}, {v})"),
            Ty::Type => write!(f, "type"),
            Ty::Object(_) => write!(f, "object"),
        }
    }
}

impl Ty {
    /// Parses a type name of the environment contract: `int`, `list(T)`,
    /// `map(K, V)`, ...
    pub fn parse(text: &str) -> Result<Ty, String> {
        let t = text.trim();
        let inner = |prefix: &str| t.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
        if let Some(e) = inner("list(") {
            return Ok(Ty::List(Box::new(Ty::parse(e)?)));
        }
        if let Some(kv) = inner("map(") {
            // Split at the top-level comma.
            let mut depth = 0;
            for (i, c) in kv.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ',' if depth == 0 => {
                        return Ok(Ty::Map(
                            Box::new(Ty::parse(&kv[..i])?),
                            Box::new(Ty::parse(&kv[i + 1..])?),
                        ))
                    }
                    _ => {}
                }
            }
            return Err(format!("invalid type {text:?}"));
        }
        Ok(match t {
            "int" => Ty::Int,
            "uint" => Ty::Uint,
            "double" => Ty::Double,
            "bool" => Ty::Bool,
            "string" => Ty::String,
            "bytes" => Ty::Bytes,
            "null" | "null_type" => Ty::Null,
            "timestamp" | "google.protobuf.Timestamp" => Ty::Timestamp,
            "duration" | "google.protobuf.Duration" => Ty::Duration,
            "dyn" | "any" => Ty::Dyn,
            "type" => Ty::Type,
            "list" => Ty::List(Box::new(Ty::Dyn)),
            "map" => Ty::Map(Box::new(Ty::Dyn), Box::new(Ty::Dyn)),
            _ => return Err(format!("unknown type {text:?}")),
        })
    }

    pub fn is_dyn(&self) -> bool {
        matches!(self, Ty::Dyn)
    }

    /// Whether a value of static type `self` may be used where `want` is
    /// expected (dyn is compatible with everything, in both directions).
    pub fn compatible(&self, want: &Ty) -> bool {
        match (self, want) {
            (Ty::Dyn, _) | (_, Ty::Dyn) => true,
            (Ty::List(a), Ty::List(b)) => a.compatible(b),
            (Ty::Map(ka, va), Ty::Map(kb, vb)) => ka.compatible(kb) && va.compatible(vb),
            (Ty::Object(_), Ty::Map(k, _)) | (Ty::Map(k, _), Ty::Object(_)) => k.compatible(&Ty::String),
            (Ty::Object(a), Ty::Object(b)) => Arc::ptr_eq(a, b) || a == b,
            (a, b) => a == b,
        }
    }

    /// The common type of two branches/elements: the type itself when they
    /// agree, else dyn.
    pub fn join(&self, other: &Ty) -> Ty {
        match (self, other) {
            (a, b) if a == b => a.clone(),
            (Ty::List(a), Ty::List(b)) => Ty::List(Box::new(a.join(b))),
            (Ty::Map(ka, va), Ty::Map(kb, vb)) => Ty::Map(Box::new(ka.join(kb)), Box::new(va.join(vb))),
            _ => Ty::Dyn,
        }
    }

    /// The type an object stands for in value position: its own value, or
    /// the map of its fields.
    pub fn value_type(self) -> Ty {
        match self {
            Ty::Object(o) => o.own.clone().unwrap_or_else(|| Ty::Map(Box::new(Ty::String), Box::new(Ty::Dyn))),
            t => t,
        }
    }

    /// Whether `==` between these static types can ever be meaningful.
    pub fn comparable(&self, other: &Ty) -> bool {
        match (self, other) {
            (Ty::Dyn, _) | (_, Ty::Dyn) | (Ty::Null, _) | (_, Ty::Null) => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (Ty::List(_), Ty::List(_)) | (Ty::Map(..), Ty::Map(..)) => true,
            (a, b) => a == b,
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }
}

/// The declarations and limits a program is compiled against.
#[derive(Clone, Debug)]
pub struct Env {
    /// `None` accepts any identifier as dyn.
    pub variables: Option<BTreeMap<String, Ty>>,
    pub max_source_length: usize,
    pub max_depth: u32,
    pub max_iterations: u64,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            variables: None,
            max_source_length: 4096,
            max_depth: 64,
            max_iterations: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_type_names() {
        assert_eq!(
            Ty::parse("map(string, list(int))").unwrap(),
            Ty::Map(Box::new(Ty::String), Box::new(Ty::List(Box::new(Ty::Int))))
        );
        assert!(Ty::parse("lst(int)").is_err());
    }
}

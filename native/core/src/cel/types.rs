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
    /// Parses a type of the environment syntax: `int`, `list(T)`,
    /// `map(K, V)` (K one of dyn bool int uint string), bare `list`/`map`.
    pub fn parse(text: &str) -> Result<Ty, String> {
        let malformed = || format!("malformed type {text:?}");
        let mut tokens = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            let len = match rest.as_bytes()[0] {
                b'(' | b')' | b',' => 1,
                c if c.is_ascii_alphabetic() || c == b'_' => rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .unwrap_or(rest.len()),
                _ => return Err(malformed()),
            };
            tokens.push(&rest[..len]);
            rest = rest[len..].trim_start();
        }
        let (ty, end) = Self::parse_tokens(&tokens, 0).ok_or_else(malformed)??;
        if end != tokens.len() {
            return Err(malformed());
        }
        if let Ty::Map(k, _) = &ty {
            if !matches!(**k, Ty::Dyn | Ty::Bool | Ty::Int | Ty::Uint | Ty::String) {
                return Err(format!("unsupported map key type {k}"));
            }
        }
        Ok(ty)
    }

    /// `None` when malformed, `Some(Err)` for an unknown name.
    fn parse_tokens(tokens: &[&str], i: usize) -> Option<Result<(Ty, usize), String>> {
        let name = *tokens.get(i)?;
        if (name == "list" || name == "map") && tokens.get(i + 1) == Some(&"(") {
            let mut params = Vec::new();
            let mut i = i + 2;
            loop {
                let (p, next) = match Self::parse_tokens(tokens, i)? {
                    Ok(r) => r,
                    Err(e) => return Some(Err(e)),
                };
                params.push(p);
                i = next;
                match tokens.get(i) {
                    Some(&",") => i += 1,
                    Some(&")") => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
            let ty = match (name, params.len()) {
                ("list", 1) => Ty::List(Box::new(params.remove(0))),
                ("map", 2) => {
                    let v = params.remove(1);
                    Ty::Map(Box::new(params.remove(0)), Box::new(v))
                }
                _ => {
                    return Some(Err(format!(
                        "{name} takes {} types",
                        if name == "list" { 1 } else { 2 }
                    )))
                }
            };
            return Some(Ok((ty, i)));
        }
        let ty = match name {
            "list" => Ty::List(Box::new(Ty::Dyn)),
            "map" => Ty::Map(Box::new(Ty::Dyn), Box::new(Ty::Dyn)),
            "dyn" => Ty::Dyn,
            "null" => Ty::Null,
            "bool" => Ty::Bool,
            "int" => Ty::Int,
            "uint" => Ty::Uint,
            "double" => Ty::Double,
            "string" => Ty::String,
            "bytes" => Ty::Bytes,
            "timestamp" => Ty::Timestamp,
            "duration" => Ty::Duration,
            "type" => Ty::Type,
            "(" | ")" | "," => return None,
            other => return Some(Err(format!("unknown type {other:?}"))),
        };
        Some(Ok((ty, i + 1)))
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
            (Ty::Object(_), Ty::Map(k, _)) | (Ty::Map(k, _), Ty::Object(_)) => {
                k.compatible(&Ty::String)
            }
            (Ty::Object(a), Ty::Object(b)) => Arc::ptr_eq(a, b) || a == b,
            (a, b) => a == b,
        }
    }

    /// The common type of two branches/elements: the type itself when they
    /// agree, else dyn.
    pub fn join(&self, other: &Ty) -> Ty {
        if self == other {
            self.clone()
        } else {
            Ty::Dyn
        }
    }

    /// The type an object stands for in value position: its own value, or
    /// the map of its fields.
    pub fn value_type(self) -> Ty {
        match self {
            Ty::Object(o) => o
                .own
                .clone()
                .unwrap_or_else(|| Ty::Map(Box::new(Ty::String), Box::new(Ty::Dyn))),
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

/// The largest `Env::max_depth`: keeps every recursive pass of the engine
/// far from the stack's limit.
pub const MAX_DEPTH_LIMIT: u32 = 100;

/// The table `secrets.get(vault, name)` reads: vault -> name -> value.
/// Shared by the programs compiled against one `Env`; its `Debug` shows the
/// vault names only, never a value.
#[derive(Clone, Default)]
pub struct SecretTable(Arc<BTreeMap<String, BTreeMap<String, Arc<str>>>>);

impl SecretTable {
    pub fn new(vaults: BTreeMap<String, BTreeMap<String, Arc<str>>>) -> SecretTable {
        SecretTable(Arc::new(vaults))
    }

    pub fn get(&self, vault: &str, name: &str) -> Option<&Arc<str>> {
        self.0.get(vault).and_then(|v| v.get(name))
    }

    pub fn vault_count(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for SecretTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretTable(<{} vault(s)>)", self.0.len())
    }
}

/// The declarations and limits a program is compiled against.
#[derive(Clone, Debug)]
pub struct Env {
    /// `None` accepts any identifier as dyn.
    pub variables: Option<BTreeMap<String, Ty>>,
    /// What `secrets.get` reads; `None`: no table (lookups are `unbound`).
    pub secrets: Option<SecretTable>,
    pub max_source_length: usize,
    pub max_depth: u32,
    pub max_iterations: u64,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            variables: None,
            secrets: None,
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
        assert_eq!(
            Ty::parse(" list ( int ) ").unwrap(),
            Ty::List(Box::new(Ty::Int))
        );
        assert!(Ty::parse("map(double, int)").is_err());
        assert!(Ty::parse("list(int, int)").is_err());
        assert!(Ty::parse("list(int) x").is_err());
    }
}

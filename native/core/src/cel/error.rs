//! Errors of the CEL engine: compile errors located in the source, runtime
//! errors typed by kind (the kinds are the contract shared with the Python
//! reference; messages are for people).
use std::fmt;

/// A parse or check error at a 1-based line and column of the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for CompileError {}

/// The kind of a runtime error; `as_str` is the stable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NoSuchKey,
    NoSuchField,
    NoSuchOverload,
    DivisionByZero,
    ModulusByZero,
    Overflow,
    Range,
    InvalidArgument,
    Conversion,
    Regex,
    Limit,
    Unbound,
    /// An exception of the host (e.g. raised by a caller's Python mapping):
    /// not a CEL error, never absorbed by `&&`/`||`; the binding re-raises
    /// the original.
    Host,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoSuchKey => "no_such_key",
            ErrorKind::NoSuchField => "no_such_field",
            ErrorKind::NoSuchOverload => "no_such_overload",
            ErrorKind::DivisionByZero => "division_by_zero",
            ErrorKind::ModulusByZero => "modulus_by_zero",
            ErrorKind::Overflow => "overflow",
            ErrorKind::Range => "range",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Conversion => "conversion",
            ErrorKind::Regex => "regex",
            ErrorKind::Limit => "limit",
            ErrorKind::Unbound => "unbound",
            ErrorKind::Host => "host",
        }
    }
}

/// A CEL runtime error. Boxed so that `Result<Value, EvalError>` stays as
/// small as a `Value`: errors are rare, values are not.
#[derive(Clone, PartialEq, Eq)]
pub struct EvalError(Box<(ErrorKind, String)>);

impl EvalError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EvalError(Box::new((kind, message.into())))
    }
    pub fn kind(&self) -> ErrorKind {
        self.0 .0
    }
    pub fn message(&self) -> &str {
        &self.0 .1
    }
    pub fn is_host(&self) -> bool {
        self.kind() == ErrorKind::Host
    }
    pub fn no_such_overload(what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NoSuchOverload, format!("no such overload: {what}"))
    }
    pub fn no_such_key(key: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NoSuchKey, format!("no such key: {key}"))
    }
    pub fn no_such_field(field: &str) -> Self {
        Self::new(ErrorKind::NoSuchField, format!("no such field: {field}"))
    }
    pub fn overflow(op: &str) -> Self {
        Self::new(ErrorKind::Overflow, format!("{op}: integer overflow"))
    }
    pub fn range(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Range, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn conversion(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conversion, message)
    }
}

impl fmt::Debug for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EvalError({}: {})", self.kind().as_str(), self.message())
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind().as_str(), self.message())
    }
}

impl std::error::Error for EvalError {}

pub type EvalResult<T = super::Value> = Result<T, EvalError>;

//! A CEL (Common Expression Language) compiler and evaluator.
//!
//! `compile` parses and checks an expression against an `Env` (declared
//! variables and limits) and produces a `Program`; `Program::evaluate` runs
//! it against an `Activation`, which resolves only the variable paths the
//! program reads. `interpolate` compiles `${expr}` templates.
pub mod ast;
mod compile;
pub mod error;
pub mod functions;
mod ops;
pub mod parser;
pub mod program;
mod template;
pub mod types;
pub mod value;

pub use compile::{compile, SecretRef};
pub use error::{CompileError, ErrorKind, EvalError, EvalResult};
pub use program::{Activation, PathSpec, Program, Step};
pub use template::{interpolate, Template};
pub use types::{Env, SecretTable, Ty};
pub use value::{check_depth, CelType, Duration, LazyMap, Map, Timestamp, Value, MAX_VALUE_DEPTH};

#[cfg(test)]
mod tests;

//! The operators: arithmetic with overflow errors, comparison, membership,
//! indexing and field selection. Shared by the interpreter and constant
//! folding.
use std::cmp::Ordering;
use std::sync::Arc;

use super::ast::BinaryOp;
use super::error::{ErrorKind, EvalError, EvalResult};
use super::functions::{check_len, MAX_RESULT_LEN};
use super::value::{Duration, Timestamp, Value};

pub fn binary(op: BinaryOp, a: &Value, b: &Value) -> EvalResult {
    match op {
        BinaryOp::Add => add(a, b),
        BinaryOp::Sub => sub(a, b),
        BinaryOp::Mul => mul(a, b),
        BinaryOp::Div => div(a, b),
        BinaryOp::Rem => rem(a, b),
        BinaryOp::Eq => a.equals(b).map(Value::Bool),
        BinaryOp::Ne => a.equals(b).map(|e| Value::Bool(!e)),
        BinaryOp::Lt => Ok(Value::Bool(a.compare(b)? == Some(Ordering::Less))),
        BinaryOp::Le => Ok(Value::Bool(matches!(a.compare(b)?, Some(Ordering::Less | Ordering::Equal)))),
        BinaryOp::Gt => Ok(Value::Bool(a.compare(b)? == Some(Ordering::Greater))),
        BinaryOp::Ge => Ok(Value::Bool(matches!(
            a.compare(b)?,
            Some(Ordering::Greater | Ordering::Equal)
        ))),
        BinaryOp::In => contains(b, a).map(Value::Bool),
    }
}

fn no_overload(op: &str, a: &Value, b: &Value) -> EvalError {
    EvalError::no_such_overload(format!("{} {op} {}", a.type_name(), b.type_name()))
}

fn add(a: &Value, b: &Value) -> EvalResult {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_add(*y).ok_or_else(|| EvalError::overflow("+"))?),
        (Value::Uint(x), Value::Uint(y)) => Value::Uint(x.checked_add(*y).ok_or_else(|| EvalError::overflow("+"))?),
        (Value::Double(x), Value::Double(y)) => Value::Double(x + y),
        (Value::String(x), Value::String(y)) => {
            if x.len() + y.len() > MAX_RESULT_LEN {
                check_len(x.chars().count() + y.chars().count())?;
            }
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            Value::from(s)
        }
        (Value::Bytes(x), Value::Bytes(y)) => {
            check_len(x.len() + y.len())?;
            Value::Bytes(Arc::from([&x[..], &y[..]].concat()))
        }
        (Value::List(x), Value::List(y)) => {
            if y.is_empty() {
                return Ok(a.clone());
            }
            if x.is_empty() {
                return Ok(b.clone());
            }
            check_len(x.len() + y.len())?;
            let mut v = Vec::with_capacity(x.len() + y.len());
            v.extend(x.iter().cloned());
            v.extend(y.iter().cloned());
            Value::from(v)
        }
        (Value::Timestamp(t), Value::Duration(d)) | (Value::Duration(d), Value::Timestamp(t)) => {
            Value::Timestamp(Timestamp::from_nanos(t.total_nanos() + d.nanos)?)
        }
        (Value::Duration(x), Value::Duration(y)) => Value::Duration(Duration::new(x.nanos + y.nanos)?),
        _ => return Err(no_overload("+", a, b)),
    })
}

fn sub(a: &Value, b: &Value) -> EvalResult {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_sub(*y).ok_or_else(|| EvalError::overflow("-"))?),
        (Value::Uint(x), Value::Uint(y)) => Value::Uint(x.checked_sub(*y).ok_or_else(|| EvalError::overflow("-"))?),
        (Value::Double(x), Value::Double(y)) => Value::Double(x - y),
        (Value::Timestamp(t), Value::Duration(d)) => {
            Value::Timestamp(Timestamp::from_nanos(t.total_nanos() - d.nanos)?)
        }
        (Value::Timestamp(x), Value::Timestamp(y)) => {
            Value::Duration(Duration::new(x.total_nanos() - y.total_nanos())?)
        }
        (Value::Duration(x), Value::Duration(y)) => Value::Duration(Duration::new(x.nanos - y.nanos)?),
        _ => return Err(no_overload("-", a, b)),
    })
}

fn mul(a: &Value, b: &Value) -> EvalResult {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_mul(*y).ok_or_else(|| EvalError::overflow("*"))?),
        (Value::Uint(x), Value::Uint(y)) => Value::Uint(x.checked_mul(*y).ok_or_else(|| EvalError::overflow("*"))?),
        (Value::Double(x), Value::Double(y)) => Value::Double(x * y),
        _ => return Err(no_overload("*", a, b)),
    })
}

fn div(a: &Value, b: &Value) -> EvalResult {
    let by_zero = || EvalError::new(ErrorKind::DivisionByZero, "division by zero");
    Ok(match (a, b) {
        (Value::Int(_), Value::Int(0)) | (Value::Uint(_), Value::Uint(0)) => return Err(by_zero()),
        (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_div(*y).ok_or_else(|| EvalError::overflow("/"))?),
        (Value::Uint(x), Value::Uint(y)) => Value::Uint(x / y),
        (Value::Double(x), Value::Double(y)) => Value::Double(x / y),
        _ => return Err(no_overload("/", a, b)),
    })
}

fn rem(a: &Value, b: &Value) -> EvalResult {
    let by_zero = || EvalError::new(ErrorKind::ModulusByZero, "modulus by zero");
    Ok(match (a, b) {
        (Value::Int(_), Value::Int(0)) | (Value::Uint(_), Value::Uint(0)) => return Err(by_zero()),
        (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_rem(*y).ok_or_else(|| EvalError::overflow("%"))?),
        (Value::Uint(x), Value::Uint(y)) => Value::Uint(x % y),
        _ => return Err(no_overload("%", a, b)),
    })
}

pub fn negate(v: &Value) -> EvalResult {
    Ok(match v {
        Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(|| EvalError::overflow("-"))?),
        Value::Double(d) => Value::Double(-d),
        other => return Err(EvalError::no_such_overload(format!("-{}", other.type_name()))),
    })
}

pub fn not(v: &Value) -> EvalResult {
    match v {
        Value::Bool(b) => Ok(Value::Bool(!b)),
        other => Err(EvalError::no_such_overload(format!("!{}", other.type_name()))),
    }
}

/// `item in container`.
pub fn contains(container: &Value, item: &Value) -> EvalResult<bool> {
    match container {
        Value::List(items) => {
            for x in items.iter() {
                if x.equals(item)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Value::Map(m) => Ok(m.get(item)?.is_some()),
        Value::Lazy(l) => match item {
            Value::Bool(_) | Value::Int(_) | Value::Uint(_) | Value::Double(_) | Value::String(_) => l.contains(item),
            _ => Ok(false),
        },
        other => Err(EvalError::no_such_overload(format!(
            "{} in {}",
            item.type_name(),
            other.type_name()
        ))),
    }
}

/// `container[key]`.
pub fn index(container: &Value, key: &Value) -> EvalResult {
    match container {
        Value::List(items) => {
            let i = match key {
                Value::Int(i) => *i,
                Value::Uint(u) => i64::try_from(*u).unwrap_or(i64::MAX),
                Value::Double(d) if d.fract() == 0.0 && d.is_finite() => *d as i64,
                Value::Double(d) => {
                    return Err(EvalError::invalid(format!("invalid list index {d}")));
                }
                other => return Err(EvalError::invalid(format!("invalid list index of type {}", other.type_name()))),
            };
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| EvalError::invalid(format!("index out of range: {i}")))
        }
        Value::Map(_) | Value::Lazy(_) => container.map_get(key)?.ok_or_else(|| EvalError::no_such_key(KeyText(key))),
        other => Err(EvalError::no_such_overload(format!(
            "{}[{}]",
            other.type_name(),
            key.type_name()
        ))),
    }
}

/// `operand.field` on a map: a missing key is `no_such_key`.
pub fn select(operand: &Value, field: &str) -> EvalResult {
    lookup_field(operand, field)?.ok_or_else(|| EvalError::no_such_key(field))
}

/// `operand.field` on a declared object: a missing field is `no_such_field`.
pub fn select_field(operand: &Value, field: &str) -> EvalResult {
    lookup_field(operand, field)?.ok_or_else(|| EvalError::no_such_field(field))
}

/// The own value of a declared object: its `""` entry when it is a map,
/// else the value itself.
pub fn own_value(v: Value) -> EvalResult {
    if v.is_map() {
        return select_field(&v, "");
    }
    Ok(v)
}

/// `has(operand.field)`.
pub fn has(operand: &Value, field: &str) -> EvalResult<bool> {
    match operand {
        Value::Lazy(l) => l.contains(&Value::str(field)),
        other => lookup_field(other, field).map(|v| v.is_some()),
    }
}

fn lookup_field(operand: &Value, field: &str) -> EvalResult<Option<Value>> {
    match operand {
        Value::Map(m) => Ok(m.get_str(field).cloned()),
        Value::Lazy(l) => l.get(&Value::str(field)),
        other => Err(EvalError::no_such_overload(format!(
            "field selection '.{field}' on {}",
            other.type_name()
        ))),
    }
}

struct KeyText<'a>(&'a Value);

impl std::fmt::Display for KeyText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Value::String(s) => write!(f, "'{s}'"),
            other => write!(f, "{other:?}"),
        }
    }
}

//! The subset of cel-go's lists extension policies use: slice, flatten,
//! distinct, sort (and `lists.range`, compiled as a node of its own since it
//! counts toward the iteration limit).
use std::cmp::Ordering;

use super::super::error::{EvalError, EvalResult};
use super::super::value::{check_depth, Value};
use super::strings::check_len;
use super::{Def, Imp, P};

pub static DEFS: &[Def] = &[
    Def {
        name: "slice",
        receiver: true,
        sigs: &[(&[P::List, P::Int, P::Int], P::Arg0)],
        imp: Imp::F3(slice),
    },
    Def {
        name: "flatten",
        receiver: true,
        sigs: &[(&[P::List], P::List)],
        imp: Imp::F1(|l| flatten(l, &Value::Int(1))),
    },
    Def {
        name: "flatten",
        receiver: true,
        sigs: &[(&[P::List, P::Int], P::List)],
        imp: Imp::F2(flatten),
    },
    Def {
        name: "distinct",
        receiver: true,
        sigs: &[(&[P::List], P::Arg0)],
        imp: Imp::F1(distinct),
    },
    Def {
        name: "sort",
        receiver: true,
        sigs: &[(&[P::List], P::Arg0)],
        imp: Imp::F1(sort),
    },
    Def {
        name: "lists.range",
        receiver: false,
        sigs: &[(&[P::Int], P::ListInt)],
        // Compiled to `Node::Range`; this is only the constant-folding path.
        imp: Imp::F1(|_| {
            Err(EvalError::invalid(
                "lists.range is evaluated by the interpreter",
            ))
        }),
    },
];

fn items<'a>(v: &'a Value, name: &str) -> EvalResult<&'a [Value]> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(EvalError::no_such_overload(format!(
            "{}.{name}()",
            other.type_name()
        ))),
    }
}

fn slice(l: &Value, start: &Value, end: &Value) -> EvalResult {
    let list = items(l, "slice")?;
    let (Value::Int(s), Value::Int(e)) = (start, end) else {
        return Err(EvalError::no_such_overload("slice"));
    };
    let n = list.len() as i64;
    if *s < 0 || *e < 0 || *s > n || *e > n {
        return Err(EvalError::invalid(format!(
            "index out of range: {}",
            if *s < 0 || *s > n { s } else { e }
        )));
    }
    if s > e {
        return Err(EvalError::invalid(format!(
            "invalid slice: start {s} > end {e}"
        )));
    }
    Ok(Value::from(list[*s as usize..*e as usize].to_vec()))
}

fn flatten(l: &Value, depth: &Value) -> EvalResult {
    let list = items(l, "flatten")?;
    let Value::Int(depth) = depth else {
        return Err(EvalError::no_such_overload("flatten"));
    };
    if *depth < 0 {
        return Err(EvalError::invalid("flatten depth must not be negative"));
    }
    // Bounded like every walk of a whole value: nesting, and the result's
    // length as it grows.
    fn go(list: &[Value], depth: i64, level: usize, out: &mut Vec<Value>) -> EvalResult<()> {
        check_depth(level)?;
        for v in list {
            match v {
                Value::List(inner) if depth > 0 => go(inner, depth - 1, level + 1, out)?,
                other => {
                    check_len(out.len() + 1)?;
                    out.push(other.clone());
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(list, *depth, 0, &mut out)?;
    Ok(Value::from(out))
}

fn distinct(l: &Value) -> EvalResult {
    let list = items(l, "distinct")?;
    let mut out: Vec<Value> = Vec::new();
    for v in list {
        let mut seen = false;
        for o in &out {
            if o.equals(v)? {
                seen = true;
                break;
            }
        }
        if !seen {
            out.push(v.clone());
        }
    }
    Ok(Value::from(out))
}

/// Elements all of one sortable kind (numbers, strings, bytes, bools,
/// timestamps or durations), without NaN; else `invalid_argument`.
fn check_sortable(list: &[Value]) -> EvalResult<()> {
    let kind = |v: &Value| match v {
        Value::Int(_) | Value::Uint(_) | Value::Double(_) => 0,
        Value::String(_) => 1,
        Value::Bytes(_) => 2,
        Value::Bool(_) => 3,
        Value::Timestamp(_) => 4,
        Value::Duration(_) => 5,
        _ => 6,
    };
    if let Some(first) = list.first() {
        let k = kind(first);
        if k == 6
            || list
                .iter()
                .any(|v| kind(v) != k || matches!(v, Value::Double(d) if d.is_nan()))
        {
            return Err(EvalError::invalid(
                "sort: elements are not all of one comparable kind",
            ));
        }
    }
    Ok(())
}

fn sort(l: &Value) -> EvalResult {
    let list = items(l, "sort")?;
    check_sortable(list)?;
    let mut out = list.to_vec();
    out.sort_by(|a, b| a.compare(b).unwrap_or(Ordering::Equal)); // kinds checked above
    Ok(Value::from(out))
}

/// `list.sortBy(x, key)`: the elements in the (stable) order of their keys,
/// which must be sortable as `sort()` requires.
pub fn sort_by_keys(elements: Vec<Value>, keys: Vec<Value>) -> EvalResult {
    check_sortable(&keys)?;
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[a].compare(&keys[b]).unwrap_or(Ordering::Equal));
    Ok(Value::from(
        order
            .into_iter()
            .map(|i| elements[i].clone())
            .collect::<Vec<_>>(),
    ))
}

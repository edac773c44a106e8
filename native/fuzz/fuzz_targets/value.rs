//! Fuzzes CEL values as a host hands them over, and every operation that
//! walks a whole value: equality, `in`, `json.encode`/`json.decode`, the
//! `%s` text, interpolation, `flatten`, `distinct`, `sort`, `size`. The
//! input is a small stack program building the value `x` (scalars, lists,
//! maps, host maps read lazily, nested up to 300 levels as the Python
//! binding can convert): every program must give a value or an
//! `EvalError` (`limit` past the depth and size limits), never a panic or
//! a stack overflow, and the same outcome twice.
#![no_main]
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use edgeward_core::cel::{
    self, Duration, Env, EvalResult, LazyMap, Map, Program, Timestamp, Value,
};
use libfuzzer_sys::fuzz_target;

/// A host map read through the lazy interface, like a Python Mapping.
struct Host(Vec<(Value, Value)>);

impl LazyMap for Host {
    fn get(&self, key: &Value) -> EvalResult<Option<Value>> {
        for (k, v) in &self.0 {
            if k.equals(key)? {
                return Ok(Some(v.clone()));
            }
        }
        Ok(None)
    }
    fn len(&self) -> EvalResult<usize> {
        Ok(self.0.len())
    }
    fn keys(&self) -> EvalResult<Vec<Value>> {
        Ok(self.0.iter().map(|(k, _)| k.clone()).collect())
    }
}

/// Nesting the binding converts at most (2 x MAX_VALUE_DEPTH) plus margin.
const MAX_NESTING: usize = 300;

/// Runs the byte program: each byte is an opcode, some take the next bytes.
fn build(data: &[u8]) -> Value {
    let mut stack: Vec<(Value, usize)> = Vec::new(); // value, nesting
    let mut i = 0;
    let next = |i: &mut usize| -> u8 {
        let b = data.get(*i).copied().unwrap_or(0);
        *i += 1;
        b
    };
    while i < data.len() && stack.len() < 4096 {
        let op = next(&mut i);
        let item = match op % 16 {
            0 => (Value::Null, 0),
            1 => (Value::Bool(op & 16 != 0), 0),
            2 => (Value::Int(i64::from(next(&mut i) as i8) << (op >> 4)), 0),
            3 => (Value::Uint(u64::from(next(&mut i)) << (op >> 4)), 0),
            4 => (
                Value::Double(f64::from(next(&mut i) as i8) / f64::from(op >> 4).max(0.5)),
                0,
            ),
            5 => {
                let n = usize::from(next(&mut i) % 32);
                let (start, end) = (i.min(data.len()), (i + n).min(data.len()));
                let text = String::from_utf8_lossy(&data[start..end]).into_owned();
                i = end;
                (Value::from(text), 0)
            }
            6 => {
                let n = usize::from(next(&mut i) % 32);
                let (start, end) = (i.min(data.len()), (i + n).min(data.len()));
                let bytes: Arc<[u8]> = Arc::from(&data[start..end]);
                i = end;
                (Value::Bytes(bytes), 0)
            }
            7 => match Timestamp::from_nanos(
                i128::from(next(&mut i) as i8) * 86_400_000_000_000 * 365,
            ) {
                Ok(t) => (Value::Timestamp(t), 0),
                Err(_) => continue,
            },
            8 => match Duration::new(i128::from(next(&mut i) as i8) * 1_000_000_007) {
                Ok(d) => (Value::Duration(d), 0),
                Err(_) => continue,
            },
            // a list of the top n values
            9 | 10 => {
                let n = usize::from(next(&mut i) % 8).min(stack.len());
                let items = stack.split_off(stack.len() - n);
                let depth = items.iter().map(|(_, d)| *d).max().unwrap_or(0) + 1;
                if depth > MAX_NESTING {
                    continue;
                }
                (
                    Value::from(items.into_iter().map(|(v, _)| v).collect::<Vec<_>>()),
                    depth,
                )
            }
            // a map (CEL-built or host) of the top 2n values as key, value
            11 | 12 => {
                let n = usize::from(next(&mut i) % 4).min(stack.len() / 2);
                let items = stack.split_off(stack.len() - 2 * n);
                let depth = items.iter().map(|(_, d)| *d).max().unwrap_or(0) + 1;
                if depth > MAX_NESTING {
                    continue;
                }
                let pairs: Vec<(Value, Value)> = items
                    .chunks(2)
                    .map(|kv| (kv[0].0.clone(), kv[1].0.clone()))
                    .collect();
                if op % 16 == 11 {
                    match Map::from_entries(pairs) {
                        Ok(m) => (Value::Map(Arc::new(m)), depth),
                        Err(_) => continue,
                    }
                } else {
                    (Value::Lazy(Arc::new(Host(pairs))), depth)
                }
            }
            // wrap the top value in k lists (deep nesting cheaply)
            13 => {
                let k = usize::from(next(&mut i));
                let Some((mut v, mut depth)) = stack.pop() else {
                    continue;
                };
                for _ in 0..k {
                    if depth >= MAX_NESTING {
                        break;
                    }
                    v = Value::from(vec![v]);
                    depth += 1;
                }
                (v, depth)
            }
            // duplicate the top value (shared: cheap large structures)
            _ => match stack.last() {
                Some(top) => top.clone(),
                None => continue,
            },
        };
        stack.push(item);
    }
    stack.pop().map_or(Value::Null, |(v, _)| v)
}

const SOURCES: &[&str] = &[
    "x == x",
    "[x, 1] == [x, 1]",
    "x in [1, x]",
    "json.encode(x)",
    "json.decode(json.encode(x)) == x",
    "'%s'.format([x])",
    "'%s %s %s'.format([x, x, x])",
    "[x].flatten(1000)",
    "[x, x].distinct()",
    "size(x)",
    "x.size() > 0 ? [x].sort() : []",
    "string(x)",
    "type(x) == list ? x.map(e, e).join(',') : ''",
    "x.exists(k, k == x)",
    "x",
];

fn programs() -> &'static [Program] {
    static PROGRAMS: OnceLock<Vec<Program>> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let env = Env {
            max_iterations: 1000,
            ..Env::default()
        };
        SOURCES
            .iter()
            .filter_map(|s| cel::compile(s, &env).ok())
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let x = build(data);
    let mut act = HashMap::new();
    act.insert("x".to_string(), x);
    assert_eq!(programs().len(), SOURCES.len(), "every source compiles");
    for program in programs() {
        let first = program.evaluate(&mut act);
        let again = program.evaluate(&mut act);
        assert_eq!(format!("{first:?}"), format!("{again:?}"), "deterministic");
    }
    let template = cel::interpolate("value: ${x}", &Env::default()).expect("compiles");
    let first = template.render(&mut act);
    assert_eq!(
        format!("{first:?}"),
        format!("{:?}", template.render(&mut act)),
        "deterministic"
    );
});

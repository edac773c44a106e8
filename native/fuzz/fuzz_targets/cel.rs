//! Fuzzes the CEL parser, checker and interpreter: any input must compile
//! or be a `CompileError`, and evaluate to a value or an `EvalError`, within
//! the limits, without panicking (a panic would cross the Python FFI).
#![no_main]
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use edgeward_core::cel::{self, Env, EvalResult, LazyMap, Map, Ty, Value};
use libfuzzer_sys::fuzz_target;

/// A host map read through the lazy interface, like a Python mapping.
struct Lazy(Vec<(Value, Value)>);

impl LazyMap for Lazy {
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

fn map(entries: Vec<(&str, Value)>) -> Value {
    let entries = entries.into_iter().map(|(k, v)| (Value::str(k), v)).collect();
    Value::Map(Arc::new(Map::from_entries(entries).expect("distinct keys")))
}

fn activation() -> HashMap<String, Value> {
    let headers = Value::Lazy(Arc::new(Lazy(vec![
        (Value::str("user-agent"), Value::from(vec![Value::str("curl/8.5")])),
        (Value::str("x-a"), Value::from(vec![Value::str("1"), Value::str("2")])),
    ])));
    let url = map(vec![("", Value::str("https://h/a?b=1")), ("path", Value::str("/a")), ("query", Value::str("b=1"))]);
    let req = map(vec![("method", Value::str("GET")), ("url", url), ("headers", headers)]);
    let mut act = HashMap::new();
    act.insert("req".to_string(), req);
    act.insert("x".to_string(), Value::Int(7));
    act.insert("s".to_string(), Value::str("héllo, wörld"));
    act.insert("l".to_string(), Value::from(vec![Value::Int(1), Value::Double(2.5), Value::str("a")]));
    act
}

fn declared() -> Env {
    let mut url = BTreeMap::new();
    url.insert("path".to_string(), Ty::String);
    url.insert("query".to_string(), Ty::String);
    let url = Ty::Object(Arc::new(cel::types::ObjectTy { fields: url, own: Some(Ty::String) }));
    let mut req = BTreeMap::new();
    req.insert("method".to_string(), Ty::String);
    req.insert("url".to_string(), url);
    req.insert("headers".to_string(), Ty::parse("map(string, list(string))").expect("valid"));
    let req = Ty::Object(Arc::new(cel::types::ObjectTy { fields: req, own: None }));
    let mut vars = BTreeMap::new();
    vars.insert("req".to_string(), req);
    vars.insert("x".to_string(), Ty::Int);
    vars.insert("s".to_string(), Ty::String);
    vars.insert("l".to_string(), Ty::List(Box::new(Ty::Dyn)));
    Env { variables: Some(vars), max_iterations: 1000, ..Env::default() }
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let envs = [Env { max_iterations: 1000, ..Env::default() }, declared(), Env { max_depth: 8, ..Env::default() }];
    for env in &envs {
        if let Ok(program) = cel::compile(source, env) {
            let first = program.evaluate(&mut activation());
            let again = program.evaluate(&mut activation());
            assert_eq!(format!("{first:?}"), format!("{again:?}"), "evaluation must be deterministic");
        }
    }
    if let Ok(template) = cel::interpolate(source, &envs[0]) {
        let _ = template.render(&mut activation());
    }
});

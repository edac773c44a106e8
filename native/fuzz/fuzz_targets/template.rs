//! Fuzzes `${...}` interpolation templates (`edgeward_core::cel::interpolate`,
//! behind every templated action field): any text compiles or is a located
//! `CompileError` inside the template, renders to text or an `EvalError`,
//! the same way twice, and a constant template renders without an error.
#![no_main]
#![forbid(unsafe_code)]

use std::collections::HashMap;

use edgeward_core::cel::{self, Env, Value};
use libfuzzer_sys::fuzz_target;

fn activation() -> HashMap<String, Value> {
    let mut act = HashMap::new();
    act.insert("x".to_string(), Value::Int(7));
    act.insert("s".to_string(), Value::str("héllo"));
    act.insert(
        "l".to_string(),
        Value::from(vec![Value::Int(1), Value::str("a"), Value::Null]),
    );
    act.insert("big".to_string(), Value::str(&"x".repeat(4096)));
    act
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = Env {
        max_iterations: 1000,
        ..Env::default()
    };
    match cel::interpolate(text, &env) {
        Ok(template) => {
            let first = template.render(&mut activation());
            let again = template.render(&mut activation());
            assert_eq!(format!("{first:?}"), format!("{again:?}"), "deterministic");
            if template.is_constant() {
                assert!(first.is_ok(), "a constant template renders");
            }
        }
        Err(e) => {
            let lines = text.split('\n').count() as u32;
            assert!(
                e.line >= 1 && e.line <= lines,
                "error line inside the template"
            );
            assert!(e.column >= 1, "1-based column");
        }
    }
});

//! End-to-end tests of the engine without Python: compile, evaluate, check
//! error kinds.
use std::collections::HashMap;

use super::*;

fn eval_with(src: &str, vars: &[(&str, Value)]) -> EvalResult {
    let program = compile(src, &Env::default()).unwrap_or_else(|e| panic!("{src}: {e}"));
    let mut act: HashMap<String, Value> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    program.evaluate(&mut act)
}

fn eval(src: &str) -> EvalResult {
    eval_with(src, &[])
}

fn is_true(src: &str) {
    match eval(src) {
        Ok(Value::Bool(true)) => {}
        other => panic!("{src}: {other:?}"),
    }
}

fn kind(src: &str) -> ErrorKind {
    match eval(src) {
        Err(e) => e.kind(),
        Ok(v) => panic!("{src}: expected an error, got {v:?}"),
    }
}

#[test]
fn arithmetic_and_overflow() {
    is_true("1 + 2 * 3 == 7");
    is_true("7 / 2 == 3 && 7 % 2 == 1 && -7 / 2 == -3");
    is_true("2u + 3u == 5u");
    is_true("1.5 + 1.5 == 3.0");
    assert_eq!(kind("9223372036854775807 + 1"), ErrorKind::Overflow);
    assert_eq!(kind("-9223372036854775808 / -1"), ErrorKind::Overflow);
    assert_eq!(kind("0u - 1u"), ErrorKind::Overflow);
    assert_eq!(kind("1 / 0"), ErrorKind::DivisionByZero);
    assert_eq!(kind("1 % 0"), ErrorKind::ModulusByZero);
}

#[test]
fn logic_absorbs_errors() {
    is_true("(1 / 0 == 1 || true) && (false || 1 / 0 != 1 || true)");
    is_true("!(1 / 0 == 1 && false)");
    assert_eq!(kind("1 / 0 == 1 && true"), ErrorKind::DivisionByZero);
    is_true("true ? true : 1 / 0 == 1");
}

#[test]
fn macros() {
    is_true("[1, 2, 3].all(x, x > 0)");
    is_true("[1, 2, 3].exists(x, x == 2)");
    is_true("[1, 2, 3].exists_one(x, x > 2)");
    is_true("[1, 2, 3].map(x, x * 2) == [2, 4, 6]");
    is_true("[1, 2, 3].map(x, x > 1, x * 2) == [4, 6]");
    is_true("[1, 2, 3].filter(x, x != 2) == [1, 3]");
    is_true("{'a': 1, 'b': 2}.all(k, k in ['a', 'b'])");
    is_true("[0, 1].exists(x, 1 / x == 1)");
    assert_eq!(kind("[0].all(x, 1 / x == 1)"), ErrorKind::DivisionByZero);
    is_true("[[1, 2], [3]].all(x, x.all(y, y > 0))");
}

#[test]
fn iteration_limit() {
    let env = Env {
        max_iterations: 10,
        ..Env::default()
    };
    let p = compile("[1,2,3,4].all(x, [1,2,3,4].all(y, true))", &env).unwrap();
    let err = p.evaluate(&mut HashMap::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit);
}

#[test]
fn strings_and_regex() {
    is_true("'hello'.startsWith('he') && 'hello'.endsWith('lo') && 'hello'.contains('ll')");
    is_true("'hello'.matches('^h.*o$') && matches('abc', 'b')");
    assert_eq!(kind("'a'.matches(dyn('('))"), ErrorKind::Regex);
    for src in [
        "'a'.matches('(')",
        "inCidrRange('1.2.3.4', 'x')",
        "inCidrRanges('1.2.3.4', ['10.0.0.0/8', 'x'])",
        "timestamp('x')",
        "duration('1d')",
        "timestamp(0).getHours('Mars/Base')",
    ] {
        assert!(compile(src, &Env::default()).is_err(), "{src}");
    }
    is_true(
        "inCidrRange('10.1.2.3', '10.0.0.0/8') && inCidrRanges('::1', ['10.0.0.0/8', '::1/128'])",
    );
    is_true("lists.range(3) == [0, 1, 2] && [3, 1, 2].sort() == [1, 2, 3] && [[1], [2, [3]]].flatten() == [1, 2, [3]]");
    is_true("size('héllo') == 5 && 'héllo'.size() == 5 && size(b'ab') == 2");
    is_true("'a,b'.split(',') == ['a', 'b'] && ['a', 'b'].join('-') == 'a-b'");
}

#[test]
fn conversions_and_types() {
    is_true("int('42') == 42 && uint(42) == 42u && double(1) == 1.0");
    is_true("string(1.5) == '1.5' && string(42u) == '42' && string(b'hi') == 'hi'");
    is_true("type(1) == int && type('a') == string && type([]) == list && type(type(1)) == type");
    assert_eq!(kind("int('x')"), ErrorKind::Conversion);
    assert_eq!(kind("int(1e20)"), ErrorKind::Range);
    is_true("dyn(1) == 1u && dyn(1) == 1.0");
}

#[test]
fn time() {
    is_true(
        "timestamp('2009-02-13T23:31:30Z') + duration('1h') == timestamp('2009-02-14T00:31:30Z')",
    );
    is_true("timestamp('2009-02-13T23:31:30Z').getFullYear() == 2009");
    is_true("timestamp('2009-02-13T23:31:30Z').getHours('America/New_York') == 18");
    is_true("duration('1h30m').getMinutes() == 90");
    is_true("string(timestamp('2009-02-13T23:31:30Z')) == '2009-02-13T23:31:30Z'");
    is_true(
        "timestamp('2009-02-13T23:31:30Z') - timestamp('2009-02-13T23:31:00Z') == duration('30s')",
    );
}

#[test]
fn maps_lists_and_paths() {
    let headers = Value::Map(std::sync::Arc::new(
        Map::from_entries(vec![(
            Value::str("user-agent"),
            Value::from(vec![Value::str("curl/8")]),
        )])
        .unwrap(),
    ));
    let req = Value::Map(std::sync::Arc::new(
        Map::from_entries(vec![
            (Value::str("headers"), headers),
            (Value::str("method"), Value::str("GET")),
        ])
        .unwrap(),
    ));
    let vars = [("req", req)];
    let t = |src: &str| {
        assert!(
            matches!(eval_with(src, &vars), Ok(Value::Bool(true))),
            "{src}"
        )
    };
    t("req.method in ['GET', 'HEAD']");
    t("req.headers['user-agent'][0].startsWith('curl')");
    t("has(req.headers) && !has(req.body)");
    t("'user-agent' in req.headers");
    t("req.headers.exists(k, k == 'user-agent')");
    assert_eq!(
        eval_with("req.body", &vars).unwrap_err().kind(),
        ErrorKind::NoSuchKey
    );
    assert_eq!(
        eval_with("nope", &vars).unwrap_err().kind(),
        ErrorKind::Unbound
    );
}

#[test]
fn checker_rejects_statically_wrong_expressions() {
    for src in [
        "1 + 'a'",
        "1 == 'a'",
        "!1",
        "'a'.startsWith(1)",
        "foo(1)",
        "size(1)",
        "[1][0].a",
        "-1u",
    ] {
        assert!(compile(src, &Env::default()).is_err(), "{src}");
    }
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("x".to_string(), Ty::Int);
    let env = Env {
        variables: Some(vars),
        ..Env::default()
    };
    assert!(compile("x + 1", &env).is_ok());
    assert!(compile("y + 1", &env).is_err());
    assert!(compile("x + 'a'", &env).is_err());
}

#[test]
fn json_keeps_document_order() {
    is_true(
        r#"json.encode(json.decode('{"b": 1, "a": [2.5, null], "b": 3}')) == '{"b":3,"a":[2.5,null]}'"#,
    );
    is_true(r#"json.decode('18446744073709551615') == 18446744073709551615.0"#);
}

#[test]
fn request_helpers() {
    let headers = Value::Map(std::sync::Arc::new(
        Map::from_entries(vec![(
            Value::str("x-a"),
            Value::from(vec![Value::str("1")]),
        )])
        .unwrap(),
    ));
    let req = Value::Map(std::sync::Arc::new(
        Map::from_entries(vec![(Value::str("headers"), headers)]).unwrap(),
    ));
    let vars = [("req", req)];
    for src in [
        "getReqHeader('X-A') == ['1']",
        "hasReqHeader('x-a') && !hasReqHeader('x-b')",
        "getReqHeader('x-b') == []",
    ] {
        assert!(
            matches!(eval_with(src, &vars), Ok(Value::Bool(true))),
            "{src}"
        );
    }
    let p = compile("hasReqHeader('x')", &Env::default()).unwrap();
    assert_eq!(p.references().iter().collect::<Vec<_>>(), ["req.headers"]);
}

#[test]
fn references_and_constants() {
    let p = compile(
        "req.url.path.startsWith('/a') && has(req.headers.foo) && req.headers['x'] == ['1']",
        &Env::default(),
    )
    .unwrap();
    let refs: Vec<_> = p.references().iter().cloned().collect();
    assert_eq!(refs, ["req.headers", "req.headers.foo", "req.url.path"]);
    assert!(compile("1 + 2 == 3", &Env::default())
        .unwrap()
        .is_constant());
}

#[test]
fn templates() {
    let t = interpolate("a ${1 + 1} b ${'x'}${'}'}", &Env::default()).unwrap();
    assert_eq!(t.render(&mut HashMap::new()).unwrap(), "a 2 b x}");
    let t = interpolate("$${x} ${null}${[1, 'a']}", &Env::default()).unwrap();
    assert!(!t.is_constant());
    assert_eq!(t.render(&mut HashMap::new()).unwrap(), "${x} [1, a]");
    assert!(interpolate("${ }", &Env::default()).is_err());
    let e = interpolate("ab\n  ${1 +}", &Env::default()).err().unwrap();
    assert_eq!((e.line, e.column), (2, 8));
}

#[test]
fn compile_errors_are_located() {
    let e = compile("1 +\n  )", &Env::default()).err().unwrap();
    assert_eq!((e.line, e.column), (2, 3));
    let long = "1".repeat(5000);
    assert!(compile(&long, &Env::default()).is_err());
}

#[test]
fn result_types() {
    let path = Ty::Object(std::sync::Arc::new(types::ObjectTy {
        fields: [("path".to_string(), Ty::String)].into_iter().collect(),
        own: Some(Ty::String),
    }));
    let env = Env {
        variables: Some(
            [
                ("url".to_string(), path),
                ("n".to_string(), Ty::Int),
                ("d".to_string(), Ty::Dyn),
            ]
            .into_iter()
            .collect(),
        ),
        ..Env::default()
    };
    for (src, expected) in [
        ("url.path", "string"),
        ("url", "string"),
        ("url.startsWith('/')", "bool"),
        ("n", "int"),
        ("d", "dyn"),
        ("d == 1", "bool"),
        ("[1, 'a']", "list(dyn)"),
        ("true ? 1 : 'a'", "dyn"),
    ] {
        let program = compile(src, &env).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(program.result_type().to_string(), expected, "{src}");
    }
}

#[test]
fn sort_by_and_aliases() {
    let env = Env::default();
    let eval = |src: &str| compile(src, &env).unwrap().evaluate(&mut HashMap::new());
    assert!(matches!(
        eval("[3, 1, 2].sortBy(x, -x) == [3, 2, 1]"),
        Ok(Value::Bool(true))
    ));
    // Stable: equal keys keep their order.
    assert!(matches!(
        eval("[[1, 'b'], [2, 'a'], [3, 'b']].sortBy(p, p[1]).map(p, p[0]) == [2, 1, 3]"),
        Ok(Value::Bool(true))
    ));
    assert!(eval("[1, 2].sortBy(x, x == 1 ? 'a' : 1)").is_err());
    assert!(compile("{'a': 1}.sortBy(x, x)", &env).is_err());
    assert!(matches!(
        eval("b64.encode(b'hi') == base64.encode(b'hi') && utility.string_is_json('[]')"),
        Ok(Value::Bool(true))
    ));
}

#[test]
fn secrets_are_bound_to_the_env() {
    let mut vault = std::collections::BTreeMap::new();
    vault.insert("k".to_string(), std::sync::Arc::<str>::from("s3cr3t"));
    let mut vaults = std::collections::BTreeMap::new();
    vaults.insert("v".to_string(), vault);
    let env = Env {
        secrets: Some(crate::cel::SecretTable::new(vaults)),
        ..Env::default()
    };
    assert!(!format!("{env:?}").contains("s3cr3t"));
    let p = compile("secrets.get('v', 'k')", &env).unwrap();
    assert!(p.is_constant());
    assert!(matches!(p.evaluate(&mut HashMap::new()), Ok(Value::String(s)) if &*s == "s3cr3t"));
    let Err(err) = compile("secrets.get('v', 'nope')", &env) else {
        panic!("an unknown constant secret compiled");
    };
    assert!(err.message.contains("no secret"));
    let p = compile("secrets.get('v', dyn('nope'))", &env).unwrap();
    assert_eq!(
        p.evaluate(&mut HashMap::new()).unwrap_err().kind(),
        ErrorKind::NoSuchKey
    );
    let p = compile("secrets.get('v', 'k')", &Env::default()).unwrap();
    assert_eq!(
        p.evaluate(&mut HashMap::new()).unwrap_err().kind(),
        ErrorKind::Unbound
    );
}

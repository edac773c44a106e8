//! String functions: the standard ones (size, contains, startsWith,
//! endsWith, matches) and cel-go's strings extension (charAt, indexOf,
//! lastIndexOf, lowerAscii, upperAscii, replace, split, substring, trim,
//! join, reverse, strings.quote). Indices count code points, as in CEL.
use std::sync::{Arc, OnceLock};

use regex::{Regex, RegexBuilder};

use super::super::error::{ErrorKind, EvalError, EvalResult};
use super::super::value::Value;
use super::{Def, Imp, P};

pub static DEFS: &[Def] = &[
    Def {
        name: "size",
        receiver: false,
        sigs: &[
            (&[P::Str], P::Int),
            (&[P::Bytes], P::Int),
            (&[P::List], P::Int),
            (&[P::Map], P::Int),
        ],
        imp: Imp::F1(size),
    },
    Def {
        name: "size",
        receiver: true,
        sigs: &[
            (&[P::Str], P::Int),
            (&[P::Bytes], P::Int),
            (&[P::List], P::Int),
            (&[P::Map], P::Int),
        ],
        imp: Imp::F1(size),
    },
    Def {
        name: "contains",
        receiver: true,
        sigs: &[(&[P::Str, P::Str], P::Bool)],
        imp: Imp::F2(|s, t| str2(s, t, "contains", |a, b| a.contains(b))),
    },
    Def {
        name: "startsWith",
        receiver: true,
        sigs: &[(&[P::Str, P::Str], P::Bool)],
        imp: Imp::F2(|s, t| str2(s, t, "startsWith", |a, b| a.starts_with(b))),
    },
    Def {
        name: "endsWith",
        receiver: true,
        sigs: &[(&[P::Str, P::Str], P::Bool)],
        imp: Imp::F2(|s, t| str2(s, t, "endsWith", |a, b| a.ends_with(b))),
    },
    Def {
        name: "matches",
        receiver: true,
        sigs: &[(&[P::Str, P::Str], P::Bool)],
        imp: Imp::F2(matches),
    },
    Def {
        name: "matches",
        receiver: false,
        sigs: &[(&[P::Str, P::Str], P::Bool)],
        imp: Imp::F2(matches),
    },
    Def {
        name: "charAt",
        receiver: true,
        sigs: &[(&[P::Str, P::Int], P::Str)],
        imp: Imp::F2(char_at),
    },
    Def {
        name: "indexOf",
        receiver: true,
        sigs: &[(&[P::Str, P::Str], P::Int)],
        imp: Imp::F2(|s, t| index_of(s, t, None, false)),
    },
    Def {
        name: "indexOf",
        receiver: true,
        sigs: &[(&[P::Str, P::Str, P::Int], P::Int)],
        imp: Imp::F3(|s, t, i| index_of(s, t, Some(i), false)),
    },
    Def {
        name: "lastIndexOf",
        receiver: true,
        sigs: &[(&[P::Str, P::Str], P::Int)],
        imp: Imp::F2(|s, t| index_of(s, t, None, true)),
    },
    Def {
        name: "lastIndexOf",
        receiver: true,
        sigs: &[(&[P::Str, P::Str, P::Int], P::Int)],
        imp: Imp::F3(|s, t, i| index_of(s, t, Some(i), true)),
    },
    Def {
        name: "lowerAscii",
        receiver: true,
        sigs: &[(&[P::Str], P::Str)],
        imp: Imp::F1(|s| map_str(s, "lowerAscii", str::to_ascii_lowercase)),
    },
    Def {
        name: "upperAscii",
        receiver: true,
        sigs: &[(&[P::Str], P::Str)],
        imp: Imp::F1(|s| map_str(s, "upperAscii", str::to_ascii_uppercase)),
    },
    Def {
        name: "lower",
        receiver: true,
        sigs: &[(&[P::Str], P::Str)],
        imp: Imp::F1(|s| map_str(s, "lower", str::to_lowercase)),
    },
    Def {
        name: "upper",
        receiver: true,
        sigs: &[(&[P::Str], P::Str)],
        imp: Imp::F1(|s| map_str(s, "upper", str::to_uppercase)),
    },
    Def {
        name: "trim",
        receiver: true,
        sigs: &[(&[P::Str], P::Str)],
        imp: Imp::F1(|s| map_str(s, "trim", |s| s.trim().to_string())),
    },
    Def {
        name: "reverse",
        receiver: true,
        sigs: &[(&[P::Str], P::Str)],
        imp: Imp::F1(|s| map_str(s, "reverse", |s| s.chars().rev().collect())),
    },
    Def {
        name: "replace",
        receiver: true,
        sigs: &[(&[P::Str, P::Str, P::Str], P::Str)],
        imp: Imp::F3(|s, a, b| replace(&[s.clone(), a.clone(), b.clone(), Value::Int(-1)])),
    },
    Def {
        name: "replace",
        receiver: true,
        sigs: &[(&[P::Str, P::Str, P::Str, P::Int], P::Str)],
        imp: Imp::FN(replace),
    },
    Def {
        name: "split",
        receiver: true,
        sigs: &[(&[P::Str, P::Str], P::ListStr)],
        imp: Imp::F2(|s, sep| split(s, sep, &Value::Int(-1))),
    },
    Def {
        name: "split",
        receiver: true,
        sigs: &[(&[P::Str, P::Str, P::Int], P::ListStr)],
        imp: Imp::F3(split),
    },
    Def {
        name: "substring",
        receiver: true,
        sigs: &[(&[P::Str, P::Int], P::Str)],
        imp: Imp::F2(|s, i| substring(s, i, None)),
    },
    Def {
        name: "substring",
        receiver: true,
        sigs: &[(&[P::Str, P::Int, P::Int], P::Str)],
        imp: Imp::F3(|s, i, j| substring(s, i, Some(j))),
    },
    Def {
        name: "join",
        receiver: true,
        sigs: &[(&[P::ListStr], P::Str)],
        imp: Imp::F1(|l| join(l, &Value::str(""))),
    },
    Def {
        name: "join",
        receiver: true,
        sigs: &[(&[P::ListStr, P::Str], P::Str)],
        imp: Imp::F2(join),
    },
    Def {
        name: "strings.quote",
        receiver: false,
        sigs: &[(&[P::Str], P::Str)],
        imp: Imp::F1(quote),
    },
];

/// Results longer than this (code points, bytes or elements) are a `limit`
/// error: chained `replace`/`+` could otherwise grow exponentially.
pub const MAX_RESULT_LEN: usize = 1 << 20;

pub fn check_len(len: usize) -> EvalResult<()> {
    if len > MAX_RESULT_LEN {
        return Err(EvalError::new(
            ErrorKind::Limit,
            format!("result longer than {MAX_RESULT_LEN}"),
        ));
    }
    Ok(())
}

fn overload(what: &str, args: &[&Value]) -> EvalError {
    let types: Vec<_> = args.iter().map(|a| a.type_name()).collect();
    EvalError::no_such_overload(format!("{what}({})", types.join(", ")))
}

fn size(v: &Value) -> EvalResult {
    let n = match v {
        Value::String(s) => s.chars().count(),
        Value::Bytes(b) => b.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Lazy(l) => l.len()?,
        other => return Err(overload("size", &[other])),
    };
    Ok(Value::Int(n as i64))
}

fn str2(a: &Value, b: &Value, name: &str, f: fn(&str, &str) -> bool) -> EvalResult {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(Value::Bool(f(x, y))),
        _ => Err(overload(name, &[a, b])),
    }
}

fn map_str(v: &Value, name: &str, f: impl Fn(&str) -> String) -> EvalResult {
    match v {
        Value::String(s) => Ok(Value::from(f(s))),
        other => Err(overload(name, &[other])),
    }
}

/// A constant pattern, checked at compile time and built on first use:
/// building a matcher (notably for `(?i)` Unicode classes) costs far more
/// than checking the syntax, and a rule may never run.
pub struct LazyRegex {
    pattern: String,
    regex: OnceLock<Result<Regex, EvalError>>,
}

impl LazyRegex {
    /// `Err` if the pattern is not valid RE2 syntax.
    pub fn new(pattern: &str) -> Result<LazyRegex, EvalError> {
        regex_syntax::parse(pattern).map_err(|e| {
            EvalError::new(ErrorKind::Regex, format!("invalid regex {pattern:?}: {e}"))
        })?;
        Ok(LazyRegex {
            pattern: pattern.to_string(),
            regex: OnceLock::new(),
        })
    }

    pub fn is_match(&self, text: &str) -> EvalResult<bool> {
        match self.regex.get_or_init(|| compile_regex(&self.pattern)) {
            Ok(re) => Ok(re.is_match(text)),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Compiles an RE2-syntax pattern (linear-time matching, bounded size).
pub fn compile_regex(pattern: &str) -> Result<Regex, EvalError> {
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| EvalError::new(ErrorKind::Regex, format!("invalid regex {pattern:?}: {e}")))
}

fn matches(s: &Value, re: &Value) -> EvalResult {
    match (s, re) {
        (Value::String(s), Value::String(re)) => Ok(Value::Bool(compile_regex(re)?.is_match(s))),
        _ => Err(overload("matches", &[s, re])),
    }
}

fn int_arg(v: &Value, name: &str) -> EvalResult<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(overload(name, &[other])),
    }
}

fn char_at(s: &Value, i: &Value) -> EvalResult {
    let (Value::String(s), Value::Int(i)) = (s, i) else {
        return Err(overload("charAt", &[s, i]));
    };
    let n = s.chars().count() as i64;
    if *i < 0 || *i > n {
        return Err(EvalError::invalid(format!("index out of range: {i}")));
    }
    Ok(Value::from(
        s.chars()
            .nth(*i as usize)
            .map(String::from)
            .unwrap_or_default(),
    ))
}

fn index_of(s: &Value, t: &Value, start: Option<&Value>, last: bool) -> EvalResult {
    let name = if last { "lastIndexOf" } else { "indexOf" };
    let (Value::String(s), Value::String(t)) = (s, t) else {
        return Err(overload(name, &[s, t]));
    };
    let chars: Vec<char> = s.chars().collect();
    let needle: Vec<char> = t.chars().collect();
    let n = chars.len() as i64;
    let start = match start {
        Some(v) => int_arg(v, name)?,
        None if last => n,
        None => 0,
    };
    if start < 0 || start > n {
        return Err(EvalError::invalid(format!("index out of range: {start}")));
    }
    let m = needle.len();
    let at = |i: usize| i + m <= chars.len() && chars[i..i + m] == needle[..];
    let found = if last {
        let from = (start as usize).min(chars.len().saturating_sub(m));
        if m > chars.len() {
            None
        } else {
            (0..=from).rev().find(|&i| at(i))
        }
    } else {
        (start as usize..=chars.len()).find(|&i| at(i))
    };
    Ok(Value::Int(found.map_or(-1, |i| i as i64)))
}

fn replace(args: &[Value]) -> EvalResult {
    let [Value::String(s), Value::String(from), Value::String(to), Value::Int(n)] = args else {
        return Err(overload("replace", &args.iter().collect::<Vec<_>>()));
    };
    // The size of the result is known before it is built: `n` matches of a
    // short `from` replaced by a long `to` could ask for terabytes.
    let most = if *n < 0 { usize::MAX } else { *n as usize };
    let count = if from.is_empty() {
        s.chars().count().saturating_add(1).min(most)
    } else {
        s.matches(&**from).take(most).count()
    };
    let bytes = (s.len() - count * from.len()).saturating_add(count.saturating_mul(to.len()));
    if bytes > MAX_RESULT_LEN {
        let chars = s.chars().count() - count * from.chars().count();
        check_len(chars.saturating_add(count.saturating_mul(to.chars().count())))?;
    }
    let out = if *n < 0 {
        s.replace(&**from, to)
    } else {
        s.replacen(&**from, to, *n as usize)
    };
    Ok(Value::from(out))
}

fn split(s: &Value, sep: &Value, n: &Value) -> EvalResult {
    let (Value::String(s), Value::String(sep), Value::Int(n)) = (s, sep, n) else {
        return Err(overload("split", &[s, sep, n]));
    };
    let parts: Vec<Value> = match *n {
        0 => Vec::new(),
        n if sep.is_empty() => {
            // Split into code points; with a limit the last part keeps the rest.
            let chars: Vec<char> = s.chars().collect();
            let limit = if n < 0 {
                chars.len()
            } else {
                (n as usize).min(chars.len())
            };
            let mut out: Vec<Value> = Vec::with_capacity(limit);
            for (i, c) in chars.iter().enumerate() {
                if n > 0 && out.len() + 1 == limit && i < chars.len() {
                    out.push(Value::from(chars[i..].iter().collect::<String>()));
                    break;
                }
                out.push(Value::from(c.to_string()));
            }
            out
        }
        n if n < 0 => s.split(&**sep).map(Value::from).collect(),
        n => s.splitn(n as usize, &**sep).map(Value::from).collect(),
    };
    Ok(Value::from(parts))
}

fn substring(s: &Value, i: &Value, j: Option<&Value>) -> EvalResult {
    let (Value::String(s), Value::Int(i)) = (s, i) else {
        return Err(overload("substring", &[s, i]));
    };
    let n = s.chars().count() as i64;
    let j = match j {
        Some(v) => int_arg(v, "substring")?,
        None => n,
    };
    if *i < 0 || *i > n || j < 0 || j > n {
        return Err(EvalError::invalid(format!(
            "index out of range: {}",
            if *i < 0 || *i > n { *i } else { j }
        )));
    }
    if *i > j {
        return Err(EvalError::invalid(format!(
            "invalid substring range: start {i} > end {j}"
        )));
    }
    Ok(Value::from(
        s.chars()
            .skip(*i as usize)
            .take((j - i) as usize)
            .collect::<String>(),
    ))
}

fn join(l: &Value, sep: &Value) -> EvalResult {
    let (Value::List(items), Value::String(sep)) = (l, sep) else {
        return Err(overload("join", &[l, sep]));
    };
    // Checked before building: a list may hold one long string many times.
    let mut parts = Vec::with_capacity(items.len());
    let mut bytes = sep.len().saturating_mul(items.len().saturating_sub(1));
    for item in items.iter() {
        let Value::String(s) = item else {
            return Err(overload("join", &[item]));
        };
        bytes = bytes.saturating_add(s.len());
        parts.push(&**s);
    }
    if bytes > MAX_RESULT_LEN {
        let chars: usize = parts.iter().map(|p| p.chars().count()).sum();
        let seps = sep
            .chars()
            .count()
            .saturating_mul(parts.len().saturating_sub(1));
        check_len(chars.saturating_add(seps))?;
    }
    Ok(Value::from(parts.join(&**sep)))
}

fn quote(s: &Value) -> EvalResult {
    let Value::String(s) = s else {
        return Err(overload("strings.quote", &[s]));
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(Value::String(Arc::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::str(x)
    }

    #[test]
    fn code_point_indices() {
        assert_eq!(
            format!("{:?}", char_at(&s("©αT"), &Value::Int(1)).unwrap()),
            "\"α\""
        );
        assert_eq!(
            format!("{:?}", index_of(&s("©αTα"), &s("α"), None, true).unwrap()),
            "3"
        );
        assert_eq!(
            format!(
                "{:?}",
                substring(&s("tacocat"), &Value::Int(4), None).unwrap()
            ),
            "\"cat\""
        );
        assert!(substring(&s("abc"), &Value::Int(2), Some(&Value::Int(1))).is_err());
        assert_eq!(
            format!("{:?}", split(&s("a,b,c"), &s(","), &Value::Int(2)).unwrap()),
            "[\"a\", \"b,c\"]"
        );
    }
}

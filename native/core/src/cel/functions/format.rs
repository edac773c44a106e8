//! `string.format(list)` (cel-go's formatting v2) and the `%s` text of a
//! value, which interpolation also uses for lists and maps.
use super::super::error::{EvalError, EvalResult};
use super::super::value::{check_depth, Value};
use super::conv::to_display_string;
use super::strings::check_len;
use super::{Def, Imp, P};

pub static DEFS: &[Def] = &[Def {
    name: "format",
    receiver: true,
    sigs: &[(&[P::Str, P::List], P::Str)],
    imp: Imp::F2(format),
}];

fn bad(message: String) -> EvalError {
    EvalError::invalid(message)
}

/// Non-finite doubles as `format` prints them.
fn special(d: f64) -> Option<&'static str> {
    if d.is_nan() {
        Some("NaN")
    } else if d == f64::INFINITY {
        Some("Infinity")
    } else if d == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// The `%s` text of a value: doubles in plain decimal, bytes as text, lists
/// `[a, b]`, maps `{k: v}` sorted by key text, null `null`. The text of a
/// list or map is `limit` once it grows past `MAX_RESULT_LEN` code points
/// (a list may hold one long string many times) or nests past
/// `MAX_VALUE_DEPTH` levels.
pub fn as_s(v: &Value) -> EvalResult<String> {
    as_s_at(v, 0)
}

fn as_s_at(v: &Value, level: usize) -> EvalResult<String> {
    Ok(match v {
        Value::Null => "null".into(),
        Value::Double(d) => special(*d).map_or_else(|| format!("{d}"), String::from),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::List(items) => {
            check_depth(level)?;
            // "[" + items joined by ", " + "]", counted as it grows.
            let mut size = 2usize;
            let mut parts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let part = as_s_at(item, level + 1)?;
                size += part.chars().count() + if i > 0 { 2 } else { 0 };
                check_len(size)?;
                parts.push(part);
            }
            format!("[{}]", parts.join(", "))
        }
        Value::Map(_) | Value::Lazy(_) => {
            check_depth(level)?;
            // "{" + "k: v" entries joined by ", " + "}", counted as it grows.
            let mut size = 2usize;
            let mut parts = Vec::new();
            for (i, (k, item)) in v.map_entries()?.iter().enumerate() {
                let (k, item) = (as_s_at(k, level + 1)?, as_s_at(item, level + 1)?);
                size += k.chars().count() + 2 + item.chars().count() + if i > 0 { 2 } else { 0 };
                check_len(size)?;
                parts.push((k, item));
            }
            parts.sort();
            let parts: Vec<String> = parts
                .into_iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => to_display_string(other)?.to_string(),
    })
}

/// Go's `%e`: mantissa with `precision` digits, exponent sign and at least
/// two digits.
fn sci(d: f64, precision: usize) -> String {
    let s = format!("{d:.precision$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn as_double(v: &Value, clause: &str) -> EvalResult<f64> {
    match v {
        Value::Double(d) => Ok(*d),
        Value::Int(i) => Ok(*i as f64),
        Value::Uint(u) => Ok(*u as f64),
        other => Err(bad(format!(
            "{clause} clause can only be used on doubles, was given {}",
            other.type_name()
        ))),
    }
}

fn integer(v: &Value, radix: u32, upper: bool, what: &str) -> EvalResult<String> {
    let (neg, mag): (bool, u128) = match v {
        Value::Int(i) => (*i < 0, i.unsigned_abs() as u128),
        Value::Uint(u) => (false, *u as u128),
        Value::Bool(b) if radix == 2 => (false, *b as u128),
        other => return Err(bad(format!("{what}, was given {}", other.type_name()))),
    };
    let digits = match radix {
        2 => format!("{mag:b}"),
        8 => format!("{mag:o}"),
        16 if upper => format!("{mag:X}"),
        16 => format!("{mag:x}"),
        _ => mag.to_string(),
    };
    Ok(if neg { format!("-{digits}") } else { digits })
}

fn format(fmt: &Value, args: &Value) -> EvalResult {
    let (Value::String(fmt), Value::List(args)) = (fmt, args) else {
        return Err(EvalError::no_such_overload("format"));
    };
    let mut out = String::with_capacity(fmt.len());
    // Code points of `out`, checked after each clause and at the end.
    let mut size = 0usize;
    let mut next = 0;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            size += 1;
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            size += 1;
            continue;
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(*d);
                chars.next();
            }
            let n: usize = p
                .parse()
                .map_err(|_| bad("could not parse formatting clause: bad precision".into()))?;
            if n > 100 {
                return Err(bad(
                    "could not parse formatting clause: precision over 100".into()
                ));
            }
            precision = Some(n);
        }
        let Some(clause) = chars.next() else {
            return Err(bad(
                "could not parse formatting clause: unexpected end of string".into(),
            ));
        };
        if !matches!(clause, 's' | 'd' | 'f' | 'e' | 'b' | 'x' | 'X' | 'o') {
            return Err(bad(format!(
                "could not parse formatting clause: unrecognized formatting clause \"{clause}\""
            )));
        }
        let arg = args
            .get(next)
            .ok_or_else(|| bad(format!("index {next} out of range")))?;
        next += 1;
        let text = match clause {
            's' => as_s(arg)?,
            'd' => match arg {
                Value::Double(d) if special(*d).is_some() => special(*d).unwrap_or_default().into(),
                _ => integer(
                    arg,
                    10,
                    false,
                    "decimal clause can only be used on integers",
                )?,
            },
            'f' => {
                let d = as_double(arg, "fixed-point")?;
                special(d).map_or_else(|| format!("{d:.*}", precision.unwrap_or(6)), String::from)
            }
            'e' => {
                let d = as_double(arg, "scientific")?;
                special(d).map_or_else(|| sci(d, precision.unwrap_or(6)), String::from)
            }
            'b' => integer(
                arg,
                2,
                false,
                "only integers and bools can be formatted as binary",
            )?,
            'o' => integer(arg, 8, false, "octal clause can only be used on integers")?,
            _ => {
                let upper = clause == 'X';
                let hex = |b: &[u8]| -> String {
                    b.iter()
                        .map(|x| {
                            if upper {
                                format!("{x:02X}")
                            } else {
                                format!("{x:02x}")
                            }
                        })
                        .collect()
                };
                match arg {
                    Value::String(s) => hex(s.as_bytes()),
                    Value::Bytes(b) => hex(b),
                    _ => integer(
                        arg,
                        16,
                        upper,
                        "only integers, byte buffers, and strings can be formatted as hex",
                    )?,
                }
            }
        };
        size += text.chars().count();
        check_len(size)?;
        out.push_str(&text);
    }
    check_len(size)?;
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: Vec<Value>) -> String {
        match format(&Value::str(fmt), &Value::from(args)).unwrap() {
            Value::String(s) => s.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn clauses() {
        assert_eq!(
            f(
                "%.3f|%e|%b|%X|%o|%%",
                vec![
                    Value::Double(1.2345),
                    Value::Int(2),
                    Value::Int(5),
                    Value::str("Hi"),
                    Value::Int(11)
                ]
            ),
            "1.234|2.000000e+00|101|4869|13|%"
        );
        assert_eq!(
            f(
                "%s",
                vec![Value::from(vec![Value::Double(2.5), Value::Null])]
            ),
            "[2.5, null]"
        );
        assert!(format(&Value::str("%a"), &Value::from(vec![Value::Int(1)])).is_err());
        assert!(format(&Value::str("%d"), &Value::from(vec![])).is_err());
    }
}

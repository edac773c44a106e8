//! Type conversions: int, uint, double, string, bytes, bool, dyn, type,
//! timestamp, duration.
use std::sync::Arc;

use super::super::error::{EvalError, EvalResult};
use super::super::value::{Timestamp, Value};
use super::time::{format_duration, format_timestamp, parse_duration, parse_timestamp};
use super::{Def, Imp, P};

pub static DEFS: &[Def] = &[
    Def {
        name: "int",
        receiver: false,
        sigs: &[
            (&[P::Int], P::Int),
            (&[P::Uint], P::Int),
            (&[P::Double], P::Int),
            (&[P::Str], P::Int),
            (&[P::Ts], P::Int),
        ],
        imp: Imp::F1(to_int),
    },
    Def {
        name: "uint",
        receiver: false,
        sigs: &[(&[P::Uint], P::Uint), (&[P::Int], P::Uint), (&[P::Double], P::Uint), (&[P::Str], P::Uint)],
        imp: Imp::F1(to_uint),
    },
    Def {
        name: "double",
        receiver: false,
        sigs: &[(&[P::Double], P::Double), (&[P::Int], P::Double), (&[P::Uint], P::Double), (&[P::Str], P::Double)],
        imp: Imp::F1(to_double),
    },
    Def {
        name: "string",
        receiver: false,
        sigs: &[
            (&[P::Str], P::Str),
            (&[P::Int], P::Str),
            (&[P::Uint], P::Str),
            (&[P::Double], P::Str),
            (&[P::Bytes], P::Str),
            (&[P::Bool], P::Str),
            (&[P::Ts], P::Str),
            (&[P::Dur], P::Str),
            (&[P::Type], P::Str),
        ],
        imp: Imp::F1(to_string),
    },
    Def {
        name: "bytes",
        receiver: false,
        sigs: &[(&[P::Bytes], P::Bytes), (&[P::Str], P::Bytes)],
        imp: Imp::F1(to_bytes),
    },
    Def {
        name: "bool",
        receiver: false,
        sigs: &[(&[P::Bool], P::Bool), (&[P::Str], P::Bool)],
        imp: Imp::F1(to_bool),
    },
    Def {
        name: "dyn",
        receiver: false,
        sigs: &[(&[P::Any], P::Any)],
        imp: Imp::F1(|v| Ok(v.clone())),
    },
    Def {
        name: "type",
        receiver: false,
        sigs: &[(&[P::Any], P::Type)],
        imp: Imp::F1(|v| Ok(Value::Type(v.type_of()))),
    },
    Def {
        name: "timestamp",
        receiver: false,
        sigs: &[(&[P::Str], P::Ts), (&[P::Ts], P::Ts), (&[P::Int], P::Ts)],
        imp: Imp::F1(to_timestamp),
    },
    Def {
        name: "duration",
        receiver: false,
        sigs: &[(&[P::Str], P::Dur), (&[P::Dur], P::Dur)],
        imp: Imp::F1(to_duration),
    },
];

fn unsupported(to: &str, v: &Value) -> EvalError {
    EvalError::no_such_overload(format!("{to}({})", v.type_name()))
}

/// Whether `d` (already truncated) fits an i64 exactly.
fn double_to_int(d: f64) -> Option<i64> {
    let t = d.trunc();
    (t.is_finite() && t > -9.223_372_036_854_775_808e18 && t < 9.223_372_036_854_775_808e18).then_some(t as i64)
}

pub fn to_int(v: &Value) -> EvalResult {
    Ok(Value::Int(match v {
        Value::Int(i) => *i,
        Value::Uint(u) => i64::try_from(*u).map_err(|_| EvalError::range("uint out of int range"))?,
        Value::Double(d) => double_to_int(*d).ok_or_else(|| EvalError::range("double out of int range"))?,
        Value::String(s) => parse_decimal(s, true)?
            .try_into()
            .map_err(|_| EvalError::range(format!("{s:?} is out of int range")))?,
        Value::Timestamp(t) => t.secs,
        other => return Err(unsupported("int", other)),
    }))
}

pub fn to_uint(v: &Value) -> EvalResult {
    Ok(Value::Uint(match v {
        Value::Uint(u) => *u,
        Value::Int(i) => u64::try_from(*i).map_err(|_| EvalError::range("int out of uint range"))?,
        Value::Double(d) => {
            let t = d.trunc();
            if !(d.is_finite() && *d >= 0.0 && t < 1.844_674_407_370_955_2e19) {
                return Err(EvalError::range("double out of uint range"));
            }
            t as u64
        }
        Value::String(s) => parse_decimal(s, false)?
            .try_into()
            .map_err(|_| EvalError::range(format!("{s:?} is out of uint range")))?,
        other => return Err(unsupported("uint", other)),
    }))
}

pub fn to_double(v: &Value) -> EvalResult {
    Ok(Value::Double(match v {
        Value::Double(d) => *d,
        Value::Int(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::String(s) => parse_double(s).ok_or_else(|| EvalError::conversion(format!("cannot convert {s:?} to double")))?,
        other => return Err(unsupported("double", other)),
    }))
}

/// An optionally signed (`signed`) run of decimal digits, as an i128 so
/// that the caller decides the range (`conversion` if malformed).
fn parse_decimal(s: &str, signed: bool) -> EvalResult<i128> {
    let digits = match s.as_bytes().first() {
        Some(b'+' | b'-') if signed => &s[1..],
        _ => s,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EvalError::conversion(format!("cannot convert {s:?} to a number")));
    }
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Err(EvalError::range(format!("{s:?} is out of range")));
    }
    let v: i128 = if digits.is_empty() { 0 } else { digits.parse().unwrap_or(i128::MAX) };
    Ok(if s.starts_with('-') { -v } else { v })
}

/// `[+-]?(DIGITS[.DIGITS?]|.DIGITS)([eE][+-]?DIGITS)?` or `[+-]?(inf|infinity|nan)`.
fn parse_double(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let negative = s.starts_with('-');
    match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => return Some(if negative { f64::NEG_INFINITY } else { f64::INFINITY }),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    let b = body.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac_digits = digits(&mut i);
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|d| d.is_finite())
}

/// Formats a double as Go's `%g` with shortest digits (as cel-go prints
/// it): exponent form when the decimal exponent is below -4 or at least 6.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e6".
    let sci = format!("{d:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    format!("{d}")
}

/// The text of a value as `string()` converts it.
pub fn to_display_string(v: &Value) -> EvalResult<Arc<str>> {
    Ok(match v {
        Value::String(s) => s.clone(),
        Value::Int(i) => Arc::from(i.to_string()),
        Value::Uint(u) => Arc::from(u.to_string()),
        Value::Double(d) => Arc::from(format_double(*d)),
        Value::Bool(b) => Arc::from(if *b { "true" } else { "false" }),
        Value::Bytes(b) => Arc::from(
            std::str::from_utf8(b).map_err(|_| EvalError::conversion("bytes are not valid UTF-8"))?,
        ),
        Value::Timestamp(t) => Arc::from(format_timestamp(*t)),
        Value::Duration(d) => Arc::from(format_duration(*d)),
        Value::Type(t) => Arc::from(t.name()),
        other => return Err(unsupported("string", other)),
    })
}

pub fn to_string(v: &Value) -> EvalResult {
    to_display_string(v).map(Value::String)
}

fn to_bytes(v: &Value) -> EvalResult {
    match v {
        Value::Bytes(_) => Ok(v.clone()),
        Value::String(s) => Ok(Value::Bytes(Arc::from(s.as_bytes()))),
        other => Err(unsupported("bytes", other)),
    }
}

fn to_bool(v: &Value) -> EvalResult {
    match v {
        Value::Bool(_) => Ok(v.clone()),
        Value::String(s) => match &**s {
            "true" | "True" | "TRUE" | "t" | "T" | "1" => Ok(Value::Bool(true)),
            "false" | "False" | "FALSE" | "f" | "F" | "0" => Ok(Value::Bool(false)),
            _ => Err(EvalError::conversion(format!("cannot convert {s:?} to bool"))),
        },
        other => Err(unsupported("bool", other)),
    }
}

fn to_timestamp(v: &Value) -> EvalResult {
    match v {
        Value::Timestamp(_) => Ok(v.clone()),
        Value::String(s) => parse_timestamp(s).map(Value::Timestamp),
        Value::Int(i) => Timestamp::from_nanos(*i as i128 * 1_000_000_000).map(Value::Timestamp),
        other => Err(unsupported("timestamp", other)),
    }
}

fn to_duration(v: &Value) -> EvalResult {
    match v {
        Value::Duration(_) => Ok(v.clone()),
        Value::String(s) => parse_duration(s).map(Value::Duration),
        other => Err(unsupported("duration", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_cel() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(1.0), "1");
        assert_eq!(format_double(1e100), "1e+100");
        assert_eq!(format_double(-2.5e-7), "-2.5e-07");
        assert_eq!(format_double(123456.0), "123456");
        assert_eq!(format_double(1234567.0), "1.234567e+06");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(-0.0), "-0");
        assert!(parse_double("1.").is_some() && parse_double(".5").is_some() && parse_double("-Infinity").is_some());
        assert!(parse_double("1e999").is_none() && parse_double(" 1").is_none() && parse_double("1_0").is_none());
    }

    #[test]
    fn conversions_check_ranges() {
        assert!(to_int(&Value::Double(1e19)).is_err());
        assert_eq!(to_int(&Value::Double(-1.9)).unwrap().type_name(), "int");
        assert!(to_uint(&Value::Int(-1)).is_err());
        assert!(to_int(&Value::str("12x")).is_err());
        assert_eq!(to_int(&Value::str("99999999999999999999")).unwrap_err().kind(), super::super::super::ErrorKind::Range);
        assert!(to_uint(&Value::str("+1")).is_err());
    }
}

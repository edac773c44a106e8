//! The Traffic Policy gateway functions (`docs/cel.md` §11.4): CIDR
//! matching on the shared `ipnet` matcher, encoders, JSON, query strings,
//! hashes, random numbers. The request helpers (`getReqHeader`, ...) are
//! expanded by the compiler into these `_`-prefixed implementations with the
//! variable they read as first argument.
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;

use super::super::error::{EvalError, EvalResult};
use super::super::value::{Map, Value};
use super::conv::format_double;
use super::strings::check_len;
use super::time::{format_duration, format_timestamp};
use super::{Def, Imp, P};
use crate::ipnet::{Addr, Prefix};

macro_rules! global {
    ($name:literal, [$($p:expr),*] -> $r:expr, $imp:expr) => {
        Def { name: $name, receiver: false, sigs: &[(&[$($p),*], $r)], imp: $imp }
    };
}
macro_rules! method {
    ($name:literal, [$($p:expr),*] -> $r:expr, $imp:expr) => {
        Def { name: $name, receiver: true, sigs: &[(&[$($p),*], $r)], imp: $imp }
    };
}

pub static DEFS: &[Def] = &[
    global!("inCidrRange", [P::Str, P::Str] -> P::Bool, Imp::F2(in_cidr_range)),
    global!("inCidrRanges", [P::Str, P::List] -> P::Bool, Imp::F2(in_cidr_ranges)),
    Def {
        name: "base64.encode",
        receiver: false,
        sigs: &[(&[P::Bytes], P::Str), (&[P::Str], P::Str)],
        imp: Imp::F1(base64_encode),
    },
    global!("base64.decode", [P::Str] -> P::Bytes, Imp::F1(base64_decode)),
    global!("basic_auth.encode", [P::Str, P::Str] -> P::Str, Imp::F2(basic_auth)),
    global!("url.escape", [P::Str] -> P::Str, Imp::F1(url_escape)),
    global!("url.unescape", [P::Str] -> P::Str, Imp::F1(url_unescape)),
    method!("escapeUrl", [P::Str] -> P::Str, Imp::F1(url_escape)),
    method!("unescapeUrl", [P::Str] -> P::Str, Imp::F1(url_unescape)),
    global!("json.encode", [P::Any] -> P::Str, Imp::F1(json_encode)),
    global!("json.decode", [P::Str] -> P::Any, Imp::F1(json_decode)),
    method!("decodeJson", [P::Str] -> P::Any, Imp::F1(json_decode)),
    Def {
        name: "encodeJson",
        receiver: true,
        sigs: &[(&[P::List], P::Str), (&[P::Map], P::Str)],
        imp: Imp::F1(json_encode),
    },
    method!("isJson", [P::Str] -> P::Bool, Imp::F1(|s| Ok(Value::Bool(json_decode(s).is_ok())))),
    global!("queryString.encode", [P::Map] -> P::Str, Imp::F1(query_encode)),
    method!("encodeQueryString", [P::Map] -> P::Str, Imp::F1(query_encode)),
    global!("queryString.decode", [P::Str] -> P::Map, Imp::F1(query_decode)),
    method!("decodeQueryString", [P::Str] -> P::Map, Imp::F1(query_decode)),
    method!("isQueryString", [P::Str] -> P::Bool, Imp::F1(|s| Ok(Value::Bool(query_decode(s).is_ok())))),
    method!("isPrivateIp", [P::Str] -> P::Bool, Imp::F1(is_private_ip)),
    global!("hash.md5", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Md5))),
    global!("hash.md5", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Md5))),
    global!("hash.sha1", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Sha1))),
    global!("hash.sha1", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Sha1))),
    global!("hash.sha256", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Sha256))),
    global!("hash.sha256", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Sha256))),
    global!("hash.sha512", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Sha512))),
    global!("hash.sha512", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Sha512))),
    global!("hash.crc32", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Crc32))),
    global!("hash.crc32", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Crc32))),
    global!("hash.crc64", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Crc64))),
    global!("hash.crc64", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Crc64))),
    method!("md5", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Md5))),
    method!("md5", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Md5))),
    method!("sha1", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Sha1))),
    method!("sha1", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Sha1))),
    method!("sha256", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Sha256))),
    method!("sha256", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Sha256))),
    method!("sha512", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Sha512))),
    method!("sha512", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Sha512))),
    method!("crc32", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Crc32))),
    method!("crc32", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Crc32))),
    method!("crc64", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Crc64))),
    method!("crc64", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Crc64))),
    global!("rand.double", [] -> P::Double, Imp::FN(|_| Ok(Value::Double((random() >> 11) as f64 / (1u64 << 53) as f64)))),
    global!("rand.int", [] -> P::Int, Imp::FN(|_| rand_int(0, 1))),
    global!("rand.int", [P::Int, P::Int] -> P::Int, Imp::F2(|a, b| match (a, b) {
        (Value::Int(a), Value::Int(b)) => rand_int(*a, *b),
        _ => Err(EvalError::no_such_overload("rand.int")),
    })),
];

fn overload(what: &str, v: &Value) -> EvalError {
    EvalError::no_such_overload(format!("{what}({})", v.type_name()))
}

// --- CIDR -----------------------------------------------------------------------

/// A CIDR as `inCidrRange` reads it: host bits are cleared (Go's
/// `net.ParseCIDR`); `None` if it does not parse.
pub fn parse_cidr(text: &str) -> Option<Prefix> {
    Prefix::parse_masked(text).ok().filter(|_| text.contains('/'))
}

/// Whether `ip` is in any of `prefixes`; an invalid address is in none.
pub fn ip_in(ip: &str, prefixes: &[Prefix]) -> bool {
    Addr::parse(ip).is_ok_and(|a| prefixes.iter().any(|p| p.contains(a)))
}

fn in_cidr_range(ip: &Value, cidr: &Value) -> EvalResult {
    match (ip, cidr) {
        (Value::String(ip), Value::String(c)) => Ok(Value::Bool(parse_cidr(c).is_some_and(|p| ip_in(ip, &[p])))),
        _ => Err(EvalError::no_such_overload("inCidrRange")),
    }
}

/// The parsable CIDRs of a list (others ignored); `None` if not all strings.
pub fn cidr_list(list: &Value) -> EvalResult<Vec<Prefix>> {
    let Value::List(items) = list else {
        return Err(overload("inCidrRanges", list));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items.iter() {
        match item {
            Value::String(c) => out.extend(parse_cidr(c)),
            other => return Err(overload("inCidrRanges", other)),
        }
    }
    Ok(out)
}

fn in_cidr_ranges(ip: &Value, list: &Value) -> EvalResult {
    let prefixes = cidr_list(list)?;
    match ip {
        Value::String(ip) => Ok(Value::Bool(ip_in(ip, &prefixes))),
        other => Err(overload("inCidrRanges", other)),
    }
}

fn is_private_ip(v: &Value) -> EvalResult {
    let Value::String(s) = v else {
        return Err(overload("isPrivateIp", v));
    };
    let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
    let ok = s.parse::<std::net::Ipv4Addr>().is_ok()
        && private.iter().filter_map(|c| parse_cidr(c)).any(|p| ip_in(s, &[p]));
    Ok(Value::Bool(ok))
}

// --- encoders -------------------------------------------------------------------

fn base64_encode(v: &Value) -> EvalResult {
    match v {
        Value::Bytes(b) => Ok(Value::from(STANDARD.encode(b))),
        Value::String(s) => Ok(Value::from(STANDARD.encode(s.as_bytes()))),
        other => Err(overload("base64.encode", other)),
    }
}

fn base64_decode(v: &Value) -> EvalResult {
    let Value::String(s) = v else {
        return Err(overload("base64.decode", v));
    };
    STANDARD
        .decode(s.as_bytes())
        .or_else(|_| STANDARD_NO_PAD.decode(s.as_bytes()))
        .map(|b| Value::Bytes(Arc::from(b)))
        .map_err(|_| EvalError::conversion("invalid base64"))
}

fn basic_auth(user: &Value, pass: &Value) -> EvalResult {
    match (user, pass) {
        (Value::String(u), Value::String(p)) => Ok(Value::from(format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))))),
        _ => Err(EvalError::no_such_overload("basic_auth.encode")),
    }
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> EvalResult<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let v = hex
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| EvalError::conversion(format!("invalid URL escape in {s:?}")))?;
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| EvalError::conversion("unescaped URL text is not UTF-8"))
}

fn url_escape(v: &Value) -> EvalResult {
    match v {
        Value::String(s) => Ok(Value::from(query_escape(s))),
        other => Err(overload("url.escape", other)),
    }
}

fn url_unescape(v: &Value) -> EvalResult {
    match v {
        Value::String(s) => Ok(Value::from(query_unescape(s)?)),
        other => Err(overload("url.unescape", other)),
    }
}

// --- JSON -----------------------------------------------------------------------

fn to_json(v: &Value) -> EvalResult<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Uint(u) => J::from(*u),
        Value::Double(d) => serde_json::Number::from_f64(*d)
            .map(J::Number)
            .ok_or_else(|| EvalError::invalid(format!("{} cannot be encoded as JSON", format_double(*d))))?,
        Value::String(s) => J::String(s.to_string()),
        Value::Bytes(b) => J::String(STANDARD.encode(b)),
        Value::Timestamp(t) => J::String(format_timestamp(*t)),
        Value::Duration(d) => J::String(format_duration(*d)),
        Value::List(items) => J::Array(items.iter().map(to_json).collect::<EvalResult<_>>()?),
        Value::Map(_) | Value::Lazy(_) => {
            let mut obj = serde_json::Map::new();
            for (k, val) in v.map_entries()? {
                let Value::String(k) = k else {
                    return Err(EvalError::invalid("JSON object keys must be strings"));
                };
                obj.insert(k.to_string(), to_json(&val)?);
            }
            J::Object(obj)
        }
        Value::Type(t) => J::String(t.name().to_string()),
    })
}

fn json_encode(v: &Value) -> EvalResult {
    let text = serde_json::to_string(&to_json(v)?).map_err(|e| EvalError::invalid(e.to_string()))?;
    check_len(text.len())?;
    Ok(Value::from(text))
}

fn from_json(j: serde_json::Value) -> EvalResult {
    use serde_json::Value as J;
    Ok(match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::from(s),
        J::Array(items) => Value::from(items.into_iter().map(from_json).collect::<EvalResult<Vec<_>>>()?),
        J::Object(obj) => {
            let entries = obj
                .into_iter()
                .map(|(k, v)| Ok((Value::from(k), from_json(v)?)))
                .collect::<EvalResult<Vec<_>>>()?;
            Value::Map(Arc::new(Map::from_entries(entries)?))
        }
    })
}

fn json_decode(v: &Value) -> EvalResult {
    let Value::String(s) = v else {
        return Err(overload("json.decode", v));
    };
    let j: serde_json::Value = serde_json::from_str(s).map_err(|e| EvalError::conversion(format!("invalid JSON: {e}")))?;
    from_json(j)
}

// --- query strings --------------------------------------------------------------

fn query_encode(v: &Value) -> EvalResult {
    let mut entries = v.map_entries()?;
    let mut keys = Vec::with_capacity(entries.len());
    for (k, _) in &entries {
        let Value::String(k) = k else {
            return Err(EvalError::invalid("query string keys must be strings"));
        };
        keys.push(k.clone());
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    let mut parts = Vec::new();
    for i in order {
        let k = query_escape(&keys[i]);
        match std::mem::replace(&mut entries[i].1, Value::Null) {
            Value::String(s) => parts.push(format!("{k}={}", query_escape(&s))),
            Value::List(items) => {
                for item in items.iter() {
                    let Value::String(s) = item else {
                        return Err(EvalError::invalid("query string values must be strings or lists of strings"));
                    };
                    parts.push(format!("{k}={}", query_escape(s)));
                }
            }
            _ => return Err(EvalError::invalid("query string values must be strings or lists of strings")),
        }
    }
    Ok(Value::from(parts.join("&")))
}

fn query_decode(v: &Value) -> EvalResult {
    let Value::String(s) = v else {
        return Err(overload("queryString.decode", v));
    };
    let mut entries: Vec<(Value, Vec<Value>)> = Vec::new();
    for part in s.split('&').filter(|p| !p.is_empty()) {
        if part.contains(';') {
            return Err(EvalError::conversion("invalid semicolon separator in query"));
        }
        let (k, val) = part.split_once('=').unwrap_or((part, ""));
        let k = query_unescape(k)?;
        let val = Value::from(query_unescape(val)?);
        match entries.iter_mut().find(|(ek, _)| matches!(ek, Value::String(e) if **e == *k)) {
            Some((_, vals)) => vals.push(val),
            None => entries.push((Value::from(k), vec![val])),
        }
    }
    let entries = entries.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
    Ok(Value::Map(Arc::new(Map::from_entries(entries)?)))
}

// --- hashes ---------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Algo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Crc32,
    Crc64,
}

fn hash(v: &Value, format: Option<&Value>, algo: Algo) -> EvalResult {
    use sha2::Digest;
    let Value::String(s) = v else {
        return Err(overload("hash", v));
    };
    let data = s.as_bytes();
    let digest: Vec<u8> = match algo {
        Algo::Md5 => md5::Md5::digest(data).to_vec(),
        Algo::Sha1 => sha1::Sha1::digest(data).to_vec(),
        Algo::Sha256 => sha2::Sha256::digest(data).to_vec(),
        Algo::Sha512 => sha2::Sha512::digest(data).to_vec(),
        Algo::Crc32 => crc32fast::hash(data).to_be_bytes().to_vec(),
        Algo::Crc64 => crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO).checksum(data).to_be_bytes().to_vec(),
    };
    let text = match format {
        None => hex(&digest),
        Some(Value::String(f)) if &**f == "hex" => hex(&digest),
        Some(Value::String(f)) if &**f == "base64" => STANDARD.encode(&digest),
        Some(other) => return Err(EvalError::invalid(format!("unknown hash output format {other:?}"))),
    };
    Ok(Value::from(text))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// --- random ---------------------------------------------------------------------

/// A non-cryptographic random u64 (xorshift seeded by the std hasher).
fn random() -> u64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0u64) | 1);
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

fn rand_int(min: i64, max: i64) -> EvalResult {
    if min > max {
        return Err(EvalError::invalid(format!("rand.int: min {min} > max {max}")));
    }
    let span = (max as i128 - min as i128 + 1) as u128;
    Ok(Value::Int((min as i128 + (random() as u128 % span) as i128) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: EvalResult) -> String {
        match v.unwrap() {
            Value::String(s) => s.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn documented_values() {
        let hello = Value::str("hello");
        assert_eq!(s(hash(&hello, None, Algo::Crc32)), "3610a686");
        assert_eq!(s(hash(&hello, Some(&Value::str("base64")), Algo::Crc32)), "NhCmhg==");
        assert_eq!(s(hash(&hello, None, Algo::Crc64)), "3c3eeee2d8100000");
        assert_eq!(s(hash(&hello, None, Algo::Md5)), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(s(basic_auth(&Value::str("username"), &Value::str("password1"))), "Basic dXNlcm5hbWU6cGFzc3dvcmQx");
        assert_eq!(s(url_escape(&Value::str("a b&c~*"))), "a+b%26c~%2A");
        assert!(base64_decode(&Value::str("aGVsbG8")).is_ok());
    }

    #[test]
    fn cidrs() {
        assert!(matches!(in_cidr_range(&Value::str("10.1.2.3"), &Value::str("10.0.0.0/8")), Ok(Value::Bool(true))));
        assert!(matches!(in_cidr_range(&Value::str("::ffff:10.1.2.3"), &Value::str("10.0.0.0/8")), Ok(Value::Bool(true))));
        assert!(matches!(in_cidr_range(&Value::str("2001:4860::1"), &Value::str("2001:4860::/32")), Ok(Value::Bool(true))));
        assert!(matches!(in_cidr_range(&Value::str("x"), &Value::str("10.0.0.0/8")), Ok(Value::Bool(false))));
        assert!(matches!(in_cidr_range(&Value::str("10.0.0.1"), &Value::str("nope")), Ok(Value::Bool(false))));
    }
}

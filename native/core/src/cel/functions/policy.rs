//! The Traffic Policy gateway functions (`docs/cel.md` §11.4): CIDR
//! matching on the shared `ipnet` matcher, encoders, JSON, query strings,
//! hashes, random numbers. The request helpers (`getReqHeader`, ...) are
//! expanded by the compiler into these `_`-prefixed implementations with the
//! variable they read as first argument.
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::super::error::{EvalError, EvalResult};
use super::super::types::{ObjectTy, Ty};
use super::super::value::{check_depth, Map, Value};
use super::conv::format_double;
use super::strings::check_len;
use super::time::{format_duration, format_timestamp};
use super::url;
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
        imp: Imp::F1(|v| match v {
            Value::List(_) | Value::Map(_) | Value::Lazy(_) => json_encode(v),
            other => Err(overload("encodeJson", other)),
        }),
    },
    method!("isJson", [P::Str] -> P::Bool, Imp::F1(|s| match s {
        Value::String(_) => Ok(Value::Bool(json_decode(s).is_ok())),
        other => Err(overload("isJson", other)),
    })),
    global!("queryString.encode", [P::Map] -> P::Str, Imp::F1(query_encode)),
    method!("encodeQueryString", [P::Map] -> P::Str, Imp::F1(query_encode)),
    global!("queryString.decode", [P::Str] -> P::MapStrList, Imp::F1(query_decode)),
    method!("decodeQueryString", [P::Str] -> P::MapStrList, Imp::F1(query_decode)),
    method!("isQueryString", [P::Str] -> P::Bool, Imp::F1(|s| match s {
        Value::String(_) => Ok(Value::Bool(query_decode(s).is_ok())),
        other => Err(overload("isQueryString", other)),
    })),
    method!("isPrivateIp", [P::Str] -> P::Bool, Imp::F1(is_private_ip)),
    method!("decodeBase64", [P::Str] -> P::Str, Imp::F1(decode_base64_text)),
    Def {
        name: "encodeBase64",
        receiver: true,
        sigs: &[(&[P::Str], P::Str), (&[P::Bytes], P::Str)],
        imp: Imp::F1(base64_encode),
    },
    method!("isURL", [P::Str] -> P::Bool, Imp::F1(is_url)),
    method!("parseUrl", [P::Str] -> P::Url, Imp::F1(parse_url)),
    global!("url.parse", [P::Str] -> P::Url, Imp::F1(parse_url)),
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
    global!("hash.xxhash64", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Xxh64))),
    global!("hash.xxhash64", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Xxh64))),
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
    method!("xxhash64", [P::Str] -> P::Str, Imp::F1(|s| hash(s, None, Algo::Xxh64))),
    method!("xxhash64", [P::Str, P::Str] -> P::Str, Imp::F2(|s, f| hash(s, Some(f), Algo::Xxh64))),
    global!("getReqHeader", [P::Map, P::Str] -> P::ListStr, Imp::F2(|m, n| get_values(m, n, true))),
    global!("hasReqHeader", [P::Map, P::Str] -> P::Bool, Imp::F2(|m, n| has_key(m, n, true))),
    global!("getResHeader", [P::Map, P::Str] -> P::ListStr, Imp::F2(|m, n| get_values(m, n, true))),
    global!("hasResHeader", [P::Map, P::Str] -> P::Bool, Imp::F2(|m, n| has_key(m, n, true))),
    global!("getQueryParam", [P::Map, P::Str] -> P::ListStr, Imp::F2(|m, n| get_values(m, n, false))),
    global!("hasQueryParam", [P::Map, P::Str] -> P::Bool, Imp::F2(|m, n| has_key(m, n, false))),
    global!("getReqCookie", [P::Map, P::Str] -> P::MapStrDyn, Imp::F2(get_cookie)),
    global!("hasReqCookie", [P::Map, P::Str] -> P::Bool, Imp::F2(has_cookie)),
    global!("getResCookie", [P::Map, P::Str] -> P::MapStrDyn, Imp::F2(get_cookie)),
    global!("hasResCookie", [P::Map, P::Str] -> P::Bool, Imp::F2(has_cookie)),
    // Bound to the Env's secrets table by the compiler (`Node::Secret`).
    global!("secrets.get", [P::Str, P::Str] -> P::Str, Imp::F2(|_, _| {
        Err(EvalError::invalid("secrets.get is compiled to a node of its own"))
    })),
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

/// A CIDR as `inCidrRange` reads it: host bits are cleared, a bare
/// address is a host prefix; `None` if it does not parse.
pub fn parse_cidr(text: &str) -> Option<Prefix> {
    Prefix::parse_masked(text).ok()
}

/// Whether `ip` is in any of `prefixes`; an invalid address is in none.
pub fn ip_in(ip: &str, prefixes: &[Prefix]) -> bool {
    Addr::parse(ip).is_ok_and(|a| prefixes.iter().any(|p| p.contains(a)))
}

fn in_cidr_range(ip: &Value, cidr: &Value) -> EvalResult {
    match (ip, cidr) {
        (Value::String(ip), Value::String(c)) => {
            Ok(Value::Bool(parse_cidr(c).is_some_and(|p| ip_in(ip, &[p]))))
        }
        _ => Err(EvalError::no_such_overload("inCidrRange")),
    }
}

/// The parsable CIDRs of a list (other entries are ignored).
pub fn cidr_list(list: &Value) -> EvalResult<Vec<Prefix>> {
    let Value::List(items) = list else {
        return Err(overload("inCidrRanges", list));
    };
    Ok(items
        .iter()
        .filter_map(|item| match item {
            Value::String(c) => parse_cidr(c),
            _ => None,
        })
        .collect())
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
        && private
            .iter()
            .filter_map(|c| parse_cidr(c))
            .any(|p| ip_in(s, &[p]));
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

/// Standard alphabet, padding optional (cel-go tries padded, then raw).
fn base64_decode(v: &Value) -> EvalResult {
    let Value::String(text) = v else {
        return Err(overload("base64.decode", v));
    };
    let bad = || EvalError::conversion("invalid base64");
    let body = text
        .strip_suffix("==")
        .or_else(|| text.strip_suffix('='))
        .unwrap_or(text);
    let padded = body.len() != text.len();
    if !body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        || body.len() % 4 == 1
        || (padded && text.len() % 4 != 0)
    {
        return Err(bad());
    }
    LENIENT
        .decode(body.as_bytes())
        .map(|b| Value::Bytes(Arc::from(b)))
        .map_err(|_| bad())
}

/// `s.decodeBase64()`: `base64.decode`, read as UTF-8 text.
fn decode_base64_text(v: &Value) -> EvalResult {
    match base64_decode(v)? {
        Value::Bytes(b) => String::from_utf8(b.to_vec())
            .map(Value::from)
            .map_err(|_| EvalError::conversion("the decoded base64 is not valid UTF-8")),
        other => Ok(other),
    }
}

/// Decodes unpadded input and ignores non-zero trailing bits, as Python's
/// and Go's decoders do.
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

fn basic_auth(user: &Value, pass: &Value) -> EvalResult {
    match (user, pass) {
        (Value::String(u), Value::String(p)) => Ok(Value::from(format!(
            "Basic {}",
            STANDARD.encode(format!("{u}:{p}"))
        ))),
        _ => Err(EvalError::no_such_overload("basic_auth.encode")),
    }
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
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
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
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

/// The text `json.encode` builds, with its length in code points: checked
/// against `MAX_RESULT_LEN` after each piece, so a list holding one long
/// string many times stops early instead of allocating the whole.
struct JsonOut {
    text: String,
    size: usize,
}

impl JsonOut {
    fn push(&mut self, piece: &str) -> EvalResult<()> {
        self.size += piece.chars().count();
        check_len(self.size)?;
        self.text.push_str(piece);
        Ok(())
    }

    fn string(&mut self, s: &str) -> EvalResult<()> {
        self.push(&serde_json::to_string(s).unwrap_or_default())
    }
}

/// Compact JSON: strings as Python's `json.dumps(ensure_ascii=False)`,
/// doubles as `string()` prints them, bytes base64, times as text. Lists
/// and maps nest at most `MAX_VALUE_DEPTH` levels.
fn write_json(v: &Value, out: &mut JsonOut, level: usize) -> EvalResult<()> {
    match v {
        Value::Null => out.push("null"),
        Value::Bool(b) => out.push(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push(&i.to_string()),
        Value::Uint(u) => out.push(&u.to_string()),
        Value::Double(d) if d.is_finite() => out.push(&format_double(*d)),
        Value::Double(d) => Err(EvalError::invalid(format!(
            "{} is not valid JSON",
            format_double(*d)
        ))),
        Value::String(s) => out.string(s),
        Value::Bytes(b) => out.string(&STANDARD.encode(b)),
        Value::Timestamp(t) => out.string(&format_timestamp(*t)),
        Value::Duration(d) => out.string(&format_duration(*d)),
        Value::Type(t) => out.string(t.name()),
        Value::Unreadable(e) => Err((**e).clone()),
        Value::List(items) => {
            check_depth(level)?;
            out.push("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(",")?;
                }
                write_json(item, out, level + 1)?;
            }
            out.push("]")
        }
        Value::Map(_) | Value::Lazy(_) => {
            check_depth(level)?;
            out.push("{")?;
            for (i, (k, item)) in v.map_entries()?.iter().enumerate() {
                let Value::String(k) = k else {
                    return Err(EvalError::invalid(format!(
                        "JSON object keys must be strings, not {}",
                        k.type_name()
                    )));
                };
                if i > 0 {
                    out.push(",")?;
                }
                out.string(k)?;
                out.push(":")?;
                write_json(item, out, level + 1)?;
            }
            out.push("}")
        }
    }
}

fn json_encode(v: &Value) -> EvalResult {
    let mut out = JsonOut {
        text: String::new(),
        size: 0,
    };
    write_json(v, &mut out, 0)?;
    Ok(Value::from(out.text))
}

/// A JSON document read straight into CEL values, objects in document
/// order (as Python's `json.loads`; a repeated key keeps its first place
/// and its last value).
struct Json(Value);

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json(Value::Null))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json(Value::Bool(b)))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Json, E> {
        Ok(Json(Value::Int(i)))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Json, E> {
        // Integers outside int64 become doubles.
        Ok(Json(
            i64::try_from(u).map_or(Value::Double(u as f64), Value::Int),
        ))
    }
    fn visit_f64<E: serde::de::Error>(self, d: f64) -> Result<Json, E> {
        if !d.is_finite() {
            return Err(E::custom("number out of range"));
        }
        Ok(Json(Value::Double(d)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json(Value::str(s)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(Json(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json(Value::from(items)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries: Vec<(Value, Value)> = Vec::new();
        while let Some((k, Json(v))) = map.next_entry::<String, Json>()? {
            match entries
                .iter_mut()
                .find(|(ek, _)| matches!(ek, Value::String(e) if **e == *k))
            {
                Some(entry) => entry.1 = v,
                None => entries.push((Value::from(k), v)),
            }
        }
        let m = Map::from_entries(entries).map_err(|e| serde::de::Error::custom(e.message()))?;
        Ok(Json(Value::Map(Arc::new(m))))
    }
}

/// Deeper JSON documents are rejected (`conversion`).
const MAX_JSON_DEPTH: usize = 100;

fn json_depth_ok(text: &str) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for c in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        } else if c == b'[' || c == b'{' {
            depth += 1;
            if depth > MAX_JSON_DEPTH {
                return false;
            }
        } else if c == b']' || c == b'}' {
            depth = depth.saturating_sub(1);
        }
    }
    true
}

fn json_decode(v: &Value) -> EvalResult {
    let Value::String(s) = v else {
        return Err(overload("json.decode", v));
    };
    if !json_depth_ok(s) {
        return Err(EvalError::conversion(format!(
            "JSON nested deeper than {MAX_JSON_DEPTH}"
        )));
    }
    serde_json::from_str::<Json>(s)
        .map(|j| j.0)
        .map_err(|e| EvalError::conversion(format!("invalid JSON: {e}")))
}

// --- query strings --------------------------------------------------------------

fn query_encode(v: &Value) -> EvalResult {
    if !v.is_map() {
        return Err(overload("queryString.encode", v));
    }
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
                        return Err(EvalError::invalid(
                            "query string values must be strings or lists of strings",
                        ));
                    };
                    parts.push(format!("{k}={}", query_escape(s)));
                }
            }
            _ => {
                return Err(EvalError::invalid(
                    "query string values must be strings or lists of strings",
                ))
            }
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
            return Err(EvalError::conversion(
                "invalid semicolon separator in query",
            ));
        }
        let (k, val) = part.split_once('=').unwrap_or((part, ""));
        let k = query_unescape(k)?;
        let val = Value::from(query_unescape(val)?);
        match entries
            .iter_mut()
            .find(|(ek, _)| matches!(ek, Value::String(e) if **e == *k))
        {
            Some((_, vals)) => vals.push(val),
            None => entries.push((Value::from(k), vec![val])),
        }
    }
    let entries = entries
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    Ok(Value::Map(Arc::new(Map::from_entries(entries)?)))
}

// --- request helpers ------------------------------------------------------------

/// The implicit first argument of the request helpers: `getReqHeader(n)`
/// is `getReqHeader(req.headers, n)`.
pub static IMPLICIT_ARGUMENTS: &[(&str, usize, &[&str])] = &[
    ("getReqHeader", 1, &["req", "headers"]),
    ("hasReqHeader", 1, &["req", "headers"]),
    ("getQueryParam", 1, &["req", "url", "query_params"]),
    ("hasQueryParam", 1, &["req", "url", "query_params"]),
    ("getReqCookie", 1, &["req", "cookies"]),
    ("hasReqCookie", 1, &["req", "cookies"]),
    ("getResHeader", 1, &["res", "headers"]),
    ("hasResHeader", 1, &["res", "headers"]),
    ("getResCookie", 1, &["res", "cookies"]),
    ("hasResCookie", 1, &["res", "cookies"]),
];

/// The names only the pricing page lists (traffic-policy-reference §2.7)
/// whose meaning is clear from the name: (alias, canonical function, whether
/// the alias's first argument is the canonical function's receiver). The
/// compiler rewrites the call; the same table as the reference's
/// `functions.ALIASES` (docs/cel.md §11.5).
pub static ALIASES: &[(&str, &str, bool)] = &[
    ("b64.decode", "base64.decode", false),
    ("b64.encode", "base64.encode", false),
    ("security.secret", "secrets.get", false),
    ("utility.base64_decode", "base64.decode", false),
    ("utility.base64_encode", "base64.encode", false),
    ("utility.basic_auth_encode", "basic_auth.encode", false),
    ("utility.in_cidr_range", "inCidrRange", false),
    ("utility.in_cidr_ranges", "inCidrRanges", false),
    ("utility.json_decode", "json.decode", false),
    ("utility.json_encode", "json.encode", false),
    ("utility.list_encode_json", "encodeJson", true),
    ("utility.object_encode_json", "encodeJson", true),
    (
        "utility.object_encode_query_string",
        "encodeQueryString",
        true,
    ),
    ("utility.query_string_decode", "queryString.decode", false),
    ("utility.query_string_encode", "queryString.encode", false),
    ("utility.rand_double", "rand.double", false),
    ("utility.rand_int", "rand.int", false),
    ("utility.string_decode_base64", "decodeBase64", true),
    ("utility.string_decode_json", "decodeJson", true),
    (
        "utility.string_decode_query_string",
        "decodeQueryString",
        true,
    ),
    ("utility.string_encode_base64", "encodeBase64", true),
    ("utility.string_escape_url", "escapeUrl", true),
    ("utility.string_is_json", "isJson", true),
    ("utility.string_is_query_string", "isQueryString", true),
    ("utility.string_is_url", "isURL", true),
    ("utility.string_parse_url", "parseUrl", true),
    ("utility.string_unescape_url", "unescapeUrl", true),
    ("utility.url_escape", "url.escape", false),
    ("utility.url_parse", "url.parse", false),
    ("utility.url_unescape", "url.unescape", false),
];

/// Pricing-page names that read one variable: `http.path()` is `req.url.path`.
pub static VARIABLE_ALIASES: &[(&str, &[&str])] = &[
    ("http.path", &["req", "url", "path"]),
    ("http.query", &["req", "url", "query"]),
    ("http.request_method", &["req", "method"]),
    ("http.request_uri", &["req", "url", "uri"]),
    ("http.scheme", &["req", "url", "scheme"]),
    ("http.status", &["res", "status_code"]),
    ("http.user_agent", &["req", "user_agent"]),
];

fn name_key(name: &Value, fold_case: bool) -> EvalResult<Value> {
    match name {
        Value::String(s) if fold_case && s.bytes().any(|b| b.is_ascii_uppercase()) => {
            Ok(Value::from(s.to_ascii_lowercase()))
        }
        Value::String(_) => Ok(name.clone()),
        other => Err(overload("header helper", other)),
    }
}

/// Header names are matched in lower case (the map's keys are).
fn get_values(map: &Value, name: &Value, fold_case: bool) -> EvalResult {
    Ok(map
        .map_get(&name_key(name, fold_case)?)?
        .unwrap_or_else(|| Value::from(Vec::new())))
}

fn has_key(map: &Value, name: &Value, fold_case: bool) -> EvalResult {
    Ok(Value::Bool(
        map.map_get(&name_key(name, fold_case)?)?.is_some(),
    ))
}

fn get_cookie(cookies: &Value, name: &Value) -> EvalResult {
    name_key(name, false)?;
    if let Some(Value::List(found)) = cookies.map_get(name)? {
        if let Some(first) = found.first() {
            return Ok(first.clone());
        }
    }
    Err(EvalError::no_such_key(format!("no cookie {name:?}")))
}

fn has_cookie(cookies: &Value, name: &Value) -> EvalResult {
    name_key(name, false)?;
    Ok(Value::Bool(
        matches!(cookies.map_get(name)?, Some(Value::List(l)) if !l.is_empty()),
    ))
}

// --- URLs -----------------------------------------------------------------------

/// The static type of the object `parseUrl()` returns: the fields of Go's
/// `net/url.URL` in snake_case (the reference's `policy_env.URL_OBJECT`).
pub fn url_type() -> Ty {
    static URL: OnceLock<Ty> = OnceLock::new();
    URL.get_or_init(|| {
        let object = |fields: &[(&str, Ty)]| {
            Ty::Object(Arc::new(ObjectTy {
                fields: fields
                    .iter()
                    .map(|(n, t)| (n.to_string(), t.clone()))
                    .collect::<BTreeMap<_, _>>(),
                own: None,
            }))
        };
        let user = object(&[
            ("username", Ty::String),
            ("password", Ty::String),
            ("password_set", Ty::Bool),
        ]);
        object(&[
            ("scheme", Ty::String),
            ("opaque", Ty::String),
            ("user", user),
            ("host", Ty::String),
            ("path", Ty::String),
            ("raw_path", Ty::String),
            ("omit_host", Ty::Bool),
            ("force_query", Ty::Bool),
            ("raw_query", Ty::String),
            ("fragment", Ty::String),
            ("raw_fragment", Ty::String),
        ])
    })
    .clone()
}

/// An absolute URI or an absolute path: Go's `url.ParseRequestURI` accepts
/// it (as Kubernetes' CEL `isURL`).
fn is_url(v: &Value) -> EvalResult {
    match v {
        Value::String(s) => Ok(Value::Bool(url::parse_request_uri(s).is_ok())),
        other => Err(overload("isURL", other)),
    }
}

/// Go's `url.Parse`, as a map of the URL object's fields.
fn parse_url(v: &Value) -> EvalResult {
    let Value::String(s) = v else {
        return Err(overload("parseUrl", v));
    };
    let u = url::parse(s).map_err(|e| EvalError::conversion(format!("invalid URL: {e}")))?;
    let (username, password, password_set) = u.user.unwrap_or_default();
    let map = |entries: Vec<(&str, Value)>| -> EvalResult {
        let entries = entries
            .into_iter()
            .map(|(k, v)| (Value::str(k), v))
            .collect();
        Ok(Value::Map(Arc::new(Map::from_entries(entries)?)))
    };
    let user = map(vec![
        ("username", Value::from(username)),
        ("password", Value::from(password)),
        ("password_set", Value::Bool(password_set)),
    ])?;
    map(vec![
        ("scheme", Value::from(u.scheme)),
        ("opaque", Value::from(u.opaque)),
        ("user", user),
        ("host", Value::from(u.host)),
        ("path", Value::from(u.path)),
        ("raw_path", Value::from(u.raw_path)),
        ("omit_host", Value::Bool(u.omit_host)),
        ("force_query", Value::Bool(u.force_query)),
        ("raw_query", Value::from(u.raw_query)),
        ("fragment", Value::from(u.fragment)),
        ("raw_fragment", Value::from(u.raw_fragment)),
    ])
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
    Xxh64,
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
        Algo::Crc64 => crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO)
            .checksum(data)
            .to_be_bytes()
            .to_vec(),
        // xxHash64, seed 0, in its canonical (big-endian) byte order.
        Algo::Xxh64 => xxhash_rust::xxh64::xxh64(data, 0).to_be_bytes().to_vec(),
    };
    let text = match format {
        None => hex(&digest),
        Some(Value::String(f)) if &**f == "hex" => hex(&digest),
        Some(Value::String(f)) if &**f == "base64" => STANDARD.encode(&digest),
        Some(Value::String(f)) => {
            return Err(EvalError::invalid(format!(
                "hash format must be 'hex' or 'base64', not {f:?}"
            )))
        }
        Some(other) => return Err(overload("hash", other)),
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
        return Err(EvalError::invalid(format!(
            "rand.int: min {min} > max {max}"
        )));
    }
    let span = (max as i128 - min as i128 + 1) as u128;
    Ok(Value::Int(
        (min as i128 + (random() as u128 % span) as i128) as i64,
    ))
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
        assert_eq!(
            s(hash(&hello, Some(&Value::str("base64")), Algo::Crc32)),
            "NhCmhg=="
        );
        assert_eq!(s(hash(&hello, None, Algo::Crc64)), "3c3eeee2d8100000");
        assert_eq!(
            s(hash(&hello, None, Algo::Md5)),
            "5d41402abc4b2a76b9719d911017c592"
        );
        assert_eq!(
            s(basic_auth(
                &Value::str("username"),
                &Value::str("password1")
            )),
            "Basic dXNlcm5hbWU6cGFzc3dvcmQx"
        );
        assert_eq!(s(url_escape(&Value::str("a b&c~*"))), "a+b%26c~%2A");
        assert!(base64_decode(&Value::str("aGVsbG8")).is_ok());
        assert!(base64_decode(&Value::str("aGVsbG8=")).is_ok());
        assert!(base64_decode(&Value::str("aGVsbG")).is_ok());
        assert!(base64_decode(&Value::str("a")).is_err());
        assert_eq!(
            s(json_encode(
                &json_decode(&Value::str(r#" {"a": [1, 2.5, "é\n"], "b": null} "#)).unwrap()
            )),
            r#"{"a":[1,2.5,"é\n"],"b":null}"#
        );
    }

    /// xxHash's `fillTestBuffer` (xsum_sanity_check.c).
    fn sanity_buffer(len: usize) -> Vec<u8> {
        let mut gen: u64 = 2654435761;
        (0..len)
            .map(|_| {
                let b = (gen >> 56) as u8;
                gen = gen.wrapping_mul(11400714785074694797);
                b
            })
            .collect()
    }

    #[test]
    fn xxhash64_published_vectors() {
        // XSUM_XXH64_testdata, seed 0.
        for (len, want) in [
            (0, 0xEF46DB3751D8E999u64),
            (1, 0xE934A84ADB052768),
            (4, 0x9136A0DCA57457EE),
            (14, 0x8282DCC4994E35C8),
            (222, 0xB641AE8CB691C174),
        ] {
            assert_eq!(xxhash_rust::xxh64::xxh64(&sanity_buffer(len), 0), want);
        }
        let hello = Value::str("hello");
        assert_eq!(s(hash(&hello, None, Algo::Xxh64)), "26c7827d889f6da3");
        assert_eq!(
            s(hash(&hello, Some(&Value::str("base64")), Algo::Xxh64)),
            "JseCfYifbaM="
        );
    }

    #[test]
    fn base64_text_and_urls() {
        assert_eq!(
            s(decode_base64_text(&Value::str("c29tZTp0aGluZw=="))),
            "some:thing"
        );
        assert!(decode_base64_text(&Value::str("/w==")).is_err());
        assert!(matches!(
            is_url(&Value::str("https://ngrok.com")),
            Ok(Value::Bool(true))
        ));
        assert!(matches!(
            is_url(&Value::str("not a url")),
            Ok(Value::Bool(false))
        ));
        let u = parse_url(&Value::str("https://u@ngrok.com/a?b#c")).unwrap();
        let field = |k: &str| u.map_get(&Value::str(k)).unwrap().unwrap();
        assert!(matches!(field("host"), Value::String(h) if &*h == "ngrok.com"));
        assert!(matches!(field("raw_query"), Value::String(q) if &*q == "b"));
        assert!(parse_url(&Value::str("http://[::1]a")).is_err());
    }

    #[test]
    fn cidrs() {
        assert!(matches!(
            in_cidr_range(&Value::str("10.1.2.3"), &Value::str("10.0.0.0/8")),
            Ok(Value::Bool(true))
        ));
        assert!(matches!(
            in_cidr_range(&Value::str("::ffff:10.1.2.3"), &Value::str("10.0.0.0/8")),
            Ok(Value::Bool(true))
        ));
        assert!(matches!(
            in_cidr_range(&Value::str("2001:4860::1"), &Value::str("2001:4860::/32")),
            Ok(Value::Bool(true))
        ));
        assert!(matches!(
            in_cidr_range(&Value::str("x"), &Value::str("10.0.0.0/8")),
            Ok(Value::Bool(false))
        ));
        assert!(matches!(
            in_cidr_range(&Value::str("10.0.0.1"), &Value::str("nope")),
            Ok(Value::Bool(false))
        ));
    }
}

//! CEL values. Cheap to clone (aggregates are shared), `Send + Sync` so that
//! constants can live inside a compiled `Program`. A map may be *lazy*: an
//! object of the host (a Python mapping) that converts entries on access.
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::error::{ErrorKind, EvalError, EvalResult};

/// Operations that walk a whole value (equality, `json.encode`, the `%s`
/// text, `flatten`, the conversion of a result to the host) descend at most
/// this many levels of lists and maps: a list or map met deeper is a
/// `limit` error. Values from the host can nest arbitrarily; this keeps
/// every recursion over them bounded (the reference twin has the same rule).
pub const MAX_VALUE_DEPTH: usize = 100;

/// `limit` if a list or map sits at `level` (0 = the value itself) at or
/// past `MAX_VALUE_DEPTH`.
pub fn check_depth(level: usize) -> EvalResult<()> {
    if level >= MAX_VALUE_DEPTH {
        return Err(EvalError::new(
            ErrorKind::Limit,
            format!("value nested deeper than {MAX_VALUE_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// Seconds and nanoseconds since the Unix epoch (UTC), within the CEL range
/// 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999999Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// A signed span of nanoseconds within the range of an i64 (Go's
/// `time.Duration`, as cel-go: about ±292 years).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    pub nanos: i128,
}

pub const MIN_TIMESTAMP_SECS: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
/// 2^63 and 2^64 as doubles: the bounds of the integer types.
pub const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
pub const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
pub const MAX_TIMESTAMP_SECS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
/// Go's `time.Duration` range, as cel-go.
pub const MAX_DURATION_NANOS: i128 = i64::MAX as i128;
pub const MIN_DURATION_NANOS: i128 = i64::MIN as i128;

impl Timestamp {
    pub fn from_nanos(total: i128) -> EvalResult<Timestamp> {
        let secs = total.div_euclid(1_000_000_000);
        let nanos = total.rem_euclid(1_000_000_000) as u32;
        if secs < MIN_TIMESTAMP_SECS as i128 || secs > MAX_TIMESTAMP_SECS as i128 {
            return Err(EvalError::range("timestamp out of range"));
        }
        Ok(Timestamp {
            secs: secs as i64,
            nanos,
        })
    }
    /// The timestamp of a UTC civil date and time (`None` if invalid).
    pub fn from_civil(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        nanos: u32,
    ) -> Option<Timestamp> {
        let secs = chrono::NaiveDate::from_ymd_opt(year, month, day)?
            .and_hms_opt(hour, minute, second)?
            .and_utc()
            .timestamp();
        Timestamp::from_nanos(secs as i128 * 1_000_000_000 + nanos as i128).ok()
    }

    pub fn total_nanos(self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }
}

impl Duration {
    pub fn new(nanos: i128) -> EvalResult<Duration> {
        if !(MIN_DURATION_NANOS..=MAX_DURATION_NANOS).contains(&nanos) {
            return Err(EvalError::range("duration out of range"));
        }
        Ok(Duration { nanos })
    }
}

/// A runtime type value (`type(x)`, `int`, `list`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CelType {
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    List,
    Map,
    Timestamp,
    Duration,
    Type,
}

impl CelType {
    pub fn name(&self) -> &'static str {
        match self {
            CelType::Null => "null_type",
            CelType::Bool => "bool",
            CelType::Int => "int",
            CelType::Uint => "uint",
            CelType::Double => "double",
            CelType::String => "string",
            CelType::Bytes => "bytes",
            CelType::List => "list",
            CelType::Map => "map",
            CelType::Timestamp => "google.protobuf.Timestamp",
            CelType::Duration => "google.protobuf.Duration",
            CelType::Type => "type",
        }
    }
}

/// A map whose entries the host converts on demand (e.g. a Python mapping
/// read during one evaluation). Keys of such maps are strings or ints.
#[allow(clippy::len_without_is_empty)] // `len` is `size()`; emptiness is never asked
pub trait LazyMap: Send + Sync {
    /// The value at `key`, `None` when absent.
    fn get(&self, key: &Value) -> EvalResult<Option<Value>>;
    /// Whether `key` is present (`has()`), without converting its value.
    fn contains(&self, key: &Value) -> EvalResult<bool> {
        Ok(self.get(key)?.is_some())
    }
    fn len(&self) -> EvalResult<usize>;
    /// Every key, in the host's order.
    fn keys(&self) -> EvalResult<Vec<Value>>;
    /// Every entry, in the host's order.
    fn entries(&self) -> EvalResult<Vec<(Value, Value)>> {
        self.keys()?
            .into_iter()
            .map(|k| {
                let v = self
                    .get(&k)?
                    .ok_or_else(|| EvalError::no_such_key(format!("{k:?}")))?;
                Ok((k, v))
            })
            .collect()
    }
}

#[derive(Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(Arc<str>),
    Bytes(Arc<[u8]>),
    List(Arc<Vec<Value>>),
    Map(Arc<Map>),
    Lazy(Arc<dyn LazyMap>),
    Timestamp(Timestamp),
    Duration(Duration),
    Type(CelType),
    /// An element of a host list that has no CEL value (a Python object of
    /// another type): reading it is the stored error, while the list's
    /// size and the other elements stay usable.
    Unreadable(Arc<EvalError>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Uint(u) => write!(f, "{u}u"),
            Value::Double(d) => write!(f, "{d:?}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "b{:?}", String::from_utf8_lossy(b)),
            Value::List(l) => f.debug_list().entries(l.iter()).finish(),
            Value::Map(m) => f
                .debug_map()
                .entries(m.entries.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Lazy(_) => write!(f, "<lazy map>"),
            Value::Timestamp(t) => write!(f, "timestamp({}s {}ns)", t.secs, t.nanos),
            Value::Duration(d) => write!(f, "duration({}ns)", d.nanos),
            Value::Type(t) => write!(f, "{}", t.name()),
            Value::Unreadable(e) => write!(f, "<unreadable: {e}>"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(Arc::from(s))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(Arc::from(s))
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(Arc::new(v))
    }
}

/// A map key after numeric normalisation: `1`, `1u` and `1.0` are one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Str(Arc<str>),
}

impl Key {
    /// The key for a lookup; `Ok(None)` for a value no key can equal (a
    /// fractional double, a value of a kind that is never a key).
    fn lookup(v: &Value) -> EvalResult<Option<Key>> {
        Ok(Some(match v {
            Value::Bool(b) => Key::Bool(*b),
            Value::Int(i) => Key::Int(*i),
            Value::Uint(u) => match i64::try_from(*u) {
                Ok(i) => Key::Int(i),
                Err(_) => Key::Uint(*u),
            },
            Value::Double(d) => {
                if d.fract() != 0.0 || !d.is_finite() {
                    return Ok(None);
                }
                if *d >= -TWO_POW_63 && *d < TWO_POW_63 {
                    Key::Int(*d as i64)
                } else if *d >= 0.0 && *d < TWO_POW_64 {
                    Key::Uint(*d as u64)
                } else {
                    return Ok(None);
                }
            }
            Value::String(s) => Key::Str(s.clone()),
            _ => return Ok(None),
        }))
    }
}

/// An insertion-ordered map; lookups scan small maps and hash larger ones.
#[derive(Default)]
pub struct Map {
    entries: Vec<(Value, Value)>,
    index: HashMap<Key, usize>,
}

const INDEX_FROM: usize = 8;

impl Map {
    /// Builds a map from entries; a repeated key or a key of a type other
    /// than bool/int/uint/string is an error.
    pub fn from_entries(entries: Vec<(Value, Value)>) -> EvalResult<Map> {
        let small = entries.len() < INDEX_FROM; // scanned: no index, repeats found by scanning
        let mut index = HashMap::with_capacity(if small { 0 } else { entries.len() });
        for (i, (k, _)) in entries.iter().enumerate() {
            if !matches!(
                k,
                Value::Bool(_) | Value::Int(_) | Value::Uint(_) | Value::String(_)
            ) {
                return Err(EvalError::invalid(format!(
                    "unsupported map key type: {}",
                    k.type_name()
                )));
            }
            let key = Key::lookup(k)?.expect("valid key types always normalise");
            let repeated = if small {
                entries[..i]
                    .iter()
                    .any(|(earlier, _)| Key::lookup(earlier).ok().flatten().as_ref() == Some(&key))
            } else {
                index.insert(key, i).is_some()
            };
            if repeated {
                return Err(EvalError::invalid(format!("repeated map key: {k:?}")));
            }
        }
        Ok(Map { entries, index })
    }

    pub fn get(&self, key: &Value) -> EvalResult<Option<&Value>> {
        let Some(k) = Key::lookup(key)? else {
            return Ok(None);
        };
        if self.entries.len() >= INDEX_FROM {
            return Ok(self.index.get(&k).map(|&i| &self.entries[i].1));
        }
        for (ek, ev) in &self.entries {
            if Key::lookup(ek)?.as_ref() == Some(&k) {
                return Ok(Some(ev));
            }
        }
        Ok(None)
    }

    /// Lookup by string without building a key value (field selection).
    pub fn get_str(&self, name: &str) -> Option<&Value> {
        if self.entries.len() >= INDEX_FROM {
            return self
                .index
                .get(&Key::Str(Arc::from(name)))
                .map(|&i| &self.entries[i].1);
        }
        self.entries.iter().find_map(|(k, v)| match k {
            Value::String(s) if &**s == name => Some(v),
            _ => None,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::String(Arc::from(s))
    }

    pub fn type_of(&self) -> CelType {
        match self {
            Value::Null => CelType::Null,
            Value::Bool(_) => CelType::Bool,
            Value::Int(_) => CelType::Int,
            Value::Uint(_) => CelType::Uint,
            Value::Double(_) => CelType::Double,
            Value::String(_) => CelType::String,
            Value::Bytes(_) => CelType::Bytes,
            Value::List(_) => CelType::List,
            Value::Map(_) | Value::Lazy(_) => CelType::Map,
            Value::Timestamp(_) => CelType::Timestamp,
            Value::Duration(_) => CelType::Duration,
            Value::Type(_) => CelType::Type,
            // Never observed: reading an unreadable value fails first.
            Value::Unreadable(_) => CelType::Null,
        }
    }

    /// The value itself, or the error of an unreadable host value.
    pub fn readable(&self) -> EvalResult<&Value> {
        match self {
            Value::Unreadable(e) => Err((**e).clone()),
            v => Ok(v),
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.type_of().name()
    }

    pub fn is_map(&self) -> bool {
        matches!(self, Value::Map(_) | Value::Lazy(_))
    }

    /// Map lookup for maps of both kinds; `Ok(None)` when absent, an error
    /// when `self` is not a map.
    pub fn map_get(&self, key: &Value) -> EvalResult<Option<Value>> {
        match self {
            Value::Map(m) => Ok(m.get(key)?.cloned()),
            Value::Lazy(l) => l.get(key),
            other => Err(EvalError::no_such_overload(format!(
                "index of {} by {}",
                other.type_name(),
                key.type_name()
            ))),
        }
    }

    /// The keys of a map of either kind.
    pub fn map_keys(&self) -> EvalResult<Vec<Value>> {
        match self {
            Value::Map(m) => Ok(m.entries.iter().map(|(k, _)| k.clone()).collect()),
            Value::Lazy(l) => l.keys(),
            other => Err(EvalError::no_such_overload(format!(
                "keys of {}",
                other.type_name()
            ))),
        }
    }

    /// The entries of a map of either kind.
    pub fn map_entries(&self) -> EvalResult<Vec<(Value, Value)>> {
        match self {
            Value::Map(m) => Ok(m.entries.clone()),
            Value::Lazy(l) => l.entries(),
            other => Err(EvalError::no_such_overload(format!(
                "entries of {}",
                other.type_name()
            ))),
        }
    }

    /// CEL equality: heterogeneous numbers compare by value, values of
    /// different types are unequal, aggregates compare element-wise.
    pub fn equals(&self, other: &Value) -> EvalResult<bool> {
        self.equals_at(other, 0)
    }

    /// `equals` of values `level` lists/maps deep in the compared ones.
    fn equals_at(&self, other: &Value, level: usize) -> EvalResult<bool> {
        Ok(match (self.readable()?, other.readable()?) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Timestamp(a), Value::Timestamp(b)) => a == b,
            (Value::Duration(a), Value::Duration(b)) => a == b,
            (Value::Type(a), Value::Type(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                check_depth(level)?;
                if a.len() != b.len() {
                    return Ok(false);
                }
                for (x, y) in a.iter().zip(b.iter()) {
                    if !x.equals_at(y, level + 1)? {
                        return Ok(false);
                    }
                }
                true
            }
            (a, b) if a.is_map() && b.is_map() => {
                check_depth(level)?;
                let ea = a.map_entries()?;
                if ea.len() != map_len(b)? {
                    return Ok(false);
                }
                for (k, v) in &ea {
                    match b.map_get(k)? {
                        Some(w) if v.equals_at(&w, level + 1)? => {}
                        _ => return Ok(false),
                    }
                }
                true
            }
            (a, b) => match numeric_cmp(a, b) {
                Some(ord) => ord == Some(Ordering::Equal),
                None => false,
            },
        })
    }

    /// CEL ordering for `<` `<=` `>` `>=`: `no_such_overload` for kinds
    /// that are not ordered together, `invalid_argument` for a NaN.
    pub fn compare(&self, other: &Value) -> EvalResult<Ordering> {
        Ok(match (self.readable()?, other.readable()?) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
            (Value::Duration(a), Value::Duration(b)) => a.cmp(b),
            (a, b) => match numeric_cmp(a, b) {
                Some(Some(ord)) => ord,
                Some(None) => return Err(EvalError::invalid("NaN values cannot be ordered")),
                None => {
                    return Err(EvalError::no_such_overload(format!(
                        "comparison of {} and {}",
                        a.type_name(),
                        b.type_name()
                    )))
                }
            },
        })
    }
}

fn map_len(v: &Value) -> EvalResult<usize> {
    match v {
        Value::Map(m) => Ok(m.len()),
        Value::Lazy(l) => l.len(),
        _ => Ok(0),
    }
}

/// Compares two numbers as cel-go does: ints and uints exactly, an
/// integer with a double by converting the integer to the nearest double
/// (unless the double lies outside the integer type's range). `None` if
/// either is not a number, `Some(None)` if a NaN is involved.
fn numeric_cmp(a: &Value, b: &Value) -> Option<Option<Ordering>> {
    Some(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Uint(x), Value::Uint(y)) => Some(x.cmp(y)),
        (Value::Double(x), Value::Double(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Uint(y)) => Some(int_uint_cmp(*x, *y)),
        (Value::Uint(x), Value::Int(y)) => Some(int_uint_cmp(*y, *x).reverse()),
        (Value::Int(x), Value::Double(y)) => integer_double_cmp(*x as f64, false, *y),
        (Value::Uint(x), Value::Double(y)) => integer_double_cmp(*x as f64, true, *y),
        (Value::Double(x), Value::Int(y)) => {
            integer_double_cmp(*y as f64, false, *x).map(Ordering::reverse)
        }
        (Value::Double(x), Value::Uint(y)) => {
            integer_double_cmp(*y as f64, true, *x).map(Ordering::reverse)
        }
        _ => return None,
    })
}

fn int_uint_cmp(i: i64, u: u64) -> Ordering {
    if i < 0 {
        Ordering::Less
    } else {
        (i as u64).cmp(&u)
    }
}

/// `i` is the integer already rounded to the nearest double.
fn integer_double_cmp(i: f64, unsigned: bool, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    let (low, high) = if unsigned {
        (0.0, TWO_POW_64)
    } else {
        (-TWO_POW_63, TWO_POW_63)
    };
    if d < low {
        return Some(Ordering::Greater);
    }
    if d > high {
        return Some(Ordering::Less);
    }
    i.partial_cmp(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heterogeneous_numbers() {
        assert!(Value::Int(1).equals(&Value::Uint(1)).unwrap());
        assert!(Value::Int(1).equals(&Value::Double(1.0)).unwrap());
        assert!(!Value::Int(1).equals(&Value::Double(1.5)).unwrap());
        assert!(!Value::Double(f64::NAN)
            .equals(&Value::Double(f64::NAN))
            .unwrap());
        assert_eq!(
            Value::Int(-1).compare(&Value::Uint(0)).unwrap(),
            Ordering::Less
        );
        assert_eq!(
            Value::Int(i64::MAX)
                .compare(&Value::Double(TWO_POW_63))
                .unwrap(),
            Ordering::Equal
        );
        assert!(Value::Double(f64::NAN).compare(&Value::Int(1)).is_err());
        assert!(!Value::Int(1).equals(&Value::str("1")).unwrap());
    }

    #[test]
    fn map_keys_normalise() {
        let m = Map::from_entries(vec![(Value::Int(1), Value::str("a"))]).unwrap();
        assert!(m.get(&Value::Uint(1)).unwrap().is_some());
        assert!(m.get(&Value::Double(1.0)).unwrap().is_some());
        assert!(m.get(&Value::Double(1.5)).unwrap().is_none());
        assert!(Map::from_entries(vec![
            (Value::Int(1), Value::Null),
            (Value::Uint(1), Value::Null)
        ])
        .is_err());
    }
}

//! Timestamps and durations: RFC 3339 / Go-style duration text, and the
//! calendar getters, in UTC or in a named (IANA, via `chrono-tz`) or fixed
//! (`+05:30`) time zone.
use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Timelike, Utc};

use super::super::error::{EvalError, EvalResult};
use super::super::value::{Duration, Timestamp, Value};
use super::{Def, Imp, P};

macro_rules! getter {
    ($name:literal, $ts:expr, $dur:expr) => {
        Def {
            name: $name,
            receiver: true,
            sigs: &[(&[P::Ts], P::Int), (&[P::Dur], P::Int)],
            imp: Imp::F1(|v| get(v, None, $ts, $dur)),
        }
    };
    ($name:literal, $ts:expr) => {
        Def {
            name: $name,
            receiver: true,
            sigs: &[(&[P::Ts], P::Int)],
            imp: Imp::F1(|v| get(v, None, $ts, None)),
        }
    };
}

macro_rules! tz_getter {
    ($name:literal, $ts:expr) => {
        Def {
            name: $name,
            receiver: true,
            sigs: &[(&[P::Ts, P::Str], P::Int)],
            imp: Imp::F2(|v, tz| get(v, Some(tz), $ts, None)),
        }
    };
}

type Civil = fn(&NaiveDateTime) -> i64;
type Span = Option<fn(i128) -> i64>;

pub static DEFS: &[Def] = &[
    getter!("getFullYear", |d| d.year() as i64),
    getter!("getMonth", |d| d.month0() as i64),
    getter!("getDate", |d| d.day() as i64),
    getter!("getDayOfMonth", |d| d.day0() as i64),
    getter!("getDayOfWeek", |d| d.weekday().num_days_from_sunday() as i64),
    getter!("getDayOfYear", |d| d.ordinal0() as i64),
    getter!("getHours", |d| d.hour() as i64, Some(|n| (n / 3_600_000_000_000) as i64)),
    getter!("getMinutes", |d| d.minute() as i64, Some(|n| (n / 60_000_000_000) as i64)),
    getter!("getSeconds", |d| d.second() as i64, Some(|n| (n / 1_000_000_000) as i64)),
    getter!(
        "getMilliseconds",
        |d| (d.nanosecond() / 1_000_000) as i64,
        Some(|n| ((n % 1_000_000_000) / 1_000_000) as i64)
    ),
    tz_getter!("getFullYear", |d| d.year() as i64),
    tz_getter!("getMonth", |d| d.month0() as i64),
    tz_getter!("getDate", |d| d.day() as i64),
    tz_getter!("getDayOfMonth", |d| d.day0() as i64),
    tz_getter!("getDayOfWeek", |d| d.weekday().num_days_from_sunday() as i64),
    tz_getter!("getDayOfYear", |d| d.ordinal0() as i64),
    tz_getter!("getHours", |d| d.hour() as i64),
    tz_getter!("getMinutes", |d| d.minute() as i64),
    tz_getter!("getSeconds", |d| d.second() as i64),
    tz_getter!("getMilliseconds", |d| (d.nanosecond() / 1_000_000) as i64),
];

fn get(v: &Value, tz: Option<&Value>, civil: Civil, span: Span) -> EvalResult {
    match (v, tz, span) {
        (Value::Timestamp(t), None, _) => Ok(Value::Int(civil(&to_utc(*t)?.naive_utc()))),
        (Value::Timestamp(t), Some(Value::String(zone)), _) => Ok(Value::Int(civil(&in_zone(*t, zone)?))),
        (Value::Duration(d), None, Some(f)) => Ok(Value::Int(f(d.nanos))),
        _ => Err(EvalError::no_such_overload(format!("getter on {}", v.type_name()))),
    }
}

fn to_utc(t: Timestamp) -> EvalResult<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp(t.secs, t.nanos).ok_or_else(|| EvalError::range("timestamp out of range"))
}

/// The civil time of `t` in `zone`: an IANA name (`America/New_York`,
/// `UTC`) or a fixed offset (`+05:30`, `-08:00`).
fn in_zone(t: Timestamp, zone: &str) -> EvalResult<NaiveDateTime> {
    let utc = to_utc(t)?;
    if let Some(offset) = parse_offset(zone) {
        return Ok(utc.with_timezone(&offset).naive_local());
    }
    let tz: chrono_tz::Tz = zone
        .parse()
        .map_err(|_| EvalError::invalid(format!("unknown time zone {zone:?}")))?;
    Ok(utc.with_timezone(&tz).naive_local())
}

/// Whether `zone` names a time zone the getters accept.
pub fn is_time_zone(zone: &str) -> bool {
    parse_offset(zone).is_some() || zone.parse::<chrono_tz::Tz>().is_ok()
}

fn parse_offset(zone: &str) -> Option<FixedOffset> {
    let (sign, rest) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => (1, zone),
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// Parses `YYYY-MM-DD(T|t)HH:MM:SS[.F{1,9}](Z|z|±HH:MM)` (RFC 3339 with a
/// four-digit year and valid calendar fields; no leap second).
pub fn parse_timestamp(s: &str) -> EvalResult<Timestamp> {
    let bad = || EvalError::conversion(format!("cannot convert {s:?} to timestamp"));
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let d = b.get(from..from + len)?;
        d.iter().all(u8::is_ascii_digit).then(|| d.iter().fold(0, |n, c| n * 10 + (c - b'0') as u32))
    };
    let sep = |at: usize, c: &[u8]| b.get(at).is_some_and(|x| c.contains(x));
    if b.len() < 20 || !sep(4, b"-") || !sep(7, b"-") || !sep(10, b"Tt") || !sep(13, b":") || !sep(16, b":") {
        return Err(bad());
    }
    let (year, month, day) = (num(0, 4).ok_or_else(bad)?, num(5, 2).ok_or_else(bad)?, num(8, 2).ok_or_else(bad)?);
    let (hour, minute, second) = (num(11, 2).ok_or_else(bad)?, num(14, 2).ok_or_else(bad)?, num(17, 2).ok_or_else(bad)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if sep(i, b".") {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let digits = end - start;
        if digits == 0 || digits > 9 {
            return Err(bad());
        }
        nanos = num(start, digits).ok_or_else(bad)? * 10u32.pow(9 - digits as u32);
        i = end;
    }
    let offset: i64 = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(i + 1, 2).ok_or_else(bad)?, num(i + 4, 2).ok_or_else(bad)?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let o = (h * 3600 + m * 60) as i64;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return Err(bad()),
    };
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(bad)?;
    let time = chrono::NaiveTime::from_hms_opt(hour, minute, second).ok_or_else(bad)?;
    let secs = date.and_time(time).and_utc().timestamp() - offset;
    Timestamp::from_nanos(secs as i128 * 1_000_000_000 + nanos as i128)
}

/// RFC 3339 in UTC with as many fractional digits as needed.
pub fn format_timestamp(t: Timestamp) -> String {
    let Ok(dt) = to_utc(t) else {
        return String::from("<invalid timestamp>");
    };
    let base = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    if t.nanos == 0 {
        return base + "Z";
    }
    let frac = format!("{:09}", t.nanos);
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// Parses a Go-style duration: a signed sequence of decimal numbers with
/// units `h`, `m`, `s`, `ms`, `us` (`µs`), `ns`, e.g. `1h30m`, `-1.5s`.
pub fn parse_duration(s: &str) -> EvalResult<Duration> {
    let bad = || EvalError::conversion(format!("cannot convert {s:?} to duration"));
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration { nanos: 0 });
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_end);
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale: i128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" | "μs" => 1_000,
            "ns" => 1,
            _ => return Err(bad()),
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        let int: i128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| bad())? };
        let mut nanos = int.checked_mul(scale).ok_or_else(bad)?;
        let mut div = 1i128;
        let mut frac: i128 = 0;
        for c in frac_part.bytes().take(18) {
            frac = frac * 10 + (c - b'0') as i128;
            div *= 10;
        }
        nanos += frac * scale / div;
        total = total.checked_add(nanos).ok_or_else(bad)?;
        rest = tail;
    }
    Duration::new(if neg { -total } else { total })
}

/// Seconds with as many fractional digits as needed: `3600s`, `1.5s`.
pub fn format_duration(d: Duration) -> String {
    let sign = if d.nanos < 0 { "-" } else { "" };
    let abs = d.nanos.unsigned_abs();
    let secs = abs / 1_000_000_000;
    let nanos = abs % 1_000_000_000;
    if nanos == 0 {
        return format!("{sign}{secs}s");
    }
    let frac = format!("{nanos:09}");
    format!("{sign}{secs}.{}s", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = parse_timestamp("2009-02-13T23:31:30.120Z").unwrap();
        assert_eq!(t.secs, 1_234_567_890);
        assert_eq!(format_timestamp(t), "2009-02-13T23:31:30.12Z");
        assert!(parse_timestamp("10000-01-01T00:00:00Z").is_err());
        assert_eq!(parse_timestamp("2009-02-13t18:31:30-05:00").unwrap().secs, 1_234_567_890);
        assert!(parse_timestamp("2009-02-13 23:31:30Z").is_err());
        assert!(parse_timestamp("2009-02-30T23:31:30Z").is_err());
    }

    #[test]
    fn durations_parse_go_syntax() {
        assert_eq!(parse_duration("1h30m").unwrap().nanos, 5_400_000_000_000);
        assert_eq!(parse_duration("-1.5s").unwrap().nanos, -1_500_000_000);
        assert_eq!(format_duration(parse_duration("100ms").unwrap()), "0.1s");
        assert!(parse_duration("1d").is_err());
    }

    #[test]
    fn zones() {
        let t = parse_timestamp("2024-01-01T05:00:00Z").unwrap();
        assert_eq!(in_zone(t, "America/New_York").unwrap().hour(), 0);
        assert_eq!(in_zone(t, "+05:30").unwrap().hour(), 10);
        assert!(in_zone(t, "Mars/Olympus").is_err());
    }
}

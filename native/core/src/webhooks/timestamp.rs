//! Signed timestamps: parsing and the tolerance window.

use super::{Request, Verdict};

fn malformed() -> Verdict {
    Verdict::fail("malformed timestamp")
}

/// Unix time: 1–18 ASCII digits, seconds (or milliseconds when `millis`).
pub(crate) fn unix(text: &str, millis: bool) -> Result<f64, Verdict> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let value: i64 = text.parse().map_err(|_| malformed())?;
    let seconds = value as f64;
    Ok(if millis { seconds / 1000.0 } else { seconds })
}

/// RFC 3339 `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, strictly (no leap second).
pub(crate) fn rfc3339(text: &str) -> Result<f64, Verdict> {
    datetime(text, false)
}

/// ISO 8601 as RFC 3339, except that the offset may be left out (UTC).
pub(crate) fn iso8601(text: &str) -> Result<f64, Verdict> {
    datetime(text, true)
}

fn datetime(text: &str, naive_is_utc: bool) -> Result<f64, Verdict> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Result<i64, Verdict> {
        let part = b.get(range).ok_or_else(malformed)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(malformed());
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if b.len() < 19
        || !at(4, b"-")
        || !at(7, b"-")
        || !at(10, b"Tt")
        || !at(13, b":")
        || !at(16, b":")
    {
        return Err(malformed());
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut rest = 19;
    let mut fraction = 0.0;
    if at(rest, b".") {
        let end = b[rest + 1..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(b.len(), |n| rest + 1 + n);
        if end == rest + 1 || end - rest - 1 > 9 {
            return Err(malformed());
        }
        fraction = text[rest..end].parse::<f64>().map_err(|_| malformed())?;
        rest = end;
    }
    let offset = match &b[rest..] {
        [] if naive_is_utc => 0,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (digits(rest + 1..rest + 3)?, digits(rest + 4..rest + 6)?);
            if oh > 23 || om > 59 {
                return Err(malformed());
            }
            let minutes = oh * 60 + om;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return Err(malformed()),
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return Err(malformed()),
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return Err(malformed());
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset * 60;
    Ok(seconds as f64 + fraction)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `|now - ts| <= tolerance_s`: stale and future timestamps both fail.
pub(crate) fn within_tolerance(seconds: f64, req: &Request<'_>) -> Result<(), Verdict> {
    let age = req.now - seconds;
    if age.abs() <= req.tolerance_s {
        Ok(())
    } else if age < 0.0 {
        Err(Verdict::fail("timestamp in the future"))
    } else {
        Err(Verdict::fail("stale timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_values() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Ok(0.0));
        assert_eq!(rfc3339("2021-07-25T10:00:00Z"), Ok(1_627_207_200.0));
        assert_eq!(rfc3339("2020-01-01T00:00:00-07:00"), Ok(1_577_862_000.0));
        assert_eq!(rfc3339("2000-02-29t12:00:00.5+01:30"), Ok(951_820_200.5));
        for bad in [
            "2021-02-29T00:00:00Z",
            "2021-07-25 10:00:00Z",
            "2021-07-25T24:00:00Z",
            "2021-07-25T10:00:60Z",
            "2021-07-25T10:00:00",
            "2021-07-25T10:00:00.Z",
            "2021-07-25T10:00:00+0100",
            "+021-07-25T10:00:00Z",
            "2021-07-25T10:00:00Zx",
        ] {
            assert!(rfc3339(bad).is_err(), "{bad}");
        }
    }
}

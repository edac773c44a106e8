"""Timestamps and durations: parsing, time zones, getters (docs/cel.md §5.7,
§5.8). Calendar arithmetic is done on integers (days since the epoch), so
every timestamp in CEL's range works whatever the offset."""

from __future__ import annotations

import datetime
import functools
import re
import zoneinfo
from typing import Final

from edgeward.expr.errors import EvalError
from edgeward.expr.values import NANOS, Duration, Timestamp

_TIMESTAMP: Final = re.compile(
    r"(\d{4,})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number since 1970-01-01."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_timestamp(text: str) -> Timestamp:
    m = _TIMESTAMP.fullmatch(text)
    if not m:
        raise EvalError("conversion", f"timestamp {text!r} is not RFC 3339")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, sign, off_h, off_m = m.group(7), m.group(8), m.group(9), m.group(10)
    if not (1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        raise EvalError("conversion", f"timestamp {text!r} is not a valid time")
    if not 1 <= day <= _days_in_month(year, month):
        raise EvalError("conversion", f"timestamp {text!r} is not a valid date")
    if not 1 <= year <= 9999:
        raise EvalError("range", f"timestamp {text!r} out of range")
    offset = 0
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise EvalError("conversion", f"timestamp {text!r} has an invalid offset")
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (-1 if sign == "-" else 1)
    seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return Timestamp.checked((seconds - offset) * NANOS + nanos)


def timestamp_from_seconds(seconds: int) -> Timestamp:
    return Timestamp.checked(seconds * NANOS)


_UNITS: Final = {
    "ns": 1,
    "us": 1000,
    "µs": 1000,  # U+00B5 micro sign
    "μs": 1000,  # U+03BC greek mu
    "ms": 1_000_000,
    "s": NANOS,
    "m": 60 * NANOS,
    "h": 3600 * NANOS,
}
_DURATION_PART: Final = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)", re.ASCII)


def parse_duration(text: str) -> Duration:
    """Go's `time.ParseDuration` syntax, exact to the nanosecond."""
    rest = text
    negative = False
    if rest[:1] in ("+", "-"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return Duration(0)
    if not rest:
        raise EvalError("conversion", f"invalid duration {text!r}")
    total = 0
    while rest:
        m = _DURATION_PART.match(rest)
        assert m
        whole, fraction, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not fraction:
            raise EvalError("conversion", f"invalid duration {text!r}")
        if unit not in _UNITS:
            raise EvalError("conversion", f"invalid duration {text!r}: unknown unit {unit!r}")
        scale = _UNITS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        rest = rest[m.end() :]
    return Duration.checked(-total if negative else total)


# --- time zones and getters ---------------------------------------------------------

_OFFSET: Final = re.compile(r"([+-])?(\d{2}):(\d{2})", re.ASCII)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def check_timezone(name: str) -> None:
    """`invalid_argument` unless `name` is a fixed offset or an IANA zone."""
    if _OFFSET.fullmatch(name) is None and name not in _zone_names():
        raise EvalError("invalid_argument", f"unknown time zone {name!r}")


def utc_offset(ts: Timestamp, zone: str | None) -> int:
    """Seconds east of UTC of `zone` at instant `ts`."""
    if zone is None:
        return 0
    m = _OFFSET.fullmatch(zone)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3))
        if hours > 23 or minutes > 59:
            raise EvalError("invalid_argument", f"invalid time zone offset {zone!r}")
        return (hours * 3600 + minutes * 60) * (-1 if m.group(1) == "-" else 1)
    check_timezone(zone)
    tz = _zone(zone)
    utc = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=ts.nanos // NANOS)
    try:
        offset = utc.replace(tzinfo=datetime.UTC).astimezone(tz).utcoffset()
    except OverflowError:  # within a day of year 1 or 9999
        offset = tz.utcoffset(utc)
    assert offset is not None
    return int(offset.total_seconds())


def timestamp_field(ts: Timestamp, field: str, zone: str | None = None) -> int:
    seconds, nanos = divmod(ts.nanos, NANOS)
    seconds += utc_offset(ts, zone)
    days, second_of_day = divmod(seconds, 86400)
    if field == "getHours":
        return second_of_day // 3600
    if field == "getMinutes":
        return second_of_day // 60 % 60
    if field == "getSeconds":
        return second_of_day % 60
    if field == "getMilliseconds":
        return nanos // 1_000_000
    if field == "getDayOfWeek":
        return (days + 4) % 7  # 1970-01-01 was a Thursday; 0 = Sunday
    year, month, day = civil_from_days(days)
    if field == "getFullYear":
        return year
    if field == "getMonth":
        return month - 1
    if field == "getDate":
        return day
    if field == "getDayOfMonth":
        return day - 1
    if field == "getDayOfYear":
        return days - days_from_civil(year, 1, 1)
    raise AssertionError(field)


_DURATION_UNITS: Final = {
    "getHours": 3600 * NANOS,
    "getMinutes": 60 * NANOS,
    "getSeconds": NANOS,
    "getMilliseconds": 1_000_000,
}


def duration_field(d: Duration, field: str) -> int:
    """Hours, minutes, seconds: the whole duration in that unit; milliseconds:
    the millisecond part of the second (cel-go). Truncated toward zero."""
    whole = abs(d.nanos) // _DURATION_UNITS[field]
    if field == "getMilliseconds":
        whole %= 1000
    return -whole if d.nanos < 0 else whole


TIMESTAMP_GETTERS: Final = (
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
)
DURATION_GETTERS: Final = tuple(_DURATION_UNITS)

"""Pure-Python twin of `edgeward_native.GeoDb`: MaxMind DB (`.mmdb`)
lookups with MaxMind's own PyPI reader (`maxminddb`, in its pure-Python
mode), mapped to the fields Traffic Policy shows exactly as the Rust core
maps them (`native/core/src/geo/mod.rs`; docs/policy.md, IP intelligence).
Written to be read; the property tests check that both backends agree."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import maxminddb

from edgeward.ipnet.reference import parse_address

__all__ = ["GeoDb", "GeoDbError", "go_float"]

_LOCATION_KEYS = (
    "city",
    "continent",
    "country",
    "country_code",
    "is_eu",
    "latitude",
    "longitude",
    "metro_code",
    "postal_code",
    "radius",
    "subdivision",
    "timezone",
)


class GeoDbError(ValueError):
    """A database that cannot be opened or read (not a MaxMind DB file, a
    corrupt record)."""


def go_float(f: float) -> str:
    """`f` as Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest text
    that reads back as `f`, no exponent, no `.0` for whole numbers."""
    if f == 0:
        return "0"
    text = format(Decimal(repr(float(f))), "f")
    return text[:-2] if text.endswith(".0") else text


def _name(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    names = obj.get("names")
    value = names.get("en") if isinstance(names, dict) else None
    return value if isinstance(value, str) else ""


def _text(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


def _number(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""


def _float(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return go_float(value) if isinstance(value, float) else ""


def _location(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(_LOCATION_KEYS, "")
    out["is_eu"] = False
    out.update(fields)
    return out


def record(raw: Any) -> dict[str, Any]:
    """A MaxMind record (GeoIP2 City / Country / ASN schema) as the policy
    reads it: `location`, `registered_location`, `as`."""
    raw = raw if isinstance(raw, dict) else {}
    country = raw.get("country") or {}
    registered = raw.get("registered_country") or {}
    where = raw.get("location") or {}
    subdivisions = raw.get("subdivisions")
    first = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else None
    number = raw.get("autonomous_system_number")
    return {
        "location": _location(
            city=_name(raw.get("city")),
            continent=_name(raw.get("continent")),
            country=_name(country),
            country_code=_text(country, "iso_code"),
            is_eu=country.get("is_in_european_union") is True,
            latitude=_float(where, "latitude"),
            longitude=_float(where, "longitude"),
            metro_code=_number(where, "metro_code"),
            postal_code=_text(raw.get("postal"), "code"),
            radius=_number(where, "accuracy_radius"),
            subdivision=_name(first),
            timezone=_text(where, "time_zone"),
        ),
        "registered_location": _location(
            country=_name(registered),
            country_code=_text(registered, "iso_code"),
            is_eu=registered.get("is_in_european_union") is True,
        ),
        "as": {
            "number": number if isinstance(number, int) else 0,
            "organization": _text(raw, "autonomous_system_organization"),
        },
    }


class GeoDb:
    """A MaxMind DB file (GeoIP2/GeoLite2 City, Country, ASN, or a file with
    both kinds of field), read into memory."""

    __slots__ = ("_reader", "database_type")

    def __init__(self, path: str | Path) -> None:
        try:
            self._reader = maxminddb.open_database(str(path), maxminddb.MODE_MEMORY)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoDbError(f"{path}: {exc}") from None
        self.database_type: str = self._reader.metadata().database_type

    def lookup(self, ip: str) -> dict[str, Any] | None:
        """`ip`'s record (`location`, `registered_location`, `as`), or None
        when the database has none. ValueError if `ip` is not an address."""
        if not isinstance(ip, str):
            raise TypeError(f"expected str, got {type(ip).__name__}")
        try:
            address = parse_address(ip)
        except ValueError:
            raise ValueError(f"{ip!r} is not a valid IP address") from None
        if address.version == 6 and self._reader.metadata().ip_version == 4:
            return None
        try:
            raw = self._reader.get(address)
        except maxminddb.InvalidDatabaseError as exc:
            raise GeoDbError(str(exc)) from None
        return None if raw is None else record(raw)

    def __repr__(self) -> str:
        return f"<GeoDb {self.database_type}>"

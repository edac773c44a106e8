"""Small MaxMind DB files for the tests, written with `mmdb-writer` (PyPI,
in the test extra) in the GeoIP2 schemas: a City database (IPv6 with the
IPv4 space, as MaxMind ships it) and an ASN one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MmdbF64, MmdbU16, MmdbU32, MMDBWriter
from netaddr import IPSet


def _names(en: str) -> dict[str, Any]:
    return {"names": {"en": en, "de": en + " (de)"}}


def city_record(
    city: str,
    country: tuple[str, str],
    continent: str,
    *,
    eu: bool = False,
    lat: float = 0.0,
    lon: float = 0.0,
    radius: int = 0,
    metro: int | None = None,
    postal: str | None = None,
    subdivision: str | None = None,
    tz: str | None = None,
    registered: tuple[str, str] | None = None,
    registered_eu: bool = False,
) -> dict[str, Any]:
    code, name = country
    record: dict[str, Any] = {
        "city": {**_names(city), "geoname_id": MmdbU32(2643743)},
        "continent": {**_names(continent), "code": continent[:2].upper()},
        "country": {**_names(name), "iso_code": code},
        "location": {
            "latitude": MmdbF64(lat),
            "longitude": MmdbF64(lon),
            "accuracy_radius": MmdbU16(radius),
        },
    }
    if eu:
        record["country"]["is_in_european_union"] = True
    if metro is not None:
        record["location"]["metro_code"] = MmdbU16(metro)
    if tz is not None:
        record["location"]["time_zone"] = tz
    if postal is not None:
        record["postal"] = {"code": postal}
    if subdivision is not None:
        record["subdivisions"] = [{**_names(subdivision), "iso_code": "X1"}, _names("Second")]
    if registered is not None:
        record["registered_country"] = {**_names(registered[1]), "iso_code": registered[0]}
        if registered_eu:
            record["registered_country"]["is_in_european_union"] = True
    return record


CITY: dict[str, dict[str, Any]] = {
    "127.0.0.0/8": city_record(
        "San Francisco",
        ("US", "United States"),
        "North America",
        lat=37.7749,
        lon=-122.4194,
        radius=10,
        metro=807,
        postal="94107",
        subdivision="California",
        tz="America/Los_Angeles",
        registered=("DE", "Germany"),
        registered_eu=True,
    ),
    "81.2.69.0/24": city_record(
        "London",
        ("GB", "United Kingdom"),
        "Europe",
        lat=51.5142,
        lon=-0.0931,
        radius=5,
        postal="EC2V",
        subdivision="England",
        tz="Europe/London",
        registered=("GB", "United Kingdom"),
    ),
    "89.160.20.0/24": city_record(
        "Linköping",
        ("SE", "Sweden"),
        "Europe",
        eu=True,
        lat=58.4167,
        lon=15.6167,
        radius=76,
        tz="Europe/Stockholm",
        registered=("SE", "Sweden"),
        registered_eu=True,
    ),
    "2001:db8::/32": city_record("Tokyo", ("JP", "Japan"), "Asia", lat=35.0, lon=139.0),
    # A country-only record (a Country database's shape).
    "203.0.113.0/24": {"country": {**_names("Australia"), "iso_code": "AU"}},
}

ASN: dict[str, dict[str, Any]] = {
    "127.0.0.0/8": {
        "autonomous_system_number": MmdbU32(64500),
        "autonomous_system_organization": "EXAMPLE-LOOPBACK",
    },
    "81.2.69.0/24": {
        "autonomous_system_number": MmdbU32(20712),
        "autonomous_system_organization": "Andrews & Arnold Ltd",
    },
    "2001:db8::/32": {
        "autonomous_system_number": MmdbU32(4200000000),
        "autonomous_system_organization": "AMAZON-02",
    },
}


def write(path: Path, records: dict[str, dict[str, Any]], database_type: str) -> Path:
    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type=database_type, languages=["en"]
    )
    for cidr, record in records.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


def write_city(path: Path) -> Path:
    return write(path, CITY, "GeoIP2-City")


def write_asn(path: Path) -> Path:
    return write(path, ASN, "GeoLite2-ASN")

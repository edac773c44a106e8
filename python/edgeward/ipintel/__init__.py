"""IP intelligence: what the edge knows of an address, from data the
operator configures (the edge config's `ip_intelligence:`; docs/policy.md).

- geo and ASN from MaxMind DB (`.mmdb`) files, looked up through
  `edgeward.native.GeoDb` (the `maxminddb` crate, or the PyPI reader as the
  twin);
- categories (`com.example.office`, `proxy.anonymous.tor`,
  `blocklist.firehol_org.level_1`...) from CIDR list files, one prefix per
  line, matched with one `edgeward.native.IpTable` whose value at each
  prefix is every category of the prefixes containing it (an address in a
  /24 of one list and a /16 of another has both).

What is not configured reads as empty: `''`, `[]`, `false`, `0`
(`EMPTY_GEO`, `EMPTY_AS`, `NO_FACTS`), never an error. Below `config` and
`policy`: the edge config loads it (`load`) and hands it to each policy
(`PolicySource.ip_intelligence`); a reload (SIGHUP) loads the files again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from edgeward import native
from edgeward.errors import ConfigError, Location

__all__ = [
    "BLOCKLIST",
    "EMPTY",
    "EMPTY_AS",
    "EMPTY_GEO",
    "NO_FACTS",
    "TOR",
    "Facts",
    "IpIntelligence",
    "Sources",
    "load",
    "read_cidr_list",
]

TOR: Final = "proxy.anonymous.tor"  # `is_tor_node` is this category (reference §2.3)
BLOCKLIST: Final = "blocklist"  # `is_on_blocklist`: any category under it


def _location(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(
        (
            "city",
            "continent",
            "country",
            "country_code",
            "latitude",
            "longitude",
            "metro_code",
            "postal_code",
            "radius",
            "subdivision",
            "timezone",
        ),
        "",
    )
    out["is_eu"] = False
    out.update(fields)
    return out


# Plain dicts, shared and never changed (CEL only reads them; the native
# CEL reads exact dicts fastest).
EMPTY_AS: Final[Mapping[str, Any]] = {"number": 0, "organization": ""}
EMPTY_GEO: Final[Mapping[str, Any]] = {
    "location": _location(),
    "registered_location": _location(),
    "as": EMPTY_AS,
}


@dataclass(frozen=True, slots=True)
class Facts:
    """An address's categories (each with its parents: `com.cloudflare.ipv4`
    also gives `com` and `com.cloudflare`), sorted, and the two flags."""

    categories: tuple[str, ...] = ()
    is_tor_node: bool = False
    is_on_blocklist: bool = False


NO_FACTS: Final = Facts()


@dataclass(frozen=True, slots=True)
class Sources:
    """The files the edge config names; `categories` maps a category name
    to its list (`tor_exit_nodes` and `blocklists` already folded in)."""

    geo_db: Path | None = None
    asn_db: Path | None = None
    categories: Mapping[str, Path] = field(default_factory=dict)
    # where each key was written, for errors: "ip_intelligence.geo_db"...
    origins: Mapping[str, Location] = field(default_factory=dict)


class IpIntelligence:
    """The loaded data. Immutable and shared by every policy of a config;
    lookups are cached per address (bounded), so the connections of one
    client cost one lookup each."""

    __slots__ = (
        "_asn",
        "_categories",
        "_facts",
        "_geo",
        "asn_db",
        "category_names",
        "geo_db",
        "provides",
    )

    def __init__(
        self,
        geo_db: native.GeoDb | None = None,
        asn_db: native.GeoDb | None = None,
        categories: native.IpTable[Facts] | None = None,
        category_names: Iterable[str] = (),
    ) -> None:
        self.geo_db = geo_db
        self.asn_db = asn_db
        self.category_names = frozenset(category_names)
        # What policy check warns about: "geo", "as", "categories", "tor", "blocklist".
        provides = set()
        if geo_db is not None:
            provides.add("geo")
        if asn_db is not None:
            provides.add("as")
        if self.category_names:
            provides.add("categories")
        if TOR in self.category_names:
            provides.add("tor")
        if any(_is_blocklist(n) for n in self.category_names):
            provides.add("blocklist")
        self.provides = frozenset(provides)
        self._geo = lru_cache(maxsize=4096)(self._lookup_geo)
        self._asn = lru_cache(maxsize=4096)(self._lookup_asn)
        self._facts = lru_cache(maxsize=4096)(self._lookup_facts)
        self._categories = categories

    def geo(self, ip: str) -> Mapping[str, Any]:
        """`{"location", "registered_location", "as"}` from the geo database."""
        return self._geo(ip)

    def asn(self, ip: str) -> Mapping[str, Any]:
        """`{"number", "organization"}`: from the ASN database, else from the
        geo database when it holds AS fields."""
        return self._asn(ip)

    def facts(self, ip: str) -> Facts:
        return self._facts(ip)

    def _lookup_geo(self, ip: str) -> Mapping[str, Any]:
        if self.geo_db is None:
            return EMPTY_GEO
        try:
            found = self.geo_db.lookup(ip)
        except ValueError:  # not an address (a unix socket peer): nothing known
            return EMPTY_GEO
        return EMPTY_GEO if found is None else found

    def _lookup_asn(self, ip: str) -> Mapping[str, Any]:
        db = self.asn_db
        if db is None:
            geo_as: Mapping[str, Any] = self._geo(ip)["as"]
            return geo_as
        try:
            found = db.lookup(ip)
        except ValueError:
            return EMPTY_AS
        as_: Mapping[str, Any] = EMPTY_AS if found is None else found["as"]
        return as_

    def _lookup_facts(self, ip: str) -> Facts:
        if self._categories is None:
            return NO_FACTS
        try:
            found = self._categories.lookup(ip)
        except ValueError:
            return NO_FACTS
        return NO_FACTS if found is None else found


EMPTY: Final = IpIntelligence()
"""Nothing configured: every lookup is empty."""


def _is_blocklist(name: str) -> bool:
    return name == BLOCKLIST or name.startswith(BLOCKLIST + ".")


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def read_cidr_list(path: Path, origin: Location | None = None) -> list[str]:
    """The prefixes of a list file: one CIDR (or address) per line; `#` or
    `;` starts a comment (Spamhaus' DROP lists write `; SBL...` after each
    prefix); blank lines are skipped. A bad line is a `ConfigError` naming
    the file and line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", origin) from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].split(";", 1)[0].strip()
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError as exc:
            raise ConfigError(
                f"not a CIDR or an address: {entry!r} ({exc})", Location(str(path), number)
            ) from None
        out.append(str(network))
    return out


def _category_table(lists: Mapping[str, list[str]]) -> native.IpTable[Facts]:
    """One table for every list: each prefix's value is the categories of
    every prefix that contains it (itself included), so the longest match
    answers for all lists at once."""
    labels: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, set[str]] = {}
    for name, prefixes in lists.items():
        for prefix in prefixes:
            labels.setdefault(ipaddress.ip_network(prefix), set()).add(name)
    # Sorted by family, first address, then length: a prefix comes after
    # every prefix containing it, so a stack of the open ones gives them.
    ordered = sorted(labels, key=lambda n: (n.version, int(n.network_address), n.prefixlen))
    stack: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, frozenset[str]]] = []
    interned: dict[frozenset[str], Facts] = {}
    pairs: list[tuple[str, Facts]] = []
    for network in ordered:
        while stack and not (
            stack[-1][0].version == network.version and network.subnet_of(stack[-1][0])  # type: ignore[arg-type]
        ):
            stack.pop()
        names = frozenset(labels[network]) | (stack[-1][1] if stack else frozenset())
        stack.append((network, names))
        facts = interned.get(names)
        if facts is None:
            expanded = sorted({p for n in names for p in _with_parents(n)})
            facts = interned[names] = Facts(
                tuple(expanded), TOR in names, any(_is_blocklist(n) for n in names)
            )
        pairs.append((str(network), facts))
    return native.IpTable(pairs)


def load(sources: Sources) -> IpIntelligence:
    """Opens the databases and reads the lists; `ConfigError` (with the
    file, or the config key that named it) when one cannot be used."""

    def open_db(key: str, path: Path | None) -> native.GeoDb | None:
        if path is None:
            return None
        try:
            return native.GeoDb(str(path))
        except native.GeoDbError as exc:
            raise ConfigError(f"not a MaxMind DB file ({exc})", sources.origins.get(key)) from None

    lists = {
        name: read_cidr_list(path, sources.origins.get(f"categories.{name}"))
        for name, path in sources.categories.items()
    }
    return IpIntelligence(
        open_db("geo_db", sources.geo_db),
        open_db("asn_db", sources.asn_db),
        _category_table(lists) if lists else None,
        lists,
    )

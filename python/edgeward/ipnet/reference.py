"""Pure-Python twin of the IP prefix matching in `edgeward_native`.

Same API, same accepted text, same errors as the Rust module (typed in
``edgeward_native/__init__.pyi``); written to be read, not to be fast.
Addresses and prefixes are parsed by `ipaddress`, narrowed to the grammar of
the Rust parser: no IPv6 zone ids, no netmask forms, prefix lengths without
leading zeros. Prefixes are kept per family and length in dicts keyed by
network, so a lookup masks the address once per length present.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

__all__ = ["CidrError", "IpPolicy", "IpTable", "parse_address", "parse_prefix"]

_V = TypeVar("_V")
_T = TypeVar("_T")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_PREFIX_LENGTH = re.compile(r"0|[1-9][0-9]{0,2}", re.ASCII)


class CidrError(ValueError):
    """An entry of a CIDR list is not a valid prefix. `field` names the list
    ("allow", "deny", "pairs"), `index` the entry's position in it and
    `entry` its text."""

    field: str
    index: int
    entry: str

    def __init__(self, message: str, *, field: str, index: int, entry: str) -> None:
        super().__init__(message)
        self.field = field
        self.index = index
        self.entry = entry


class _HostBitsSet(ValueError):
    def __init__(self, masked: Network) -> None:
        super().__init__(f"host bits set (did you mean {masked}?)")
        self.masked = masked


def _raw_address(text: str) -> Address:
    if "%" in text:  # ipaddress accepts IPv6 zone ids; we do not
        raise ValueError(f"{text!r} has a zone id")
    return ipaddress.ip_address(text)


def parse_address(text: str) -> Address:
    """`text` as an address; an IPv4-mapped IPv6 address is its IPv4
    address, because a dual-stack socket reports IPv4 clients that way."""
    address = _raw_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_prefix(text: str) -> Network:
    """``address[/length]`` as a network; a bare address is a /32 or /128.

    Host bits set is an error (``10.0.0.1/8``). An IPv6 prefix of length 96
    or more inside ``::ffff:0:0/96`` is the IPv4 prefix it maps; shorter IPv6
    prefixes, ``::/0`` included, contain no IPv4 address."""
    address_text, slash, length_text = text.partition("/")
    address = _raw_address(address_text)
    length: int = address.max_prefixlen
    if slash:
        if not _PREFIX_LENGTH.fullmatch(length_text) or int(length_text) > length:
            raise ValueError(f"bad prefix length in {text!r}")
        length = int(length_text)
    family = ipaddress.IPv4Network if address.version == 4 else ipaddress.IPv6Network
    network = family((int(address), length), strict=False)
    if network.network_address != address:
        raise _HostBitsSet(_unmapped(network))
    return _unmapped(network)


def _unmapped(network: Network) -> Network:
    """An IPv6 prefix of length 96 or more inside ``::ffff:0:0/96`` as the
    IPv4 prefix it maps."""
    if isinstance(network, ipaddress.IPv4Network) or network.prefixlen < 96:
        return network
    mapped = network.network_address.ipv4_mapped
    if mapped is None:
        return network
    return ipaddress.IPv4Network((int(mapped), network.prefixlen - 96))


class _Prefixes(Generic[_V]):
    """Prefixes with a value each, grouped by (IP version, length)."""

    def __init__(self) -> None:
        self._groups: dict[tuple[int, int], dict[int, _V]] = {}
        self._longest_first: list[tuple[int, int]] = []

    def add(self, network: Network, value: _V) -> None:
        key = (network.version, network.prefixlen)
        if key not in self._groups:
            self._groups[key] = {}
            self._longest_first = sorted(self._groups, key=lambda k: -k[1])
        self._groups[key][int(network.network_address)] = value

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups.values())

    def longest(self, address: Address) -> _V | None:
        """The value of the longest prefix containing `address`."""
        for version, length in self._longest_first:
            if version == address.version:
                host_bits = address.max_prefixlen - length
                network = int(address) >> host_bits << host_bits
                if network in self._groups[version, length]:
                    return self._groups[version, length][network]
        return None


class IpPolicy:
    """Allowed only if in at least one `allow` prefix and in no `deny`
    prefix, whatever the lengths; no `allow` prefix allows nothing."""

    def __init__(self, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> None:
        self._allow: _Prefixes[bool] = _Prefixes()
        self._deny: _Prefixes[bool] = _Prefixes()
        for index, cidr in enumerate(allow):
            self._allow.add(_cidr(cidr, "allow", index), True)
        for index, cidr in enumerate(deny):
            self._deny.add(_cidr(cidr, "deny", index), True)

    def decide(self, ip: str) -> bool:
        return self._decide(_address(ip, None))

    def decide_many(self, ips: Iterable[str]) -> list[bool]:
        return _each(ips, self._decide)

    def _decide(self, address: Address) -> bool:
        return bool(self._allow.longest(address)) and not self._deny.longest(address)

    def __repr__(self) -> str:
        return f"<IpPolicy of {len(self._allow)} allow and {len(self._deny)} deny prefixes>"


class IpTable(Generic[_V]):
    """Longest-prefix-match table; a prefix given twice keeps the last value."""

    def __init__(self, pairs: Iterable[tuple[str, _V]]) -> None:
        self._prefixes: _Prefixes[_V] = _Prefixes()
        for index, pair in enumerate(pairs):
            try:
                cidr, value = pair
            except (TypeError, ValueError):
                raise TypeError(f"pairs[{index}]: expected a (cidr, value) pair") from None
            self._prefixes.add(_cidr(cidr, "pairs", index), value)

    def lookup(self, ip: str) -> _V | None:
        return self._lookup(_address(ip, None))

    def lookup_many(self, ips: Iterable[str]) -> list[_V | None]:
        return _each(ips, self._lookup)

    def _lookup(self, address: Address) -> _V | None:
        return self._prefixes.longest(address)

    def __len__(self) -> int:
        return len(self._prefixes)

    def __repr__(self) -> str:
        return f"<IpTable of {len(self)} prefixes>"


def _text(value: object, place: str | None) -> str:
    if not isinstance(value, str):
        where = f"{place}: " if place else ""
        raise TypeError(f"{where}expected str, got {type(value).__name__}")
    return value


def _address(ip: object, place: str | None) -> Address:
    text = _text(ip, place)
    try:
        return parse_address(text)
    except ValueError:
        where = f"{place}: " if place else ""
        raise ValueError(f"{where}{text!r} is not a valid IP address") from None


def _each(ips: Iterable[str], decide: Callable[[Address], _T]) -> list[_T]:
    return [decide(_address(ip, f"ips[{index}]")) for index, ip in enumerate(ips)]


def _cidr(cidr: object, field: str, index: int) -> Network:
    place = f"{field}[{index}]"
    text = _text(cidr, place)
    try:
        return parse_prefix(text)
    except _HostBitsSet as error:
        reason = f"has host bits set (did you mean '{error.masked}'?)"
    except ValueError:
        reason = "is not a valid CIDR"
    raise CidrError(f"{place}: {text!r} {reason}", field=field, index=index, entry=text)

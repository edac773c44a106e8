"""A deliberately naive oracle for IP prefix matching, kept apart from the
shipped reference: it scans every prefix with `ipaddress` containment, and
reads the accepted grammar straight from `ipaddress` plus the three
documented narrowings (no zone ids, no netmask lengths, no leading zeros)."""

from __future__ import annotations

import ipaddress
from typing import Literal

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Invalid = Literal["syntax", "host bits"]


def address(text: str) -> Address | None:
    """The address `text` names (IPv4-mapped ones as IPv4), None if invalid."""
    if "%" in text:
        return None
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def prefix(text: str) -> Network | Invalid:
    """The network `text` names, or why it is refused."""
    _, slash, length = text.partition("/")
    if "%" in text:
        return "syntax"
    if slash and not (length.isascii() and length.isdigit()):
        return "syntax"
    if slash and length != "0" and length.startswith("0"):
        return "syntax"
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return "syntax"
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        return "host bits"
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is not None and network.prefixlen >= 96:
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


def valid(network: Network | Invalid) -> Network:
    assert not isinstance(network, str), network
    return network


def decide(allow: list[str], deny: list[str], ip: str) -> bool:
    addr = address(ip)
    assert addr is not None
    allowed = any(addr in valid(prefix(cidr)) for cidr in allow)
    denied = any(addr in valid(prefix(cidr)) for cidr in deny)
    return allowed and not denied


def lookup(pairs: list[tuple[str, object]], ip: str) -> object:
    addr = address(ip)
    assert addr is not None
    best: tuple[int, int] | None = None
    for position, (cidr, _) in enumerate(pairs):
        network = valid(prefix(cidr))
        if addr in network and (best is None or network.prefixlen >= best[0]):
            best = (network.prefixlen, position)
    return None if best is None else pairs[best[1]][1]


def distinct(cidrs: list[str]) -> int:
    return len({valid(prefix(cidr)) for cidr in cidrs})

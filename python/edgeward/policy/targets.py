"""Where the `http-request` action may send a request: the edge config's
`http_request.allow_external`, deny by default (no SSRF into the operator's
network).

A URL's host is allowed when it is a listed name (exact, or under a
`*.example.com` entry) or an address inside a listed network. The address
the name then resolves to is checked again, by the `Fetch` driver just
before it connects (`address_allowed`): it must be inside a listed network,
or public (not loopback, private, link-local such as the cloud metadata
address 169.254.169.254, shared, reserved or multicast). So a listed name
cannot be pointed at an internal address through DNS, and reaching a
private service takes listing its address range explicitly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from typing import Protocol

from edgeward import native


class TargetRules(Protocol):
    """The edge config's `http_request` (`edgeward.config.model.OutboundAllowList`)."""

    @property
    def hosts(self) -> Collection[str]: ...

    @property
    def networks(self) -> Collection[object]: ...


class ExternalTargets:
    """The allow list, compiled once per policy. Immutable."""

    __slots__ = ("_exact", "_networks", "_suffixes", "known")

    def __init__(
        self, hosts: Collection[str] = (), networks: Collection[object] = (), *, known: bool = True
    ) -> None:
        names = [h.lower().rstrip(".") for h in hosts]
        self._exact = frozenset(n for n in names if not n.startswith("*."))
        self._suffixes = tuple(n[1:] for n in names if n.startswith("*."))  # ".example.com"
        cidrs = [str(n) for n in networks]
        self._networks = native.IpPolicy(cidrs) if cidrs else None
        self.known = known  # False: no edge config was given (`policy check` alone)

    @classmethod
    def from_rules(cls, rules: TargetRules | None) -> ExternalTargets:
        if rules is None:
            return cls(known=False)
        return cls(rules.hosts, rules.networks)

    def host_refusal(self, host: str) -> str | None:
        """Why a URL's host may not be called, or None (`host` as
        `urlsplit().hostname` gives it: lower case, no brackets)."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            name = host.rstrip(".")
            if name in self._exact or any(name.endswith(s) for s in self._suffixes):
                return None
            return f"host {host!r} is not in the edge config's http_request.allow_external"
        if self._in_networks(host):
            return None
        return f"address {host} is not in the edge config's http_request.allow_external"

    def address_allowed(self, address: str) -> bool:
        """Whether the edge may connect to `address`, which an allowed host
        resolved to (`Fetch.address_allowed`)."""
        if self._in_networks(address):
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_global and not ip.is_multicast

    def _in_networks(self, address: str) -> bool:
        if self._networks is None:
            return False
        try:
            return self._networks.decide(address)
        except ValueError:
            return False


__all__ = ["ExternalTargets", "TargetRules"]

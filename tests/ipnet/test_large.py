"""Tables and policies of 200k prefixes (geo / category scale): the build
is correct at scale, and the twins agree on it."""

from __future__ import annotations

import ipaddress
import random
from types import SimpleNamespace

import pytest

SIZE = 200_000


def random_networks(count: int, seed: int) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Mixed IPv4/IPv6 networks clustered under a few short prefixes, so
    that many nest; duplicates included."""
    rng = random.Random(seed)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for _ in range(count):
        if rng.random() < 0.6:
            value = rng.choice([10, 100, 192, 203]) << 24 | rng.getrandbits(24)
            length = rng.choice([8, 12, 16, 20, 22, 24, 24, 24, 28, 32])
            networks.append(ipaddress.IPv4Network((value, length), strict=False))
        else:
            value = rng.choice([0x2001_0DB8, 0x2A00_1450, 0x2600_0000]) << 96 | rng.getrandbits(96)
            length = rng.choice([24, 32, 40, 48, 48, 56, 64, 64, 96, 128])
            networks.append(ipaddress.IPv6Network((value, length), strict=False))
    return networks


@pytest.fixture(scope="module")
def networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return random_networks(SIZE, seed=2024)


@pytest.fixture(scope="module")
def probes(networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> list[str]:
    """First and last addresses of prefixes, their neighbours, random ones."""
    rng = random.Random(7)
    out = []
    for network in rng.sample(networks, 5_000):
        first, last = int(network.network_address), int(network.broadcast_address)
        top = 2**network.max_prefixlen - 1
        for value in (first, last, max(first - 1, 0), min(last + 1, top)):
            out.append(str(type(network.network_address)(value)))
    return out


def test_each_prefix_finds_a_prefix_at_least_as_long(
    ipnet: SimpleNamespace, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> None:
    table = ipnet.IpTable((str(n), i) for i, n in enumerate(networks))
    assert len(table) == len(set(networks))
    last = {network: index for index, network in enumerate(networks)}
    sample = networks[::50]
    found = table.lookup_many(str(n.network_address) for n in sample)
    for network, index in zip(sample, found, strict=True):
        match = networks[index]
        assert network.network_address in match and match.prefixlen >= network.prefixlen
        assert index == last[match]  # the last value of a duplicate prefix


def test_twins_agree_on_large_tables_and_policies(
    both: tuple[SimpleNamespace, SimpleNamespace],
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    probes: list[str],
) -> None:
    cidrs = [str(n) for n in networks]
    pairs = list(zip(cidrs, range(len(cidrs)), strict=True))
    # Long deny prefixes only: a short one would cover whole clusters.
    allow = cidrs[: SIZE // 2]
    deny = [str(n) for n in networks[SIZE // 2 :] if n.prefixlen >= n.max_prefixlen * 3 // 4]
    tables = [backend.IpTable(pairs).lookup_many(probes) for backend in both]
    assert tables[0] == tables[1]
    assert sum(v is not None for v in tables[0]) > len(probes) // 2
    policies = [backend.IpPolicy(allow, deny).decide_many(probes) for backend in both]
    assert policies[0] == policies[1]
    assert 0 < sum(policies[0]) < len(probes)

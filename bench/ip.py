"""IP prefix lookups: edgeward's Rust `IpTable`/`IpPolicy` against the
pure-Python reference twin and the C extensions pytricia and py-radix.

Targets (docs/ipnet.md): one lookup from Python at least 2x faster than
pytricia and py-radix; batch lookups at least 10M/s. Each row gives the
median wall time and the median CPU time of the measuring thread (the same
runs): on a shared machine the CPU time is the one to compare.

    python -m bench ip [--prefixes 10000] [--addresses 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import edgeward_native as native

from edgeward.bench.table import Table
from edgeward.ipnet import reference

try:
    import pytricia
except ImportError:  # pip install -e '.[bench]'
    pytricia = None
try:
    import radix
except ImportError:
    radix = None

REFERENCE_SAMPLE = 20_000  # the reference is too slow for a million lookups


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench ip", description=__doc__)
    parser.add_argument("--prefixes", type=int, default=10_000)
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if pytricia is None or radix is None:
        print("pytricia/py-radix missing (pip install -e '.[bench]'): baselines skipped")

    rng = random.Random(args.seed)
    cidrs = random_prefixes(rng, args.prefixes)
    ips = random_addresses(rng, cidrs, args.addresses)
    sample = ips[:REFERENCE_SAMPLE]
    pairs = [(cidr, i) for i, cidr in enumerate(cidrs)]
    allow, deny = cidrs[: len(cidrs) * 4 // 5], cidrs[len(cidrs) * 4 // 5 :]
    print(
        f"{len(cidrs):,} prefixes (70% IPv4), {len(ips):,} addresses (70% IPv4, half inside "
        f"a prefix); medians of {args.repeat} runs; reference on the first {len(sample):,}"
    )

    builds = Table("build", ["implementation", "ms", "cpu ms"])
    timed_build = _timer(builds, args.repeat)
    table = timed_build("edgeward native IpTable", lambda: native.IpTable(pairs))
    ref_table = timed_build("edgeward reference IpTable", lambda: reference.IpTable(pairs))
    trie = timed_build("pytricia", lambda: Pytricia(pairs)) if pytricia else None
    rtree = timed_build("py-radix", lambda: build_radix(pairs)) if radix else None
    timed_build("edgeward native IpPolicy", lambda: native.IpPolicy(allow, deny))
    builds.print()

    expected = table.lookup_many(ips)
    assert ref_table.lookup_many(sample) == expected[: len(sample)], "reference disagrees"
    if trie is not None:
        assert [trie.get(ip) for ip in ips] == expected, "pytricia disagrees"
    if rtree is not None:
        found = [rtree.search_best(ip) for ip in ips]
        assert [n and n.data["v"] for n in found] == expected, "py-radix disagrees"

    lookups = Table(
        f"longest-prefix lookup, {len(cidrs):,} prefixes",
        COLUMNS,
    )
    rows: list[tuple[str, float, float]] = []

    def measure(name: str, run: Callable[[], object], count: int) -> None:
        wall, cpu = median_times(run, args.repeat)
        rows.append((name, wall / count * 1e9, cpu / count * 1e9))

    look = table.lookup
    measure("native lookup()", lambda: [look(ip) for ip in ips], len(ips))
    measure("native lookup_many()", lambda: table.lookup_many(ips), len(ips))
    ref_look = ref_table.lookup
    measure("reference lookup()", lambda: [ref_look(ip) for ip in sample], len(sample))
    if trie is not None:
        v4, v6 = trie.v4.get, trie.v6.get
        measure(
            "pytricia get() (per family)",
            lambda: [(v6 if ":" in ip else v4)(ip) for ip in ips],
            len(ips),
        )
    if rtree is not None:
        best = rtree.search_best
        measure("py-radix search_best()", lambda: [best(ip) for ip in ips], len(ips))
    _add_rows(lookups, rows)
    lookups.print()

    # The same on IPv4 addresses alone: pytricia needs no family dispatch.
    v4_ips = [ip for ip in ips if ":" not in ip]
    v4_only = Table(f"longest-prefix lookup, IPv4 addresses only ({len(v4_ips):,})", COLUMNS)
    rows = []
    measure("native lookup()", lambda: [look(ip) for ip in v4_ips], len(v4_ips))
    measure("native lookup_many()", lambda: table.lookup_many(v4_ips), len(v4_ips))
    if trie is not None:
        get4 = trie.v4.get
        measure("pytricia get()", lambda: [get4(ip) for ip in v4_ips], len(v4_ips))
    if rtree is not None:
        measure("py-radix search_best()", lambda: [best(ip) for ip in v4_ips], len(v4_ips))
    _add_rows(v4_only, rows)
    v4_only.print()

    policy = native.IpPolicy(allow, deny)
    ref_policy = reference.IpPolicy(allow, deny)
    verdicts = policy.decide_many(ips)
    assert ref_policy.decide_many(sample) == verdicts[: len(sample)], "reference disagrees"
    decisions = Table(
        f"allow/deny decision, {len(allow):,} allow + {len(deny):,} deny prefixes",
        COLUMNS,
    )
    rows = []
    decide = policy.decide
    measure("native decide()", lambda: [decide(ip) for ip in ips], len(ips))
    measure("native decide_many()", lambda: policy.decide_many(ips), len(ips))
    ref_decide = ref_policy.decide
    measure("reference decide()", lambda: [ref_decide(ip) for ip in sample], len(sample))
    if pytricia is not None:
        allowed, denied = (
            Pytricia([(c, 1) for c in allow]),
            Pytricia([(c, 1) for c in deny]),
        )
        emulated = [ip in allowed and ip not in denied for ip in ips]
        assert emulated == verdicts, "pytricia emulation disagrees"
        measure(
            "pytricia: in allow and not in deny",
            lambda: [ip in allowed and ip not in denied for ip in ips],
            len(ips),
        )
    if radix is not None:
        allowed_r, denied_r = (
            build_radix([(c, 1) for c in allow]),
            build_radix([(c, 1) for c in deny]),
        )
        sa, sd = allowed_r.search_best, denied_r.search_best
        measure(
            "py-radix: in allow and not in deny",
            lambda: [sa(ip) is not None and sd(ip) is None for ip in ips],
            len(ips),
        )
    _add_rows(decisions, rows)
    decisions.print()


def _timer(table: Table, repeat: int) -> Callable[[str, Callable[[], Any]], Any]:
    def timed(name: str, build: Callable[[], Any]) -> Any:
        wall, cpu = median_times(build, repeat)
        table.add(name, wall * 1e3, cpu * 1e3)
        return build()

    return timed


COLUMNS = ["implementation", "ns", "cpu ns", "M/s (cpu)", "vs pytricia", "vs py-radix"]


def median_times(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and thread-CPU seconds of `run()` over `repeat` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.thread_time()
        run()
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus)


def _add_rows(table: Table, rows: list[tuple[str, float, float]]) -> None:
    """Rows of (name, wall ns, cpu ns); ratios on CPU time."""
    tricia = next((cpu for name, _, cpu in rows if name.startswith("pytricia")), None)
    radix_ns = next((cpu for name, _, cpu in rows if name.startswith("py-radix")), None)
    for name, wall, cpu in rows:
        table.add(
            name,
            wall,
            cpu,
            1e3 / cpu,
            f"{tricia / cpu:.2f}x" if tricia else "-",
            f"{radix_ns / cpu:.2f}x" if radix_ns else "-",
        )


def random_prefixes(rng: random.Random, count: int) -> list[str]:
    """Distinct prefixes, 70% IPv4 (/8 to /32, most /16-/24), 30% IPv6
    (/16 to /64, half under 2001::/16)."""
    out: set[str] = set()
    while len(out) < count:
        if rng.random() < 0.7:
            length = rng.choice([8, 12, 16, 18, 20, 22, 24, 24, 24, 24, 28, 32])
            network: Any = ipaddress.IPv4Network((rng.getrandbits(32), length), strict=False)
        else:
            length = rng.choice([16, 24, 32, 32, 40, 48, 48, 56, 64])
            top = 0x2001 if rng.random() < 0.5 else rng.getrandbits(16)
            value = top << 112 | rng.getrandbits(112)
            network = ipaddress.IPv6Network((value, length), strict=False)
        out.add(str(network))
    return sorted(out, key=lambda _: rng.random())


def random_addresses(rng: random.Random, cidrs: list[str], count: int) -> list[str]:
    """Half inside a random prefix, half anywhere; 70% IPv4."""
    v4 = [ipaddress.IPv4Network(c) for c in cidrs if ":" not in c]
    v6 = [ipaddress.IPv6Network(c) for c in cidrs if ":" in c]
    out = []
    for _ in range(count):
        is_v4 = rng.random() < 0.7
        bits = 32 if is_v4 else 128
        value = rng.getrandbits(bits)
        if rng.random() < 0.5:
            network = rng.choice(v4 if is_v4 else v6)
            host = bits - network.prefixlen
            value = int(network.network_address) | (value & ((1 << host) - 1))
        if is_v4:
            out.append(f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}")
        else:
            out.append(str(ipaddress.IPv6Address(value)))
    return out


class Pytricia:
    """One pytricia trie per family: a single 128-bit trie mixes them up
    (an IPv6 address finds IPv4 prefixes covering its first 32 bits)."""

    def __init__(self, pairs: list[tuple[str, int]]) -> None:
        self.v4, self.v6 = pytricia.PyTricia(32), pytricia.PyTricia(128)
        for cidr, value in pairs:
            (self.v6 if ":" in cidr else self.v4)[cidr] = value

    def get(self, ip: str) -> int | None:
        return (self.v6 if ":" in ip else self.v4).get(ip)

    def __contains__(self, ip: str) -> bool:
        return ip in (self.v6 if ":" in ip else self.v4)


def build_radix(pairs: list[tuple[str, int]]) -> Any:
    tree = radix.Radix()
    for cidr, value in pairs:
        tree.add(cidr).data["v"] = value
    return tree

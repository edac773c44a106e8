"""Hypothesis strategies aimed at the internal boundaries of prefix
matching: prefixes nested around a few shared anchors, lengths 0/32/96/128,
addresses at the first and last address of a prefix and just outside, the
IPv4-mapped range in every notation, and near-valid text."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hypothesis import strategies as st

V4_MAX = 2**32 - 1
V6_MAX = 2**128 - 1
MAPPED = 0xFFFF << 32


@dataclass(frozen=True)
class Net:
    """A prefix as integers: `bits` is 32 or 128 (128 may be IPv4-mapped)."""

    bits: int
    network: int
    length: int

    @property
    def last(self) -> int:
        return self.network | ((1 << (self.bits - self.length)) - 1)


# Anchors: values the prefixes are cut from, so that prefixes nest and
# overlap, and values at the edges of the address space and of the mapped
# range (::ffff:0:0/96) and its IPv4-compatible neighbour (::/96).
v4_ints = st.one_of(
    st.sampled_from([0, 1, 0x0A000000, 0x7FFFFFFF, 0x80000000, 0xC0A80001, V4_MAX - 1, V4_MAX]),
    st.integers(0, V4_MAX),
)
v6_ints = st.one_of(
    st.sampled_from([0, 1, MAPPED, MAPPED - 1, MAPPED | V4_MAX, (MAPPED | V4_MAX) + 1, V6_MAX]),
    st.integers(0, V4_MAX).map(lambda v4: MAPPED | v4),
    st.integers(0, V4_MAX).map(lambda v4: (0xFFFE << 32) | v4),
    st.integers(0, V4_MAX),
    st.integers(0, 2**64 - 1).map(lambda low: (0x20010DB8 << 96) | low),
    st.integers(0, V6_MAX),
)
anchors = st.one_of(v4_ints.map(lambda a: (32, a)), v6_ints.map(lambda a: (128, a)))


def lengths(bits: int) -> st.SearchStrategy[int]:
    edges = [0, 1, bits - 1, bits] + ([95, 96, 97, 104, 127] if bits == 128 else [8, 24, 31])
    return st.one_of(st.sampled_from(edges), st.integers(0, bits))


@st.composite
def nets(draw: st.DrawFn, anchor_pool: list[tuple[int, int]]) -> Net:
    bits, value = draw(st.sampled_from(anchor_pool))
    length = draw(lengths(bits))
    host_bits = bits - length
    return Net(bits, value >> host_bits << host_bits, length)


def _v6_texts(value: int) -> st.SearchStrategy[str]:
    address = ipaddress.IPv6Address(value)
    texts = [address.compressed, address.exploded, address.compressed.upper()]
    dotted = str(ipaddress.IPv4Address(value & V4_MAX))
    if value >> 32 == 0xFFFF:  # IPv4-mapped
        texts += ["::ffff:" + dotted, "0:0:0:0:0:FFFF:" + dotted]
    elif value >> 32 == 0:  # IPv4-compatible (deprecated, plain IPv6 here)
        texts += ["::" + dotted, "0:0:0:0:0:0:" + dotted]
    return st.sampled_from(texts)


def address_text(bits: int, value: int) -> st.SearchStrategy[str]:
    """`value` in the notations that name it; IPv4 ones also IPv4-mapped."""
    if bits == 32:
        return st.one_of(st.just(str(ipaddress.IPv4Address(value))), _v6_texts(MAPPED | value))
    return _v6_texts(value)


def prefix_text(net: Net) -> st.SearchStrategy[str]:
    """`net` as CIDR text; IPv4 ones also as their mapped IPv6 prefix,
    host prefixes also without a length."""
    if net.bits == 32:
        forms = st.one_of(
            st.just(f"{ipaddress.IPv4Address(net.network)}/{net.length}"),
            _v6_texts(MAPPED | net.network).map(lambda t: f"{t}/{net.length + 96}"),
        )
    else:
        forms = _v6_texts(net.network).map(lambda t: f"{t}/{net.length}")
    if net.length == net.bits:
        return st.one_of(forms, address_text(net.bits, net.network))
    return forms


@st.composite
def probe(draw: st.DrawFn, anchor_pool: list[tuple[int, int]], near: list[Net]) -> str:
    """An address: at the edges of one of the prefixes, inside it, or at an
    anchor or anywhere."""
    choice = draw(st.integers(0, 3)) if near else 3
    if choice < 3:
        net = draw(st.sampled_from(near))
        top = V4_MAX if net.bits == 32 else V6_MAX
        value = draw(
            st.sampled_from([net.network, net.last, net.network - 1, net.last + 1])
            if choice < 2
            else st.integers(net.network, net.last)
        )
        return draw(address_text(net.bits, min(max(value, 0), top)))
    bits, value = draw(st.one_of(st.sampled_from(anchor_pool), anchors))
    return draw(address_text(bits, value))


@dataclass(frozen=True)
class Scenario:
    allow: list[str]
    deny: list[str]
    probes: list[str]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    pool = draw(st.lists(anchors, min_size=1, max_size=4))
    allow = draw(st.lists(nets(pool), max_size=8))
    deny = draw(st.lists(nets(pool), max_size=8))
    return Scenario(
        allow=[draw(prefix_text(n)) for n in allow],
        deny=[draw(prefix_text(n)) for n in deny],
        probes=draw(st.lists(probe(pool, allow + deny), min_size=1, max_size=16)),
    )


# Near-valid text: valid addresses and prefixes with a few edits, drawn from
# characters that matter to the grammar (and a few that must never pass).
EDIT_CHARS = "0123456789abcdefABCDEF:./%-+ xg\t\n\u0661\uff10"


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    text = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(EDIT_CHARS))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        if edit == "insert":
            text = text[:at] + char + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text


any_address_text = anchors.flatmap(lambda a: address_text(*a))
any_prefix_text = st.lists(anchors, min_size=1, max_size=1).flatmap(nets).flatmap(prefix_text)
near_address_text = st.one_of(
    mutated(any_address_text), st.text(EDIT_CHARS, max_size=24), st.text(max_size=8)
)
# Prefix text that may have host bits set: an address with any length.
any_cidr_text = st.one_of(
    any_prefix_text,
    st.tuples(any_address_text, st.integers(0, 130)).map(lambda t: f"{t[0]}/{t[1]}"),
)
near_prefix_text = st.one_of(mutated(any_cidr_text), st.text(EDIT_CHARS, max_size=24))

"""Both backends against the naive oracle on generated prefix sets,
addresses and near-valid text."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from . import oracle
from .strategies import (
    Scenario,
    any_address_text,
    near_address_text,
    near_prefix_text,
    scenarios,
)


@given(scenarios())
def test_policy_decisions_match_the_oracle(ipnet: SimpleNamespace, case: Scenario) -> None:
    policy = ipnet.IpPolicy(allow=case.allow, deny=case.deny)
    expected = [oracle.decide(case.allow, case.deny, ip) for ip in case.probes]
    assert [policy.decide(ip) for ip in case.probes] == expected
    assert policy.decide_many(case.probes) == expected
    assert policy.decide_many(iter(case.probes)) == expected


@given(scenarios())
def test_table_lookups_match_the_oracle(ipnet: SimpleNamespace, case: Scenario) -> None:
    # Values are positions, so "the last value of a duplicate wins" shows.
    cidrs = case.allow + case.deny
    pairs = [(cidr, position) for position, cidr in enumerate(cidrs)]
    table = ipnet.IpTable(pairs)
    expected = [oracle.lookup(pairs, ip) for ip in case.probes]
    assert [table.lookup(ip) for ip in case.probes] == expected
    assert table.lookup_many(case.probes) == expected
    assert table.lookup_many(tuple(case.probes)) == expected
    assert len(table) == oracle.distinct(cidrs)


@given(near_address_text)
@example("fe80::1%eth0")
@example("::ffff:1.2.3.4%0")
@example("1.2.3.04")
@example("\ud800")
def test_address_syntax_matches_the_oracle(ipnet: SimpleNamespace, text: str) -> None:
    everything = ipnet.IpPolicy(allow=["0.0.0.0/0", "::/0"])
    table = ipnet.IpTable([("0.0.0.0/0", 4), ("::/0", 6)])
    parsed = oracle.address(text)
    if parsed is None:
        with pytest.raises(ValueError, match="is not a valid IP address"):
            everything.decide(text)
        with pytest.raises(ValueError, match=r"^ips\[1\]: "):
            table.lookup_many(["::", text])
    else:
        assert everything.decide(text)
        assert table.lookup(text) == parsed.version


@given(near_prefix_text, any_address_text)
@example("1.2.3.4/08", "1.2.3.4")
@example("10.0.0.0/255.0.0.0", "10.0.0.1")
@example("fe80::%eth0/64", "fe80::1")
@example("::ffff:10.0.0.1/104", "10.0.0.1")
@example("::/80", "0.0.0.0")  # its last address is IPv4-mapped, so not in it
def test_prefix_syntax_matches_the_oracle(ipnet: SimpleNamespace, text: str, ip: str) -> None:
    expected = oracle.prefix(text)
    if isinstance(expected, str):
        with pytest.raises(ipnet.CidrError) as raised:
            ipnet.IpPolicy(allow=["::/0"], deny=[text])
        error = raised.value
        assert isinstance(error, ValueError)
        assert (error.field, error.index, error.entry) == ("deny", 0, text)
        assert ("host bits" in str(error)) == (expected == "host bits")
        with pytest.raises(ipnet.CidrError):
            ipnet.IpTable([(text, None)])
    else:
        policy = ipnet.IpPolicy(allow=[text])
        for probe in (str(expected.network_address), str(expected.broadcast_address), ip):
            assert policy.decide(probe) == oracle.decide([text], [], probe)


@given(st.lists(near_prefix_text, max_size=6))
def test_twins_raise_the_same_errors(
    both: tuple[SimpleNamespace, SimpleNamespace], cidrs: list[str]
) -> None:
    """Same error, same message, same first bad entry from both twins."""
    outcomes = []
    for backend in both:
        try:
            backend.IpPolicy(allow=cidrs)
        except ValueError as error:
            outcomes.append((type(error).__name__, str(error)))
        else:
            outcomes.append(("ok", ""))
    assert outcomes[0] == outcomes[1]

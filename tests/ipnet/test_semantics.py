"""The decided semantics of IP policies and tables (docs/ipnet.md), on
fixed examples, against each backend."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edgeward import native


def test_deny_wins_whatever_the_prefix_lengths(ipnet: SimpleNamespace) -> None:
    # The legacy ngrok example, and a short deny over a long allow.
    policy = ipnet.IpPolicy(
        allow=["110.0.0.0/8", "192.0.2.7/32"], deny=["110.2.3.4/32", "192.0.0.0/8"]
    )
    assert policy.decide("110.2.3.5")
    assert not policy.decide("110.2.3.4")
    assert not policy.decide("192.0.2.7")
    assert not policy.decide("111.0.0.0")


def test_no_allow_prefix_allows_nothing(ipnet: SimpleNamespace) -> None:
    for policy in (ipnet.IpPolicy(), ipnet.IpPolicy(deny=["10.0.0.0/8"])):
        assert policy.decide_many(["10.0.0.1", "1.1.1.1", "::1"]) == [False, False, False]


def test_families_are_separate_except_for_mapped_addresses(ipnet: SimpleNamespace) -> None:
    v4_all = ipnet.IpPolicy(allow=["0.0.0.0/0"])
    v6_all = ipnet.IpPolicy(allow=["::/0"])
    assert v4_all.decide_many(["1.2.3.4", "::ffff:1.2.3.4", "::1.2.3.4", "::1"]) == [
        True,
        True,
        False,  # IPv4-compatible (::a.b.c.d) is plain IPv6
        False,
    ]
    # ::/0 does not contain IPv4 clients, mapped or not: write 0.0.0.0/0.
    assert v6_all.decide_many(["1.2.3.4", "::ffff:1.2.3.4", "::1.2.3.4", "::1"]) == [
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    ("mapped", "plain"),
    [
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:a00:0/104", "10.0.0.0/8"),
        ("::ffff:0:0/96", "0.0.0.0/0"),
        ("0:0:0:0:0:ffff:192.0.2.1", "192.0.2.1/32"),
    ],
)
def test_mapped_prefixes_are_ipv4_prefixes(ipnet: SimpleNamespace, mapped: str, plain: str) -> None:
    probes = ["10.1.2.3", "::ffff:10.1.2.3", "11.0.0.0", "192.0.2.1", "192.0.2.2", "::1"]
    assert ipnet.IpPolicy(allow=[mapped]).decide_many(probes) == ipnet.IpPolicy(
        allow=[plain]
    ).decide_many(probes)
    assert len(ipnet.IpTable([(mapped, 1), (plain, 2)])) == 1


def test_short_ipv6_prefixes_over_the_mapped_range_stay_ipv6(ipnet: SimpleNamespace) -> None:
    policy = ipnet.IpPolicy(allow=["::/64", "::fffe:0:0/95"])
    assert policy.decide_many(["::ffff:1.2.3.4", "1.2.3.4", "::fffe:1.2.3.4", "::1"]) == [
        False,
        False,
        True,
        True,
    ]


def test_edges_of_the_address_space(ipnet: SimpleNamespace) -> None:
    policy = ipnet.IpPolicy(
        allow=["0.0.0.0/0", "::/0"],
        deny=["255.255.255.255", "0.0.0.0/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "::"],
    )
    probes = ["255.255.255.255", "255.255.255.254", "0.0.0.0", "0.0.0.1"]
    probes += ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"]
    probes += ["::", "::1"]
    assert policy.decide_many(probes) == [False, True] * 4


def test_longest_prefix_wins_and_the_last_duplicate(ipnet: SimpleNamespace) -> None:
    marker = object()
    table = ipnet.IpTable(
        [
            ("10.0.0.0/8", "a"),
            ("10.1.0.0/16", "first"),
            ("10.1.0.0/16", "b"),
            ("10.1.2.0/24", marker),
            ("10.1.2.3", None),
            ("2001:db8::/32", ["v6"]),
        ]
    )
    assert len(table) == 5
    assert table.lookup("10.1.2.4") is marker
    assert table.lookup_many(["10.9.9.9", "10.1.9.9", "10.1.2.3", "11.0.0.0"]) == [
        "a",
        "b",
        None,
        None,
    ]
    assert table.lookup("2001:db8:ffff::1") == ["v6"]
    assert table.lookup("2001:db8::1") is table.lookup("2001:db8::2")


def test_table_accepts_any_iterable_of_pairs(ipnet: SimpleNamespace) -> None:
    table = ipnet.IpTable(iter([["10.0.0.0/8", 1], ("::/0", 2)]))
    assert table.lookup_many(x for x in ["10.0.0.1", "::1", "1.1.1.1"]) == [1, 2, None]
    assert len(ipnet.IpTable({"10.0.0.0/8": 1}.items())) == 1
    assert len(ipnet.IpTable([])) == 0
    assert ipnet.IpTable([]).lookup("10.0.0.1") is None
    assert ipnet.IpTable[int] is not None  # generic at run time, as in the stub


BAD_CIDRS = [
    "1.2.3.4/33",
    "1.2.3",
    "::g",
    "",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4/-1",
    "1.2.3.4/08",
    "1.2.3.4/",
    "/24",
    "10.0.0.0/255.0.0.0",
    "fe80::1%eth0",
    "fe80::%eth0/64",
    "::/129",
    "1.2.3.4/32/32",
    "01.2.3.4",
    "1.2.3.4\n",
    "١.2.3.4",
]


@pytest.mark.parametrize("bad", BAD_CIDRS)
def test_bad_cidrs_name_their_list_and_index(ipnet: SimpleNamespace, bad: str) -> None:
    with pytest.raises(ipnet.CidrError) as raised:
        ipnet.IpPolicy(allow=["10.0.0.0/8"], deny=["::/0", "1.2.3.4", "10.0.0.0/9", bad])
    assert str(raised.value) == f"deny[3]: {bad!r} is not a valid CIDR"
    assert (raised.value.field, raised.value.index, raised.value.entry) == ("deny", 3, bad)
    with pytest.raises(ValueError, match=r"^pairs\[1\]: "):
        ipnet.IpTable([("10.0.0.0/8", 1), (bad, 2)])


@pytest.mark.parametrize(
    ("cidr", "suggestion"),
    [
        ("10.0.0.1/8", "10.0.0.0/8"),
        ("192.168.1.10/24", "192.168.1.0/24"),
        ("1.2.3.4/0", "0.0.0.0/0"),
        ("2001:db8::1/32", "2001:db8::/32"),
        ("::1/0", "::/0"),
        ("::ffff:10.0.0.1/104", "10.0.0.0/8"),
    ],
)
def test_host_bits_are_an_error_with_a_suggestion(
    ipnet: SimpleNamespace, cidr: str, suggestion: str
) -> None:
    with pytest.raises(ipnet.CidrError) as raised:
        ipnet.IpPolicy(allow=[cidr])
    assert str(raised.value) == (
        f"allow[0]: {cidr!r} has host bits set (did you mean {suggestion!r}?)"
    )


@pytest.mark.parametrize(
    "bad", ["1.2.3", "::g", "", " 1.2.3.4", "fe80::1%eth0", "1.2.3.4/32", "01.2.3.4", "\ud800"]
)
def test_malformed_addresses_are_value_errors(ipnet: SimpleNamespace, bad: str) -> None:
    policy = ipnet.IpPolicy(allow=["0.0.0.0/0"])
    table = ipnet.IpTable([("0.0.0.0/0", 1)])
    message = f"{bad!r} is not a valid IP address"
    with pytest.raises(ValueError) as raised:
        policy.decide(bad)
    assert str(raised.value) == message
    with pytest.raises(ValueError) as raised:
        table.lookup(bad)
    assert str(raised.value) == message
    with pytest.raises(ValueError) as raised:
        policy.decide_many(["1.1.1.1", "2.2.2.2", bad])
    assert str(raised.value) == f"ips[2]: {message}"
    with pytest.raises(ValueError, match=r"^ips\[0\]: "):
        table.lookup_many(iter([bad]))


def test_non_strings_are_type_errors(ipnet: SimpleNamespace) -> None:
    policy = ipnet.IpPolicy(allow=["0.0.0.0/0"])
    table = ipnet.IpTable([("0.0.0.0/0", 1)])
    for call in (policy.decide, table.lookup):
        with pytest.raises(TypeError, match=r"^expected str, got bytes$"):
            call(b"1.2.3.4")
    with pytest.raises(TypeError, match=r"^ips\[1\]: expected str, got int$"):
        policy.decide_many(["1.1.1.1", 16843009])
    with pytest.raises(TypeError, match=r"^allow\[0\]: expected str, got NoneType$"):
        ipnet.IpPolicy(allow=[None])
    for pair in [("10.0.0.0/8",), ("10.0.0.0/8", 1, 2), 5, "abc"]:
        with pytest.raises(TypeError):
            ipnet.IpTable([pair])
    with pytest.raises(TypeError):
        ipnet.IpPolicy(allow=5)


def test_the_facade_binds_the_active_backend() -> None:
    from edgeward.ipnet import reference

    expected = reference.IpPolicy if native.BACKEND == "python" else native._native.IpPolicy  # type: ignore[union-attr]
    assert native.IpPolicy is expected
    assert issubclass(native.CidrError, ValueError)

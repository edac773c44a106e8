"""Every variable of the reference (§2.3-2.6; the list is
tests/variables/data/reference-variables.tsv) read by a policy in a
scenario that provides it: the value has the reference's type and is not
the empty value the edge gives when it lacks the data. Run on either
backend (EDGEWARD_BACKEND=python runs the pure-Python CEL)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.variables.pki import make_pki
from tests.variables.scenario import World, client_hello, read, write_intelligence

from edgeward.ipintel import load

DATA = Path(__file__).resolve().parent / "data" / "reference-variables.tsv"
VARIABLES = [
    tuple(line.split("\t"))
    for line in DATA.read_text().splitlines()
    if line and not line.startswith("#")
]

# What no phase can give, and why (printed by the test).
EXCLUDED = {
    "conn.ts.end": "no phase runs after the connection ends (Go's zero time while it is open)",
    "conn.server_region": "edgeward has no named regions: ''",
    **{
        f"conn.{ip}.geo.registered_location.{field}": "MaxMind databases give the registered"
        " country only (GeoIP2 registered_country)"
        for ip in ("client_ip", "server_ip")
        for field in ("city", "continent", "metro_code", "subdivision", "timezone")
    },
    "req.trailers": "trailers follow the body; the request phase runs on the head",
    "res.trailers": "trailers follow the body; the response phase runs on the head",
    **{
        name: "Kubernetes-bound endpoints only; edgeward has none"
        for name, _, _ in VARIABLES
        if name.startswith("conn.k8s.")
    },
}

# A variable read in another scenario than the default (desktop, with a body).
SCENARIO = {
    "req.user_agent.is_mobile": "mobile",
    "req.user_agent.device": "mobile",
    "req.user_agent.is_tablet": "tablet",
    "req.user_agent.is_bot": "bot",
    "req.user_agent.url": "bot",
    "req.ts.body_received": "no-body",
    **{
        f"conn.{ip}.geo.{where}.is_eu": "eu"
        for ip in ("client_ip", "server_ip")
        for where in ("location", "registered_location")
    },
}

# A few exact values, where the scenario fixes them.
EXACT: dict[str, Any] = {
    "conn.client_ip.geo.location.city": "San Francisco",
    "conn.geo.country_code": "US",
    "conn.client_ip.geo.registered_location.country_code": "DE",
    "conn.client_ip.as.number": 64500,
    "conn.tls.version": "1.3",
    "conn.tls.ja4_fingerprint": "t13d1715h2_5b57614c22b0_3d5424432f57",
    "conn.tls.client.subject.common_name": "alice",
    "conn.tls.client.subject.organizational_unit": ["Engineering"],
    "conn.tls.client.san.uris": ["spiffe://example.com/alice"],
    "conn.tls.client.serial_number": "c0ffee",
    "conn.tls.client.signature_algorithm": "ECDSA-SHA256",
    "conn.tls.server.subject.common_name": "localhost",
    "conn.tls.server.issuer.common_name": "Edgeward Test CA",
    "req.user_agent.name": "Edge",
    "req.user_agent.os": "Windows",
    "req.user_agent.device": "iPhone",
    "req.url.port": 8443,
    "req.url.user_password": "user:secret",
    "res.cookies[name][0].same_site": "Strict",
    "res.cookies[name][0].max_age": datetime.timedelta(seconds=3600),
}

_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "int": int,
    "bool": bool,
    "timestamp": datetime.datetime,
    "duration": datetime.timedelta,
    "bytes": bytes,
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind.startswith("list<"):
        return isinstance(value, list | tuple)
    if kind.startswith("map<"):
        return isinstance(value, Mapping)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def _placeholder(value: Any) -> bool:
    """The empty values of data the edge lacks: '', 0, false, [], {}, Go's
    zero time, a zero duration."""
    if isinstance(value, datetime.datetime):
        return value.year < 2000
    return not value


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    sources = write_intelligence(tmp_path_factory.mktemp("intel"))
    return World(load(sources), make_pki(), client_hello())


def test_the_list_is_the_reference_s() -> None:
    names = [name for name, _, _ in VARIABLES]
    assert len(names) == len(set(names)) == 207
    sections = {section.split()[0] for _, _, section in VARIABLES}
    assert sections == {"2.3", "2.4", "2.5", "2.6"}
    assert set(SCENARIO) | set(EXACT) <= set(names) and set(EXCLUDED) <= set(names)
    print(f"\n{len(names) - len(EXCLUDED)} variables walked; {len(EXCLUDED)} excluded:")
    for reason in sorted(set(EXCLUDED.values())):
        print(f"  {reason}: {', '.join(n for n, r in EXCLUDED.items() if r == reason)}")


@pytest.mark.parametrize(
    ("name", "kind"),
    [(name, kind) for name, kind, _ in VARIABLES if name not in EXCLUDED],
    ids=lambda v: v if "." in str(v) else "",
)
def test_each_variable_has_a_real_value(world: World, name: str, kind: str) -> None:
    value = read(world, name, SCENARIO.get(name, "desktop"))
    assert _type_ok(value, kind), f"{name}: {type(value).__name__} {value!r}, not {kind}"
    assert not _placeholder(value), f"{name}: an empty value ({value!r})"
    if kind.startswith("list<string"):
        assert all(isinstance(v, str) and v for v in value), value
    if name in EXACT:
        assert value == EXACT[name]


@pytest.mark.parametrize(
    "name", [name for name, _, _ in VARIABLES if name in EXCLUDED and name != "conn.k8s.pod.id"]
)
def test_excluded_variables_still_read_as_empty(world: World, name: str) -> None:
    """What no phase provides reads as its empty value, never an error."""
    value = read(world, name, "desktop")
    assert _placeholder(value) or name.startswith("conn.k8s.")

"""IP intelligence from the edge config: the `ip_intelligence:` section
(files relative to the config, errors with their locations), categories
with their parents from CIDR lists, the empty values when nothing is
configured, and the warnings of `policy check` / the edge config's check
when a policy reads data the config does not provide."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.policy.helpers import parse
from tests.variables import geodata

from edgeward.cli import main
from edgeward.config import load_config
from edgeward.errors import ConfigError
from edgeward.ipintel import (
    EMPTY,
    EMPTY_AS,
    EMPTY_GEO,
    NO_FACTS,
    IpIntelligence,
    Sources,
    load,
    read_cidr_list,
)
from edgeward.policy import compile_policy
from edgeward.policy.errors import Severity
from edgeward.policy.events import ListSink

EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:8080
ip_intelligence:
  geo_db: data/city.mmdb
  asn_db: data/asn.mmdb
  categories:
    com.example.office: data/office.txt
    com.example: data/company.txt
  tor_exit_nodes: data/tor.txt
  blocklists:
    spamhaus_drop: data/drop.txt
endpoints:
  - name: app
    hostname: example.com
    upstream: http://127.0.0.1:9
"""


def _files(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    geodata.write_city(data / "city.mmdb")
    geodata.write_asn(data / "asn.mmdb")
    (data / "office.txt").write_text("192.0.2.0/28\n")
    (data / "company.txt").write_text("# ours\n192.0.2.0/24\n2001:db8:1::/48\n")
    (data / "tor.txt").write_text("198.51.100.7\n")
    (data / "drop.txt").write_text("203.0.113.0/24 ; SBL123\n\n")
    path = tmp_path / "edge.yml"
    path.write_text(EDGE)
    return path


def test_the_section_loads_every_source(tmp_path: Path) -> None:
    intel = load_config(_files(tmp_path)).ip_intelligence
    assert intel.provides == {"geo", "as", "categories", "tor", "blocklist"}
    office = intel.facts("192.0.2.5")
    # The /28 inside the /24: both lists, each with its parents.
    assert office.categories == ("com", "com.example", "com.example.office")
    assert not office.is_tor_node and not office.is_on_blocklist
    assert intel.facts("192.0.2.200").categories == ("com", "com.example")
    assert intel.facts("2001:db8:1::9").categories == ("com", "com.example")
    tor = intel.facts("198.51.100.7")
    assert tor.is_tor_node and tor.categories == ("proxy", "proxy.anonymous", "proxy.anonymous.tor")
    drop = intel.facts("203.0.113.9")
    assert drop.is_on_blocklist and "blocklist.spamhaus_drop" in drop.categories
    assert intel.facts("10.0.0.1") is NO_FACTS
    assert intel.geo("81.2.69.160")["location"]["city"] == "London"
    assert intel.asn("81.2.69.160") == {"number": 20712, "organization": "Andrews & Arnold Ltd"}
    assert intel.geo("10.0.0.1") is EMPTY_GEO and intel.asn("10.0.0.1") is EMPTY_AS
    assert intel.facts("not an address") is NO_FACTS  # a unix socket peer


def test_without_the_section_everything_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "edge.yml"
    path.write_text(
        EDGE.split("ip_intelligence:", maxsplit=1)[0]
        + EDGE.split("spamhaus_drop: data/drop.txt\n")[1]
    )
    intel = load_config(path).ip_intelligence
    assert intel is EMPTY and intel.provides == frozenset()
    assert intel.facts("198.51.100.7") is NO_FACTS and intel.geo("81.2.69.160") is EMPTY_GEO


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (("data/city.mmdb", "data/missing.mmdb"), 6, "missing.mmdb"),
        (("data/asn.mmdb", "data/office.txt"), 7, "not a MaxMind DB file"),
        (("com.example.office:", "Com.Example:"), 9, "dotted lower-case words"),
        (("spamhaus_drop", "spamhaus drop"), 13, "dotted lower-case words"),
        (("geo_db:", "geoip_db:"), 6, "geoip_db"),
    ],
)
def test_errors_name_the_config_line(
    tmp_path: Path, change: tuple[str, str], line: int, message: str
) -> None:
    path = _files(tmp_path)
    path.write_text(path.read_text().replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert message in str(error)
    assert error.location is not None and error.location.line == line, str(error)


def test_a_bad_list_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = _files(tmp_path)
    (tmp_path / "data" / "tor.txt").write_text("198.51.100.7\n198.51.100.300\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.location is not None
    assert caught.value.location.file.endswith("tor.txt") and caught.value.location.line == 2
    (tmp_path / "list.txt").write_text("10.0.0.1/8\n")  # host bits set: not a prefix
    with pytest.raises(ConfigError, match="not a CIDR"):
        read_cidr_list(tmp_path / "list.txt")


TOR_RULE = """
on_http_request:
  - expressions: ["'proxy.anonymous.tor' in conn.client_ip.categories"]
    actions: [{type: deny}]
  - expressions: ["conn.client_ip.geo.location.country_code == 'DE' || conn.geo.city == 'x'"]
    actions: [{type: deny}]
"""


def _warnings(intel: IpIntelligence | None) -> list[str]:
    policy = compile_policy(
        parse(TOR_RULE), ip_policies={}, events=ListSink(), ip_intelligence=intel
    )
    return [d.message for d in policy.warnings if d.severity is Severity.WARNING]


def test_a_policy_reading_data_the_config_lacks_is_warned_about(tmp_path: Path) -> None:
    warnings = _warnings(EMPTY)
    assert len(warnings) == 2
    assert "conn.client_ip.categories" in warnings[0] and "categories" in warnings[0]
    assert "conn.client_ip.geo.location.country_code" in warnings[1] and "geo_db" in warnings[1]
    assert "conn.geo.city" in warnings[1]
    assert all("empty" in w for w in warnings)
    # Unknown (policy check without an edge config): said so.
    assert all("no edge config" in w for w in _warnings(None))
    # Provided: no warning.
    sources = Sources(
        geodata.write_city(tmp_path / "city.mmdb"), None, {"com.example": _list(tmp_path)}
    )
    assert _warnings(load(sources)) == []


def _list(tmp_path: Path) -> Path:
    path = tmp_path / "list.txt"
    path.write_text("192.0.2.0/24\n")
    return path


def test_policy_check_prints_the_warning_and_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "tor.yml"
    policy.write_text(TOR_RULE)
    assert main(["policy", "check", str(policy)]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "warning" in text and "conn.client_ip.categories" in text


def test_edgeward_check_prints_a_policy_s_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tor.yml").write_text(TOR_RULE)
    config = tmp_path / "edge.yml"
    config.write_text(
        EDGE.split("ip_intelligence:", maxsplit=1)[0]
        + "endpoints:\n  - name: app\n    hostname: example.com\n"
        "    upstream: http://127.0.0.1:9\n    traffic_policy_file: tor.yml\n"
    )
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "warning: conn.client_ip.categories: the edge config's ip_intelligence has no" in out
    assert out.endswith("OK (1 listeners, 1 endpoints)\n")

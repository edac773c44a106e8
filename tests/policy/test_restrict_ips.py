from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_network

import pytest

from .helpers import load, load_error, one, request


@dataclass(frozen=True)
class NamedPolicy:  # the shape of edgeward.config.IpPolicy
    name: str
    allow: tuple[object, ...] = ()
    deny: tuple[object, ...] = ()


OFFICE = NamedPolicy(
    "office", allow=(ip_network("203.0.113.0/24"),), deny=(ip_network("203.0.113.66/32"),)
)


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        ("203.0.113.5", True),
        ("203.0.113.66", False),
        ("198.51.100.1", False),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
    ],
)
def test_allow_and_deny_lists(ip: str, allowed: bool) -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: restrict-ips
                config:
                  allow: [203.0.113.0/24, "2001:db8::/32"]
                  deny: [203.0.113.66/32]
        """
    )
    r = request(h, client_ip=ip)
    assert (r.forwarded is not None) is allowed
    if not allowed:
        assert r.status == 403
        (event,) = h.events
        assert (
            event.action == "restrict-ips"
            and event.error_code == "ERR_EDGEWARD_3203"
            and ip in event.reason
        )


def test_forwarded_headers_are_never_used() -> None:
    h = load(one("restrict-ips", "allow: [10.0.0.0/8]"))
    r = request(
        h,
        client_ip="198.51.100.7",
        headers=[("x-forwarded-for", "10.1.2.3"), ("x-real-ip", "10.1.2.3")],
    )
    assert r.status == 403


def test_named_ip_policies_from_the_edge_config() -> None:
    h = load(
        one("restrict-ips", "ip_policies: [office]", phase="on_tcp_connect"),
        ip_policies={"office": OFFICE},
    )
    assert not request(h, client_ip="203.0.113.9").closed
    assert request(h, client_ip="203.0.113.66").tcp_closed  # closed before any byte
    assert request(h, client_ip="192.0.2.1").tcp_closed
    err = load_error(
        one("restrict-ips", "ip_policies: [nope]", phase="on_tcp_connect"),
        ip_policies={"office": OFFICE},
    )
    assert "no IP policy named 'nope'" in str(err) and "office" in str(err)


def test_enforce_false_records_the_verdict() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: restrict-ips
                config: {enforce: false, allow: [10.0.0.0/8, 10.1.0.0/16]}
          - expressions: ["actions.ngrok.restrict_ips.action == 'deny'"]
            actions:
              - type: custom-response
                config: {status_code: 451, body: "${actions.ngrok.restrict_ips.error.code}"}
          - actions:
              - type: add-headers
                config: {headers: {x-cidr: "${actions.ngrok.restrict_ips.matched_cidr}"}}
        """
    )
    denied = request(h, client_ip="192.0.2.1")
    assert (denied.status, denied.body) == (451, b"ERR_EDGEWARD_3203")
    allowed = request(h, client_ip="10.1.2.3")
    assert allowed.upstream_header("x-cidr") == ["10.1.0.0/16"]  # the longest match


def test_interpolated_lists() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: restrict-ips
                config: {allow: ["${endpoint.metadata.allowed}"]}
        """
    )
    # No metadata key: the interpolation fails, and the request fails closed.
    assert request(h).status == 500


def test_deny_only_list_is_a_load_error() -> None:
    err = load_error(one("restrict-ips", "deny: [10.0.0.0/8]"))
    assert "0.0.0.0/0" in str(err) and "::/0" in str(err)


def test_bad_cidr_is_located() -> None:
    err = load_error(
        """
        on_http_request:
          - actions:
              - type: restrict-ips
                config:
                  allow: [10.0.0.0/8, 10.0.0.0/33]
        """
    )
    assert "allow[1]" in str(err) and "policy.yml:6" in str(err)
    assert "at least one of" in str(load_error(one("restrict-ips")))

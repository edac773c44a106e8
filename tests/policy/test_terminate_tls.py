"""terminate-tls on the sans-IO engine: load-time checks with locations,
the `TerminateTls` effect a tls endpoint's `on_tls_connect` yields, what a
later rule sees (`conn.tls.*`, `actions.ngrok.terminate_tls.*`), failing
closed, and the check of a handshake the listener already made (https)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Generator
from typing import Any

import pytest
import trustme

from edgeward.hooks import (
    ClientCert,
    ConnectionInfo,
    Effect,
    EffectResult,
    TerminateTls,
    TlsInfo,
    TlsTerminated,
)
from edgeward.policy import CompiledPolicy, compile_policy
from edgeward.policy.events import ListSink
from edgeward.proxy.tls import certificate as client_cert

from .helpers import ENDPOINT, conn, load, load_error, parse

CA = trustme.CA()
OTHER_CA = trustme.CA()
SERVER = CA.issue_cert("tls.example.com")
ALICE = CA.issue_cert("alice@example.com", common_name="alice")
MALLORY = OTHER_CA.issue_cert("alice@example.com", common_name="alice")


def pem(blob: Any) -> str:
    return str(blob.bytes().decode())


CERT = pem(SERVER.cert_chain_pems[0])
KEY = pem(SERVER.private_key_pem)
CA_PEM = pem(CA.cert_pem)


def policy(config: dict[str, Any], *rules: dict[str, Any]) -> str:
    """A policy (as JSON, which is YAML) whose first rule is terminate-tls."""
    first = {"actions": [{"type": "terminate-tls", "config": config}]}
    return json.dumps({"on_tcp_connect": [first, *rules]}, indent=1)


def info(version: str = "TLSv1.3", cert: ClientCert | None = None) -> TlsInfo:
    return TlsInfo(version, "TLS_AES_256_GCM_SHA384", "tls.example.com", None, cert)


def alice() -> ClientCert:
    return client_cert(ssl.PEM_cert_to_DER_cert(pem(ALICE.cert_chain_pems[0])))


def mallory() -> ClientCert:
    return client_cert(ssl.PEM_cert_to_DER_cert(pem(MALLORY.cert_chain_pems[0])))


def run(
    p: CompiledPolicy, answer: TlsTerminated, c: ConnectionInfo | None = None
) -> tuple[bool, list[TerminateTls]]:
    """One tls-endpoint connection; the driver answers each `TerminateTls`
    (and sets conn.tls on success, as the proxy does)."""
    c = c or conn()
    asked: list[TerminateTls] = []
    out = p.on_tls_connect(c, ENDPOINT)
    if not isinstance(out, Generator):
        return out, asked
    gen: Generator[Effect, EffectResult, bool] = out
    try:
        effect = gen.send(None)
        while True:
            assert isinstance(effect, TerminateTls)
            asked.append(effect)
            if answer.info is not None and not answer.by_listener:
                c.tls = answer.info
            effect = gen.send(answer)
    except StopIteration as stop:
        return stop.value, asked


# --- load time ---------------------------------------------------------------------------


def test_defaults_and_an_empty_config() -> None:
    h = load("on_tcp_connect: [{actions: [{type: terminate-tls}]}]")
    ok, asked = run(h.policy, TlsTerminated(info()))
    assert ok and asked == [TerminateTls()]
    assert asked[0].min_version == "1.2" and asked[0].max_version == "1.3"
    assert asked[0].client_verify == "require-and-verify" and not asked[0].client_cas


def test_versions_and_their_errors() -> None:
    h = load(policy({"min_version": 1.3, "max_version": "1.3"}))  # a YAML float is the same
    assert run(h.policy, TlsTerminated(info()))[1][0].min_version == "1.3"
    err = load_error(
        """
        on_tcp_connect:
          - actions:
              - type: terminate-tls
                config:
                  min_version: '1.3'
                  max_version: '1.2'
        """
    )
    assert "min_version 1.3 is above max_version 1.2" in str(err)
    assert err.errors[0].location.line == 6
    err = load_error(policy({"min_version": "1.1"}))
    assert "config.min_version: error: min_version must be one of 1.2, 1.3" in str(err)


def test_certificate_errors_point_at_the_field() -> None:
    err = load_error(policy({"server_certificate": CERT}))
    assert "must be given together" in str(err)
    err = load_error(
        policy({"server_certificate": "... certificate ...", "server_private_key": KEY})
    )
    assert "config.server_certificate: error: server_certificate is not a PEM" in str(err)
    other_key = pem(CA.issue_cert("x.example.com").private_key_pem)
    err = load_error(policy({"server_certificate": CERT, "server_private_key": other_key}))
    assert "config.server_private_key: error: server_private_key does not belong" in str(err)


def test_certificate_authority_errors() -> None:
    err = load_error(policy({"mutual_tls_certificate_authorities": ["ca_abc"]}))
    assert "mutual_tls_certificate_authorities[0]: error: 'ca_abc' names a certificate" in str(err)
    err = load_error(policy({"mutual_tls_certificate_authorities": [CA_PEM, "nope"]}))
    assert "mutual_tls_certificate_authorities[1]: error: not a PEM certificate" in str(err)
    err = load_error(policy({"mutual_tls_verification_strategy": "verify-maybe"}))
    assert "must be one of request, require-and-verify, require-any" in str(err)


def test_strategy_warnings() -> None:
    cas = {"mutual_tls_certificate_authorities": [CA_PEM]}
    h = load(policy({**cas, "mutual_tls_verification_strategy": "require-any"}))
    assert any("verifies the client certificate" in w.message for w in h.policy.warnings)
    h = load(policy({"mutual_tls_verification_strategy": "request"}))
    assert any("no client certificate is asked for" in w.message for w in h.policy.warnings)
    # One PEM string instead of a list (the agent CLI snippets): read as a list of one.
    h = load(policy({"mutual_tls_certificate_authorities": CA_PEM}))
    assert any("one string is read as a list" in w.message for w in h.policy.warnings)
    assert run(h.policy, TlsTerminated(info()))[1][0].client_cas == (CA_PEM,)


# --- tls endpoints: the effect, the results ----------------------------------------------


def test_the_effect_carries_the_settings_and_later_rules_see_the_handshake() -> None:
    config = {
        "min_version": "1.3",
        "server_certificate": CERT,
        "server_private_key": KEY,
        "mutual_tls_certificate_authorities": [CA_PEM],
        "mutual_tls_verification_strategy": "request",
    }
    log = {
        "expressions": [
            "conn.tls.version == '1.3'",
            "actions.ngrok.terminate_tls.client.subject.contains('CN=alice')",
        ],
        "actions": [
            {
                "type": "log",
                "config": {
                    "metadata": {
                        "who": "${actions.ngrok.terminate_tls.client.san.email_addresses[0]}"
                    }
                },
            }
        ],
    }
    # no certificate: its fields read empty (traffic-policy.md, decisions)
    deny = {"expressions": ["conn.tls.client.subject == ''"], "actions": [{"type": "deny"}]}
    h = load(policy(config, log, deny))
    ok, asked = run(h.policy, TlsTerminated(info(cert=alice())))
    assert ok
    (effect,) = asked
    assert effect.min_version == "1.3" and effect.max_version == "1.3"
    assert effect.certificate == CERT and effect.private_key == KEY
    assert effect.client_cas == (CA_PEM,) and effect.client_verify == "request"
    logged = [e for e in h.events if e.action == "log"]
    assert logged and logged[0].metadata == {"who": "alice@example.com"}
    # no client certificate (request allows it): the second rule denies
    ok, _ = run(h.policy, TlsTerminated(info()))
    assert not ok


def test_results_mirror_conn_tls_and_stay_with_the_connection() -> None:
    h = load(
        """
        on_tcp_connect:
          - actions: [{type: terminate-tls}]
          - expressions: ["actions.ngrok.terminate_tls.version != conn.tls.version"]
            actions: [{type: deny}]
        """
    )
    c = conn()
    ok, _ = run(h.policy, TlsTerminated(info("TLSv1.2")), c)
    assert ok
    results = c.policy_state[h.policy]["terminate_tls"]
    assert results["version"] == "1.2" and results["sni"] == "tls.example.com"
    assert results["cipher_suite"] == "TLS_AES_256_GCM_SHA384" and results["warnings"] == []


def test_a_failed_handshake_closes_the_connection() -> None:
    h = load("on_tcp_connect: [{actions: [{type: terminate-tls}]}]")
    ok, _ = run(h.policy, TlsTerminated(None, "no shared version"))
    assert not ok
    (event,) = h.events
    assert event.verdict == "deny" and "no shared version" in event.reason


def test_interpolated_pems_are_checked_per_connection() -> None:
    text = policy(
        {
            "server_certificate": "${secrets.get('tls', 'cert')}",
            "server_private_key": "${secrets.get('tls', 'key')}",
        }
    )
    good = compile_policy(parse(text), secrets={"tls": {"cert": CERT, "key": KEY}})
    ok, asked = run(good, TlsTerminated(info()))
    assert ok and asked[0].certificate == CERT and asked[0].private_key == KEY
    sink = ListSink()
    wrong = compile_policy(parse(text), secrets={"tls": {"cert": CERT, "key": "nope"}}, events=sink)
    ok, asked = run(wrong, TlsTerminated(info()))
    assert not ok and not asked  # fails closed before any handshake
    assert "not an unencrypted PEM private key" in sink.events[0].reason


# --- where the edge cannot terminate TLS (on_tcp_connect) --------------------------------


CAS = {"mutual_tls_certificate_authorities": [CA_PEM]}


@pytest.mark.parametrize(
    ("config", "tls", "allowed"),
    [
        ({}, None, False),  # plain TCP: never plaintext where TLS was asked for
        ({}, info("TLSv1.2"), True),  # https: the listener's TLS, no change
        ({"min_version": "1.3"}, info("TLSv1.2"), False),
        ({"min_version": "1.3"}, info("TLSv1.3"), True),
        ({"max_version": "1.2"}, info("TLSv1.3"), False),
        (CAS, info(cert=alice()), True),
        (CAS, info(), False),
        ({**CAS, "mutual_tls_verification_strategy": "request"}, info(), True),
        (CAS, info(cert=mallory()), False),  # the same name, another CA
        ({"server_certificate": CERT, "server_private_key": KEY}, info(), False),
    ],
)
def test_a_handshake_the_listener_made_is_checked(
    config: dict[str, Any], tls: TlsInfo | None, allowed: bool
) -> None:
    h = load(policy(config))
    c = conn()
    c.tls = tls
    assert h.policy.on_tcp_connect(c, ENDPOINT) is allowed

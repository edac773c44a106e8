"""The control plane's decisions without a server: IP restrictions
(allow and not deny, policies unioned, not enforced), rule CIDRs, sealed
secrets, and the URLs of endpoints made through the API."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgeward.config import load_config
from edgeward.control import Restrictions, RuleError, check_cidr, load
from edgeward.control.endpoints import UrlError, conflicts, parse_url
from edgeward.store import Store, StoreError
from edgeward.store import control_rows as rows
from edgeward.store.secret import seal, unseal

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _rule(policy: str, action: str, cidr: str) -> rows.IpPolicyRuleRow:
    return rows.IpPolicyRuleRow(f"ipr_{policy}{cidr}", policy, cidr, action, "", "", NOW)


def _restriction(kind: str, *policies: str, enforced: bool = True) -> rows.IpRestrictionRow:
    return rows.IpRestrictionRow(f"ipx_{kind}", kind, enforced, policies, "", "", NOW)


def test_a_restriction_unions_its_policies_and_deny_wins() -> None:
    built = Restrictions.build(
        [_restriction("api", "ipp_a", "ipp_b"), _restriction("agent", "ipp_b", enforced=False)],
        [
            _rule("ipp_a", "allow", "10.0.0.0/8"),
            _rule("ipp_b", "deny", "10.1.0.0/16"),
            _rule("ipp_c", "allow", "0.0.0.0/0"),  # in no restriction
        ],
    )
    assert built.allows("api", "10.2.3.4")
    assert not built.allows("api", "10.1.2.3")  # denied by the other policy
    assert not built.allows("api", "192.0.2.1")  # no allow rule matches
    assert not built.allows("api", "not an address")
    assert built.allows("endpoints", "192.0.2.1")  # no restriction: open
    assert built.verdict("agent", "192.0.2.1")[0] is False
    assert built.allows("agent", "192.0.2.1")  # not enforced: only warned about


def test_rule_cidrs_need_a_mask_and_no_host_bits() -> None:
    assert check_cidr("2001:db8::/32") == "2001:db8::/32"
    with pytest.raises(RuleError, match=re.escape("10.1.2.3/32")):
        check_cidr("10.1.2.3")
    with pytest.raises(RuleError, match=re.escape("did you mean '10.0.0.0/8'")):
        check_cidr("10.0.0.1/8")
    with pytest.raises(RuleError):
        check_cidr("10.0.0.0/33")


def test_sealed_secrets_open_only_with_their_secret_and_row(tmp_path: Path) -> None:
    key, other = b"k" * 32, b"o" * 32
    sealed = seal(key, "value", "vault_1/sec_1")
    assert "value" not in sealed and sealed != seal(key, "value", "vault_1/sec_1")  # nonce
    assert unseal(key, sealed, "vault_1/sec_1") == "value"
    for secret, context in ((other, "vault_1/sec_1"), (key, "vault_1/sec_2")):
        with pytest.raises(StoreError):
            unseal(secret, sealed, context)


def test_the_snapshot_reads_vaults_unsealed(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        vault = rows.VaultRow("vault_1", "hooks", "", "", NOW)
        draft = rows.SecretRow("sec_1", "vault_1", "token", "", "", "", NOW, NOW)
        sealed = seal(store.secret, "v", "vault_1/sec_1")
        with store.write() as conn:
            rows.add(conn, vault)
            rows.add(conn, dataclasses.replace(draft, sealed_value=sealed))
        assert load(store).vaults == {"hooks": {"token": "v"}}


def test_endpoint_urls_need_a_listener_and_a_free_host(tmp_path: Path) -> None:
    edge = tmp_path / "edge.yml"
    edge.write_text(
        "listeners:\n  - {name: web, address: 127.0.0.1:8080}\n"
        "endpoints:\n  - {name: site, hostname: site.example.com,"
        " upstream: 'http://127.0.0.1:9', listeners: [web]}\n"
    )
    config = load_config(edge)
    url = parse_url("http://app.example.com:8080", config)
    assert (
        url.listeners(config) == ("web",) and parse_url("http://*.x.com", config).host == "*.x.com"
    )
    for bad in ("https://app.example.com", "http://app.example.com:81", "tcp://a.b:1",
                "http://a.internal", "http://app.example.com/path", "http://-x-/"):  # fmt: skip
        with pytest.raises(UrlError):
            parse_url(bad, config)
    site = parse_url("http://site.example.com", config)
    assert conflicts(site, config, [], None) == "the edge config's endpoint 'site'"
    other = rows.CloudEndpointRow("ep_1", "http://app.example.com", "", "", "", NOW)
    assert conflicts(url, config, [other], None) == "endpoint ep_1 (http://app.example.com)"
    assert conflicts(url, config, [other], "ep_1") is None

"""The sans-IO pieces of the console/API sign-in, without sockets: the MFA
rule, the login rate limit, `api.sso` settings (and their errors through the
config loader), break-glass passwords and TOTP, the OIDC flow's first step,
sessions and invitations on a real store."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from edgeward.admin import session, users
from edgeward.admin.sso import breakglass, mfa
from edgeward.admin.sso.oidc import OidcLogin, OidcLoginError, transaction_key
from edgeward.admin.sso.ratelimit import LoginLimiter
from edgeward.admin.sso.saml import in_response_to
from edgeward.admin.sso.settings import MfaRule, OidcSettings, SettingsError, parse
from edgeward.hooks import Fetch, FetchResult
from edgeward.store import Store


def test_the_mfa_rule() -> None:
    rule = MfaRule()
    assert mfa.oidc_refusal(rule, {"amr": ["pwd", "otp", "mfa"]}) is None
    assert mfa.oidc_refusal(rule, {"amr": ["pwd"]}) == (
        "the identity provider reported amr [pwd], acr none"
    )
    assert mfa.oidc_refusal(rule, {}) is not None
    assert mfa.oidc_refusal(rule, {"amr": "mfa"}) is None  # a lone string, as some IdPs send
    strict = MfaRule(amr=("hwk",), acr=("phishing-resistant",))
    assert mfa.oidc_refusal(strict, {"amr": ["pwd", "otp", "mfa"]}) is not None
    assert mfa.oidc_refusal(strict, {"acr": "phishing-resistant"}) is None
    assert mfa.oidc_refusal(MfaRule(required=False), {}) is None
    assert mfa.saml_refusal(rule, ["https://refeds.org/profile/mfa"]) is None
    password = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    assert mfa.saml_refusal(rule, [password]) is not None
    assert mfa.saml_refusal(rule, []) is not None


def test_the_login_limiter_is_per_address_and_slides() -> None:
    limiter = LoginLimiter(3, 60)
    assert [limiter.allow("a", t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow("b", 3)  # another address has its own budget
    assert limiter.retry_after("a", 3) == 58
    assert limiter.allow("a", 60.5)  # the first attempt left the window
    small = LoginLimiter(1, 60, max_clients=2)
    for i, client in enumerate(["x", "y", "z"]):
        assert small.allow(client, float(i))
    assert len(small._log) <= 2  # bounded memory under a spray of addresses


def test_settings_parse_and_refuse(tmp_path: Path) -> None:
    (tmp_path / "idp.xml").write_text("<x/>")
    settings = parse(
        {
            "public_url": "https://admin.example.com/",
            "oidc": {"issuer_url": "https://idp.example.com", "client_id": "c"},
            "saml": {"idp_metadata": "idp.xml"},
            "mfa": {"acr": ["gold"]},
        },
        tmp_path,
    )
    assert settings.public_url == "https://admin.example.com" and settings.secure
    assert settings.saml is not None
    assert settings.saml.entity_id == "https://admin.example.com/saml/metadata"
    assert settings.mfa.required and settings.mfa.acr == ("gold",) and settings.mfa.amr == ("mfa",)
    bad = [
        ({"public_url": "http://admin.example.com", "oidc": {}}, ("public_url",)),
        ({"public_url": "https://a.example.com"}, ()),
        ({"public_url": "https://a.example.com", "saml": {"idp_metadata": "nope.xml"}},
         ("saml", "idp_metadata")),
        ({"public_url": "https://a.example.com", "oidc": {"issuer_url": "x", "client_id": "c",
          "scopes": ["email"]}}, ("oidc", "scopes")),
        ({"public_url": "https://a.example.com", "oidc": {"issuer_url": "x", "client_id": "c"},
          "mfa": {"required": "yes"}}, ("mfa", "required")),
        ({"public_url": "https://a.example.com", "oidc": {"issuer_url": "x", "client_id": "c"},
          "sesion": {}}, ("sesion",)),
    ]  # fmt: skip
    for data, where in bad:
        with pytest.raises(SettingsError) as caught:
            parse(data, tmp_path)
        assert caught.value.path == where, (data, caught.value.msg)


def test_the_config_loader_reports_sso_errors_at_their_location(tmp_path: Path) -> None:
    from edgeward.config import load_config
    from edgeward.errors import ConfigError

    config = tmp_path / "edge.yml"
    config.write_text(
        "listeners: [{name: web, address: 127.0.0.1:8080}]\n"
        "api:\n  address: 127.0.0.1:9443\n  sso:\n    public_url: https://a.example.com\n"
        "    oidc: {issuer_url: https://i.example.com, client_id: c, nope: 1}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert "api.sso.oidc.nope" in str(caught.value) and "unknown key" in str(caught.value)


def test_break_glass_passwords_and_codes(tmp_path: Path) -> None:
    stored = breakglass.hash_password("a-long-password!")
    assert stored.startswith("scrypt$32768$8$1$")
    assert breakglass.check_password("a-long-password!", stored)
    assert not breakglass.check_password("a-long-password?", stored)
    assert not breakglass.check_password("x", "not a hash")
    with Store.open(tmp_path / "state") as store:
        enrolled = breakglass.enroll(store, "ops", "a-long-password!")
        with store.read() as conn:
            raw = conn.exec_driver_sql("SELECT totp_secret FROM break_glass").scalar()
        assert enrolled.secret not in str(raw)  # sealed at rest
        totp = pyotp.TOTP(enrolled.secret)
        now = time.time()
        assert not breakglass.verify(store, "ops", "wrong-password!!", totp.at(now), now)
        assert not breakglass.verify(store, "nobody", "a-long-password!", totp.at(now), now)
        assert breakglass.verify(store, "ops", "a-long-password!", totp.at(now), now)
        assert not breakglass.verify(store, "ops", "a-long-password!", totp.at(now), now)  # once
        later = now + 60
        assert breakglass.verify(store, "ops", "a-long-password!", totp.at(later), later)
        assert not breakglass.verify(store, "ops", "a-long-password!", totp.at(now), later)
        with pytest.raises(Exception, match="at least 12"):
            breakglass.enroll(store, "ops", "short")


def test_the_oidc_flow_starts_with_pkce_state_and_nonce() -> None:
    login = OidcLogin(
        OidcSettings("https://idp.example.com", "edge", "s"), "https://a.example.com/cb"
    )
    flow = login.start(0.0)
    fetch = next(flow)
    assert isinstance(fetch, Fetch)
    assert fetch.url == "https://idp.example.com/.well-known/openid-configuration"
    discovery = (
        b'{"issuer": "https://idp.example.com", "authorization_endpoint": "https://idp.example.com/a",'
        b' "token_endpoint": "https://idp.example.com/t", "jwks_uri": "https://idp.example.com/k",'
        b' "code_challenge_methods_supported": ["S256"]}'
    )
    with pytest.raises(StopIteration) as done:
        flow.send(FetchResult(200, body=discovery))
    started = done.value.value
    query = {k: v[0] for k, v in parse_qs(urlsplit(started.location).query).items()}
    assert started.location.startswith("https://idp.example.com/a?")
    assert query["redirect_uri"] == "https://a.example.com/cb"
    assert query["code_challenge_method"] == "S256"
    challenge = hashlib.sha256(started.transaction["verifier"].encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(challenge).decode().rstrip("=")
    assert query["nonce"] == started.transaction["nonce"]
    assert started.key == transaction_key(query["state"])
    assert started.transaction["browser"] == hashlib.sha256(started.browser.encode()).hexdigest()
    # The callback needs the transaction and the browser that started it.
    for tx, browser in ((None, started.browser), (started.transaction, "another")):
        with pytest.raises(OidcLoginError):
            next(login.finish({"code": "c", "state": query["state"]}, tx, browser, 1.0))


def test_in_response_to_is_read_without_trusting_the_xml() -> None:
    xml = (
        b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
        b' InResponseTo="id-123" ID="r1"/>'
    )
    assert in_response_to(base64.b64encode(xml).decode()) == "id-123"
    assert in_response_to("not base64 !!") == ""
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    assert in_response_to(base64.b64encode(bomb).decode()) == ""  # defusedxml refuses entities


def test_sessions_and_invitations_on_a_store(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state") as store:
        invited = users.invite(store, email="Zed@Example.com", role="developer")
        assert invited.user.email == "zed@example.com"
        token = invited.token.text
        with store.read() as conn:
            stored = conn.exec_driver_sql("SELECT token_hash FROM invitations").scalar()
        assert token not in str(stored) and len(str(stored)) == 64
        with pytest.raises(users.LoginRefused, match="no account"):
            users.login(store, subject="oidc|i|1", email="zed@example.com", invitation=None)
        with pytest.raises(users.LoginRefused, match=r"is for zed@example\.com"):
            users.login(store, subject="oidc|i|1", email="eve@example.com", invitation=token)
        bound = users.login(store, subject="oidc|i|1", email="ZED@example.com", invitation=token)
        user = bound.user
        assert user.sso_subject == "oidc|i|1" and bound.accepted is not None
        assert bound.accepted.id == invited.invitation.id
        again = users.login(store, subject="oidc|i|1", email="", invitation=None)
        assert again.user.id == user.id and again.accepted is None
        with pytest.raises(users.LoginRefused, match="already used"):
            users.login(store, subject="oidc|i|2", email="zed@example.com", invitation=token)
        with pytest.raises(Exception, match="already a user"):
            users.invite(store, email="zed@example.com", role="admin")
        first = users.invite(store, email="amy@example.com", role="auditor")
        second = users.invite(store, email="amy@example.com", role="developer")
        assert second.user.id == first.user.id and second.user.role == "developer"
        with pytest.raises(users.LoginRefused, match="not valid"):  # the new link replaced it
            users.check_invitation(store, first.token.text)
        assert users.check_invitation(store, second.token.text).id == second.invitation.id
        made = session.create(
            store, principal_id=user.id, principal_type="user", role="developer",
            method="oidc", client_ip="127.0.0.1", max_duration=3600,
        )  # fmt: skip
        assert session.lookup(store, made.token, idle_duration=60) == made.row
        assert session.lookup(store, made.token + "x", idle_duration=60) is None
        assert session.csrf_ok(made.row, made.row.csrf)
        assert not session.csrf_ok(made.row, "") and not session.csrf_ok(made.row, None)
        with store.write() as conn:  # idle for two minutes
            conn.exec_driver_sql(
                "UPDATE web_sessions SET last_seen_at = ?",
                ((datetime.now(UTC) - timedelta(minutes=2)).replace(tzinfo=None),),
            )
        assert session.lookup(store, made.token, idle_duration=60) is None
        assert session.end(store, made.token) is None  # the idle session was deleted
    cookie = session.set_cookie("t", secure=True, max_age=60)
    assert cookie.startswith("__Host-edgeward-session=t; Path=/; HttpOnly; SameSite=Lax")
    assert cookie.endswith("; Secure") and "Domain" not in cookie
    assert "Secure" not in session.set_cookie("t", secure=False, max_age=60)


def test_a_bad_saml_metadata_file_is_a_one_line_startup_error(tmp_path: Path) -> None:
    from edgeward.admin.sso.saml import SamlConfigError, SamlSp
    from edgeward.admin.sso.settings import SamlSettings

    (tmp_path / "idp.xml").write_text("<not-metadata/>")
    settings = SamlSettings(tmp_path / "idp.xml", "https://a.example.com/saml/metadata")
    with pytest.raises(SamlConfigError, match=r"api\.sso\.saml"):
        SamlSp(settings, "https://a.example.com/login/saml/acs")
    missing = SamlSettings(tmp_path / "idp.xml", "x", xmlsec_binary=str(tmp_path / "nope"))
    with pytest.raises(SamlConfigError, match="apt-get install xmlsec1"):
        SamlSp(missing, "https://a.example.com/login/saml/acs")

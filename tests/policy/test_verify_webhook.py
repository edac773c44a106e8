from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx
import pytest
import trustme
from tests.policy.e2e import BACKENDS, Handler, Reply, Route, Server, events, running_edge, serve
from tests.proxy.proxy_support import Edge
from tests.webhooks import sns_support
from tests.webhooks.signing import sign

from edgeward.hooks import ReadBody
from edgeward.webhooks import sns

from .helpers import NOW, load, load_error, one, request

GITHUB = """
on_http_request:
  - actions:
      - type: verify-webhook
        config:
          provider: github
          secret: "It's a Secret to Everybody"
"""
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_valid_signature_is_forwarded_with_the_exact_body() -> None:
    h = load(GITHUB)
    r = request(
        h,
        "/hook",
        method="POST",
        body=b"Hello, World!",
        headers=[("X-Hub-Signature-256", GITHUB_SIGNATURE)],
    )
    assert r.forwarded is not None and r.forwarded.body == b"Hello, World!"
    assert r.effects == [ReadBody(1024 * 1024)]
    assert h.events == []


def test_bad_signature_is_403_and_logged_without_the_secret() -> None:
    h = load(GITHUB)
    r = request(
        h,
        "/hook",
        method="POST",
        body=b"Hello, World?",
        headers=[("X-Hub-Signature-256", GITHUB_SIGNATURE)],
    )
    assert r.status == 403 and r.forwarded is None
    (event,) = h.events
    assert event.action == "verify-webhook" and event.error_code == "ERR_EDGEWARD_3204"
    assert event.reason.startswith("github: ")
    assert "Secret" not in event.to_json()
    missing = request(h, "/hook", method="POST", body=b"x")
    assert missing.status == 403


def test_body_is_read_only_when_the_action_runs() -> None:
    h = load(
        """
        on_http_request:
          - expressions: ["req.url.path == '/hook'"]
            actions:
              - type: verify-webhook
                config: {provider: github, secret: s3cret}
        """
    )
    r = request(h, "/other", method="POST", body=b"data")
    assert r.effects == [] and r.forwarded is not None and r.forwarded.body is None


def test_body_over_the_limit_is_413() -> None:
    h = load(GITHUB, body_limit=4)
    r = request(
        h,
        "/hook",
        method="POST",
        body=b"Hello, World!",
        headers=[("X-Hub-Signature-256", GITHUB_SIGNATURE)],
    )
    assert r.status == 413 and r.effects == [ReadBody(4)]


def test_enforce_false_exposes_the_result() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: verify-webhook
                config: {provider: pagerduty, secret: "secret!", enforce: false}
          - expressions: ["!actions.ngrok.verify_webhook.verified"]
            actions:
              - type: custom-response
                config: {status_code: 401, body: "${actions.ngrok.verify_webhook.error.message}"}
        """
    )
    body = b'{"event":{"event_type":"incident.triggered"}}'
    good = "v1=" + hmac.new(b"secret!", body, hashlib.sha256).hexdigest()
    ok = request(
        h, "/pd", method="POST", body=body, headers=[("X-PagerDuty-Signature", f"v1=00, {good}")]
    )
    assert ok.forwarded is not None and ok.forwarded.body == body
    bad = request(h, "/pd", method="POST", body=body, headers=[("X-PagerDuty-Signature", "v1=00")])
    assert bad.status == 401 and bad.body


def test_timestamp_tolerance() -> None:
    policy = """
    on_http_request:
      - actions:
          - type: verify-webhook
            config: {provider: slack, secret: slack-secret, tolerance: 60s}
    """
    h = load(policy)
    body = b"token=x"

    def signed(ts: int) -> list[tuple[str, str]]:
        base = f"v0:{ts}:".encode() + body
        sig = "v0=" + hmac.new(b"slack-secret", base, hashlib.sha256).hexdigest()
        return [("X-Slack-Signature", sig), ("X-Slack-Request-Timestamp", str(ts))]

    assert request(h, method="POST", body=body, headers=signed(int(NOW) - 30)).forwarded is not None
    assert request(h, method="POST", body=body, headers=signed(int(NOW) - 120)).status == 403


def test_load_errors() -> None:
    assert "unknown webhook provider 'nope'" in str(
        load_error(one("verify-webhook", "provider: nope, secret: x"))
    )
    assert "needs a secret" in str(load_error(one("verify-webhook", "provider: github")))
    assert "cannot run in on_tcp_connect" in str(
        load_error(one("verify-webhook", "provider: github, secret: x", phase="on_tcp_connect"))
    )


def test_legacy_type_name_loads_with_a_warning() -> None:
    h = load(one("webhook-validation", "provider: github, secret: x"))
    (warning,) = h.policy.warnings
    assert "verify-webhook" in warning.message


def test_worldline_endpoint_verification_is_answered() -> None:
    h = load(one("verify-webhook", "provider: worldline, secret: s3cret"))
    r = request(h, "/hook", headers=[("X-GCS-Webhooks-Endpoint-Verification", "abc123")])
    assert (r.status, r.body, r.effects) == (200, b"abc123", [])


def _zoom(secret: bytes, body: bytes, ts: int) -> list[tuple[str, str]]:
    sig = hmac.new(secret, f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return [("x-zm-signature", f"v0={sig}"), ("x-zm-request-timestamp", str(ts))]


def test_zoom_url_validation_only_when_signed() -> None:
    h = load(one("verify-webhook", "provider: zoom, secret: zoom-token"))
    body = b'{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UdWMr"}}'
    r = request(h, "/zoom", method="POST", body=body, headers=_zoom(b"zoom-token", body, int(NOW)))
    expected = hmac.new(b"zoom-token", b"qgg8vlvZRS6UdWMr", hashlib.sha256).hexdigest()
    assert r.status == 200 and r.forwarded is None
    assert json.loads(r.body) == {"plainToken": "qgg8vlvZRS6UdWMr", "encryptedToken": expected}
    # Unsigned, the challenge is refused: the edge never signs a chosen text.
    forged = request(h, "/zoom", method="POST", body=body, headers=_zoom(b"wrong", body, int(NOW)))
    assert forged.status == 403


def test_xero_failure_is_401() -> None:
    h = load(one("verify-webhook", "provider: xero, secret: xero-key"))
    assert request(h, "/xero", method="POST", body=b"{}").status == 401


# --- end to end: `edgeward serve` on both backends ---------------------------------
# Each provider family behind its own path of one policy; deliveries are signed
# here from the providers' documentation (tests/webhooks/signing.py), with the
# current time where a timestamp is signed (the edge uses its real clock).

E2E_SECRET = "e2e-secret-0123456789"
E2E_PROVIDERS = {
    "/jira": "jira",  # HMAC of the body, hex with a prefix
    "/mongodb": "mongodb",  # HMAC-SHA1, base64
    "/sigsci": "signalsciences",  # an alias of the integration pages
    "/nexus": "sonatype_nexus",  # an alias
    "/orbit": "orbit",  # a shared token
    "/vmware": "vmware_workspace",  # HTTP Basic credentials, an alias
    "/docusign": "docusign",  # one header per key
    "/airship": "airship",  # timestamp header + body
    "/hostedhooks": "hostedhooks",  # t=...,s=... in one header
    "/orb": "orb",  # ISO 8601 timestamp
    "/contentful": "contentful",  # canonical request
    "/graphcms": "graphcms",  # a JSON document around the body
    "/plivo": "plivo",  # URL + form parameters + nonce
    "/mandrill": "mailchimp",  # URL + form parameters
    "/twitter": "twitter",  # CRC challenge
    "/worldline": "worldline",  # GET verification challenge
    "/xero": "xero",  # intent to receive
    "/zoom": "zoom",  # endpoint.url_validation
}


def _e2e_policy() -> str:
    rules = []
    for path, provider in E2E_PROVIDERS.items():
        secret = f"edge::{E2E_SECRET}" if provider == "vmware_workspace" else E2E_SECRET
        rules.append(
            f"  - expressions: [\"req.url.path == '{path}'\"]\n"
            f"    actions:\n"
            f"      - type: verify-webhook\n"
            f"        config: {{provider: {provider}, secret: '{secret}'}}\n"
        )
    return "on_http_request:\n" + "".join(rules)


def _echo_body(handler: Handler) -> Reply:
    return 200, [("content-type", "application/octet-stream")], b"upstream got: " + handler.body


@pytest.fixture(scope="module", params=BACKENDS)
def hook_edge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    routes = {path: _echo_body for path in E2E_PROVIDERS}
    with serve(routes) as upstream:
        directory = tmp_path_factory.mktemp(f"hooks-{request.param}")
        with running_edge(directory, _e2e_policy(), upstream.url, request.param) as edge:
            yield edge


def _post(edge: Edge, path: str, body: bytes, headers: list[tuple[str, str]]) -> httpx.Response:
    return httpx.post(edge.url(path), content=body, headers=headers, timeout=10)


def _hmac(alg: str, key: str, *parts: bytes | str) -> bytes:
    msg = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
    return hmac.new(key.encode(), msg, alg).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("path", "provider"),
    [("/jira", "jira"), ("/mongodb", "mongodb"), ("/sigsci", "signal_sciences"),
     ("/nexus", "sonatype"), ("/orbit", "orbit"), ("/vmware", "vmware"),
     ("/docusign", "docusign")],
)  # fmt: skip
def test_e2e_untimed_providers(hook_edge: Edge, path: str, provider: str) -> None:
    body = b'{"event": "e2e"}'
    delivery = sign(provider, body, secret=E2E_SECRET)
    ok = _post(hook_edge, path, delivery.body, delivery.headers)
    assert (ok.status_code, ok.content) == (200, b"upstream got: " + delivery.body)
    forged = _post(hook_edge, path, delivery.body + b" ", delivery.headers)
    if delivery.signs_body:
        assert forged.status_code == 403
        assert forged.headers["edgeward-error"] == "ERR_EDGEWARD_3204"
    assert _post(hook_edge, path, body, []).status_code == 403


def _timed(path: str, body: bytes, edge: Edge) -> list[tuple[str, str]]:
    """Headers as each timestamped provider documents them, signed now."""
    now = int(time.time())
    if path == "/airship":
        sig = _hmac("sha256", E2E_SECRET, f"{now}:", body).hex()
        return [("X-UA-Timestamp", str(now)), ("X-UA-Signature", sig)]
    if path == "/hostedhooks":
        sig = _hmac("sha256", E2E_SECRET, f"{now}.", body).hex()
        return [("HostedHooks-Signature", f"t={now},s={sig}")]
    if path == "/orb":
        ts = datetime.fromtimestamp(now, UTC).replace(tzinfo=None).isoformat()
        sig = _hmac("sha256", E2E_SECRET, f"v1:{ts}:", body).hex()
        return [("X-Orb-Timestamp", ts), ("X-Orb-Signature", f"v1={sig}")]
    if path == "/graphcms":
        ms = now * 1000
        document = json.dumps(
            {"Body": body.decode(), "EnvironmentName": "master", "TimeStamp": ms},
            separators=(",", ":"),
        )
        sig = _b64(_hmac("sha256", E2E_SECRET, document))
        return [("gcms-signature", f"sign={sig}, env=master, t={ms}")]
    assert path == "/contentful"
    ms = str(now * 1000)
    names = "x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic"
    signed = f"x-contentful-signed-headers:{names};x-contentful-timestamp:{ms};x-contentful-topic:T"
    sig = _hmac("sha256", E2E_SECRET, f"POST\n{path}\n{signed}\n", body).hex()
    return [("x-contentful-signature", sig), ("x-contentful-timestamp", ms),
            ("x-contentful-signed-headers", names), ("x-contentful-topic", "T")]  # fmt: skip


@pytest.mark.parametrize("path", ["/airship", "/hostedhooks", "/orb", "/graphcms", "/contentful"])
def test_e2e_timestamped_providers(hook_edge: Edge, path: str) -> None:
    body = b'{"event": "e2e", "text": "line\\nbreak \\u00e9"}'
    headers = _timed(path, body, hook_edge)
    ok = _post(hook_edge, path, body, headers)
    assert (ok.status_code, ok.content) == (200, b"upstream got: " + body)
    assert _post(hook_edge, path, body + b"x", headers).status_code == 403


def test_e2e_url_signing_providers(hook_edge: Edge) -> None:
    form = "From=%2B14155551234&Text=hello+world&To=%2B14155550000"
    params = sorted(parse_qsl(form))
    nonce = "12345678901234567890"
    url = hook_edge.url("/plivo")
    plivo_signed = url + "?" + "".join(k + v for k, v in params) + "." + nonce
    plivo = [("X-Plivo-Signature-V3", _b64(_hmac("sha256", E2E_SECRET, plivo_signed))),
             ("X-Plivo-Signature-V3-Nonce", nonce),
             ("Content-Type", "application/x-www-form-urlencoded")]  # fmt: skip
    assert _post(hook_edge, "/plivo", form.encode(), plivo).status_code == 200
    url = hook_edge.url("/mandrill")
    mandrill_signed = url + "".join(k + v for k, v in params)
    mandrill = [("X-Mandrill-Signature", _b64(_hmac("sha1", E2E_SECRET, mandrill_signed))),
                ("Content-Type", "application/x-www-form-urlencoded")]  # fmt: skip
    assert _post(hook_edge, "/mandrill", form.encode(), mandrill).status_code == 200
    tampered = form.replace("hello", "HELLO").encode()
    assert _post(hook_edge, "/mandrill", tampered, mandrill).status_code == 403
    assert _post(hook_edge, "/plivo", tampered, plivo).status_code == 403


def test_e2e_twitter_crc_is_answered_on_get_only(hook_edge: Edge) -> None:
    token = "challenge-" + "x" * 20
    r = httpx.get(hook_edge.url(f"/twitter?crc_token={token}"), timeout=10)
    expected = "sha256=" + _b64(_hmac("sha256", E2E_SECRET, token))
    assert r.status_code == 200 and r.json() == {"response_token": expected}
    assert r.headers["content-type"] == "application/json"
    # Not on POST (no signing of a chosen token outside the protocol's GET),
    # and a GET without a token is an unsigned request: refused.
    post = httpx.post(hook_edge.url(f"/twitter?crc_token={token}"), content=b"{}", timeout=10)
    assert post.status_code == 403
    assert httpx.get(hook_edge.url("/twitter"), timeout=10).status_code == 403


def test_e2e_worldline_verification_echo(hook_edge: Edge) -> None:
    r = httpx.get(
        hook_edge.url("/worldline"),
        headers={"X-GCS-Webhooks-Endpoint-Verification": "check-123"},
        timeout=10,
    )
    assert (r.status_code, r.text) == (200, "check-123")


def test_e2e_xero_intent_to_receive(hook_edge: Edge) -> None:
    body = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"ABCDEF"}'
    good = [("x-xero-signature", _b64(_hmac("sha256", E2E_SECRET, body)))]
    ok = _post(hook_edge, "/xero", body, good)
    assert (ok.status_code, ok.content) == (200, b"")  # answered by the edge itself
    bad = [("x-xero-signature", _b64(_hmac("sha256", "not the key", body)))]
    assert _post(hook_edge, "/xero", body, bad).status_code == 401
    event = b'{"events":[{"resourceId":"1"}],"firstEventSequence":1,"lastEventSequence":1}'
    forwarded = _post(hook_edge, "/xero", event, [("x-xero-signature",
                      _b64(_hmac("sha256", E2E_SECRET, event)))])  # fmt: skip
    assert forwarded.content == b"upstream got: " + event


def test_e2e_zoom_url_validation(hook_edge: Edge) -> None:
    body = b'{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UdWMr"}}'
    ts = str(int(time.time()))
    sig = _hmac("sha256", E2E_SECRET, f"v0:{ts}:", body).hex()
    headers = [("x-zm-signature", f"v0={sig}"), ("x-zm-request-timestamp", ts)]
    r = _post(hook_edge, "/zoom", body, headers)
    encrypted = _hmac("sha256", E2E_SECRET, "qgg8vlvZRS6UdWMr").hex()
    assert r.json() == {"plainToken": "qgg8vlvZRS6UdWMr", "encryptedToken": encrypted}
    assert _post(hook_edge, "/zoom", body, [headers[1]]).status_code == 403


# --- sns end to end: certificates from a local HTTPS server -----------------------
# It stands in for sns.<region>.amazonaws.com through the test-only variable
# EDGEWARD_TEST_ONLY_SNS_HOSTS; its TLS certificate comes from a local CA
# that the edge trusts through SSL_CERT_FILE.


@contextlib.contextmanager
def _https(routes: dict[str, Route], ca: trustme.CA) -> Iterator[Server]:
    record = Server(0)
    handler = type("RouteHandler", (Handler,), {"routes": routes, "record": record})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    record.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(scope="module", params=BACKENDS)
def sns_edge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Edge, Server, Server]]:
    directory = tmp_path_factory.mktemp(f"sns-{request.param}")
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    pem = sns_support.certificate_pem()
    aws_routes: dict[str, Route] = {
        "/cert.pem": lambda h: (200, [("content-type", "application/x-pem-file")], pem),
        "/confirm": lambda h: (200, [("content-type", "text/xml")], b"<ConfirmResponse/>"),
    }
    policy = one("verify-webhook", f"provider: sns, secret: '{sns_support.ACCOUNT}'")
    with serve({"/sns": _echo_body}) as upstream, _https(aws_routes, ca) as aws:
        saved = {k: os.environ.get(k) for k in (sns.TEST_HOSTS_ENV, "SSL_CERT_FILE")}
        os.environ[sns.TEST_HOSTS_ENV] = f"127.0.0.1:{aws.port}"
        os.environ["SSL_CERT_FILE"] = str(ca_file)
        try:
            edge_cm = running_edge(directory, policy, upstream.url, request.param)
            edge = edge_cm.__enter__()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        try:
            yield edge, aws, upstream
        finally:
            edge_cm.__exit__(None, None, None)


def _sns_post(edge: Edge, doc: dict[str, object]) -> httpx.Response:
    headers = {"x-amz-sns-message-type": str(doc["Type"]), "content-type": "text/plain"}
    return httpx.post(edge.url("/sns"), content=sns_support.body(doc), headers=headers, timeout=10)


def test_e2e_sns_notifications(sns_edge: tuple[Edge, Server, Server]) -> None:
    edge, aws, _ = sns_edge
    cert_url = f"https://127.0.0.1:{aws.port}/cert.pem"
    for version in ("1", "2"):
        doc = sns_support.message("Notification", cert_url, version=version)
        r = _sns_post(edge, doc)
        assert (r.status_code, r.content) == (200, b"upstream got: " + sns_support.body(doc))
    assert aws.hits["/cert.pem"] == 1  # fetched once, then cached
    forged = {**sns_support.message("Notification", cert_url), "Message": "forged"}
    assert _sns_post(edge, forged).status_code == 403
    stranger = sns_support.message(
        "Notification", cert_url, topic="arn:aws:sns:us-east-2:210987654321:Theirs"
    )
    assert _sns_post(edge, stranger).status_code == 403
    elsewhere = sns_support.message("Notification", "https://evil.example/cert.pem")
    assert _sns_post(edge, elsewhere).status_code == 403
    reasons = [str(e.get("reason")) for e in events(edge) if e.get("action") == "verify-webhook"]
    assert any("topic of another account" in r for r in reasons)
    assert any("sns.<region>.amazonaws.com" in r for r in reasons)


def test_e2e_sns_subscription_is_confirmed(sns_edge: tuple[Edge, Server, Server]) -> None:
    edge, aws, upstream = sns_edge
    cert_url = f"https://127.0.0.1:{aws.port}/cert.pem"
    confirm = f"https://127.0.0.1:{aws.port}/confirm?Action=ConfirmSubscription&Token=t"
    doc = sns_support.message("SubscriptionConfirmation", cert_url, subscribe_url=confirm)
    before = aws.hits.get("/confirm", 0)
    r = _sns_post(edge, doc)
    assert r.status_code == 200  # forwarded too: the application sees it
    assert aws.hits["/confirm"] == before + 1
    # A SubscribeURL off the SNS hosts is never visited.
    off = sns_support.message(
        "SubscriptionConfirmation", cert_url, subscribe_url=f"{upstream.url}/sns"
    )
    hits = upstream.hits.get("/sns", 0)
    assert _sns_post(edge, off).status_code == 200
    assert upstream.hits["/sns"] == hits + 1  # only the forwarded request itself


def test_sns_secret_is_the_topic_owner() -> None:
    assert "12-digit" in str(load_error(one("verify-webhook", "provider: sns, secret: abc")))
    h = load(one("verify-webhook", "provider: sns"))
    assert any("any AWS account" in w.message for w in h.policy.warnings)
    assert not load(one("verify-webhook", "provider: sns, secret: '123456789012'")).policy.warnings


def test_aliases_of_the_integration_pages_load() -> None:
    for alias, provider in (("vmware_workspace", "vmware"), ("sonatype_nexus", "sonatype"),
                            ("signalsciences", "signal_sciences")):  # fmt: skip
        secret = "u::p" if provider == "vmware" else "s3cret-value"
        h = load(one("verify-webhook", f"provider: {alias}, secret: '{secret}'"))
        r = request(h, "/hook", method="POST", body=b"{}")
        assert r.status == 403 and provider in h.events[-1].reason


@pytest.mark.parametrize(
    "secret",
    ["'{your webhook secret}'", "your_github_webhook_secret_here", "'<secret>'", "'...'",
     "$SECRET", "'{username}::{password}'"],
)  # fmt: skip
def test_placeholder_secrets_load_with_a_warning(secret: str) -> None:
    provider = "vmware" if "::" in secret else "github"
    h = load(one("verify-webhook", f"provider: {provider}, secret: {secret}"))
    (warning,) = h.policy.warnings
    assert "placeholder" in warning.message
    assert secret.strip("'") not in warning.message  # never quoted back


def test_format_hints_and_what_can_never_verify() -> None:
    (warning,) = load(one("verify-webhook", "provider: stripe, secret: sk_live_x")).policy.warnings
    assert "whsec_" in warning.message
    assert not load(one("verify-webhook", "provider: stripe, secret: whsec_abc")).policy.warnings
    # Values no request can ever verify against stay errors.
    assert "unusable secret" in str(
        load_error(one("verify-webhook", "provider: sendgrid, secret: '{your key}'"))
    )
    assert "username::password" in str(
        load_error(one("verify-webhook", "provider: vmware, secret: nopassword"))
    )


def test_twitter_crc_sans_io() -> None:
    h = load(one("verify-webhook", "provider: twitter, secret: consumer-secret"))
    r = request(h, "/tw?crc_token=abc%20def", method="GET")
    mac = hmac.new(b"consumer-secret", b"abc def", hashlib.sha256).digest()
    assert r.status == 200 and r.effects == []
    assert json.loads(r.body) == {"response_token": "sha256=" + base64.b64encode(mac).decode()}
    twice = request(h, "/tw?crc_token=a&crc_token=b", method="GET")
    assert twice.status == 403

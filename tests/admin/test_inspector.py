"""The traffic inspector end to end: `edgeward serve` (a real process) with
the admin API, a real upstream that records what reaches it, httpx as the
client; inspection turned on and off through the API, captures read,
replayed and cleared; redaction checked in the API's answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from tests.admin.admin_support import ApiEdge
from tests.agents.agents_support import Pki, Token, agent_edge, ingress_block
from tests.agents.test_agent_http import named_server
from tests.proxy.proxy_support import free_port, wait_port

VAULT_SECRET = "vault-value-5f3a9c"
EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: hooks
    hostname: hooks.example.com
    upstream: http://127.0.0.1:{upstream}
    listeners: [web]
    traffic_policy:
      on_http_request:
        - name: no admin
          expressions: ["req.url.path.startsWith('/admin')"]
          actions: [{{type: deny, config: {{status_code: 403}}}}]
        - name: tag
          actions:
            - type: add-headers
              config: {{headers: {{x-tagged: "yes"}}}}
  - name: front
    hostname: front.example.com
    upstream: http://127.0.0.1:9
    listeners: [web]
    traffic_policy:
      on_http_request:
        - actions:
            - type: forward-internal
              config: {{url: "https://inner.internal"}}
  - name: inner
    hostname: inner.internal
    upstream: http://127.0.0.1:{upstream}
    traffic_policy:
      on_http_request:
        - name: mark inner
          actions:
            - type: add-headers
              config: {{headers: {{x-inner: "1"}}}}
api:
  address: 127.0.0.1:{port_api}
  audit_log: {dir}/audit.log
"""


@dataclass
class Recorder:
    """A real upstream: answers every request with a JSON echo and keeps
    what reached it."""

    port: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Recorder]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
            else:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
            seen = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("latin-1"),
            }
            recorder.seen.append(seen)
            echo = seen["body"] if self.headers.get("x-echo") else ""
            answer = json.dumps({"echo": echo, "n": len(recorder.seen)}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("set-cookie", "upstream-session=zzz-top; HttpOnly")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki, upstream: Recorder
) -> Iterator[ApiEdge]:
    body = EDGE + ingress_block(pki, domains=["*.apps.example.com"])
    port_api = free_port()
    directory = tmp_path_factory.mktemp("inspector-edge")
    with agent_edge(directory, pki, body, port_api=port_api, upstream=upstream.port) as running:
        running.edge.ports["api"] = port_api
        wait_port(port_api, proc=running.edge.proc)
        yield ApiEdge(running)


@pytest.fixture(scope="module")
def admin(edge: ApiEdge) -> Iterator[httpx.Client]:
    with edge.client(edge.key("admin")) as client:
        yield client


def web(edge: ApiEdge, host: str = "hooks.example.com") -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{edge.agents.web_port}", headers={"host": host}, timeout=30
    )


def inspect(api: httpx.Client, endpoint: str, **settings: Any) -> dict[str, Any]:
    answer = api.patch(f"/endpoints/{endpoint}", json={"inspect": settings})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def captures(api: httpx.Client, endpoint: str) -> list[dict[str, Any]]:
    answer = api.get(f"/endpoints/{endpoint}/captures")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["captures"])


def wait_captured(
    edge: ApiEdge, api: httpx.Client, endpoint: str, path: str, count: int = 1
) -> list[dict[str, Any]]:
    """Send GET `path` until `count` captures of it are listed: inspection
    takes effect once the edge's watcher applied the change (~250 ms)."""
    deadline = time.monotonic() + 20
    with web(edge) as client:
        while time.monotonic() < deadline:
            client.get(path)
            found = [c for c in captures(api, endpoint) if c["request"]["uri"] == path]
            if len(found) >= count:
                return found
            time.sleep(0.1)
    raise AssertionError(f"no capture of {path}")


def first_captures(
    edge: ApiEdge,
    api: httpx.Client,
    endpoint: str,
    path: str,
    *,
    host: str,
    served: Callable[[httpx.Response], bool],
) -> list[dict[str, Any]]:
    """GET `path` as `host` until `endpoint` has captures; `served` checks
    each answer (asserting what it must be) and says whether the edge
    served it yet (a new endpoint is applied a moment after the API's 201)."""
    deadline = time.monotonic() + 20
    with web(edge, host) as client:
        while time.monotonic() < deadline:
            if served(client.get(path)):
                found = captures(api, endpoint)
                if found:
                    return found
            time.sleep(0.1)
    raise AssertionError(f"no capture of {path} on {endpoint}")


def test_captures_appear_only_when_on_with_the_trace_that_decided(
    edge: ApiEdge, admin: httpx.Client, upstream: Recorder
) -> None:
    shown = admin.get("/endpoints/cfg_hooks").json()
    assert shown["inspect"] == {"enabled": False, "max_requests": 50, "max_body_bytes": 65536}
    with web(edge) as client:
        assert client.get("/before").status_code == 200
    assert captures(admin, "cfg_hooks") == []
    assert inspect(admin, "cfg_hooks", enabled=True)["inspect"]["enabled"] is True
    wait_captured(edge, admin, "cfg_hooks", "/warm")
    with web(edge) as client:
        denied = client.get("/admin/panel", headers={"x-note": "hello"})
        passed = client.get("/ok?page=2")
    assert denied.status_code == 403 and passed.status_code == 200
    listed = captures(admin, "cfg_hooks")
    assert all(c["request"]["uri"] != "/before" for c in listed)
    deny = next(c for c in listed if c["request"]["uri"] == "/admin/panel")
    assert deny["response"]["status_code"] == 403 and deny["outcome"] == "completed"
    assert deny["decision"]["rule"] == "no admin" and deny["decision"]["action"] == "deny"
    assert deny["decision"]["outcome"].startswith("answered 403")
    assert ["x-note", "hello"] in deny["request"]["headers"]
    ok = next(c for c in listed if c["request"]["uri"] == "/ok?page=2")
    assert ok["response"]["status_code"] == 200 and ok["decision"] is None
    steps = [(s["rule"], s["action"], s["outcome"]) for s in ok["trace"]]
    assert ("no admin", None, "not matched") in steps and ("tag", "add-headers", "ran") in steps
    assert upstream.seen[-1]["headers"]["x-tagged"] == "yes"  # forwarded as without inspection
    one = admin.get(ok["uri"])
    assert one.status_code == 200 and one.json()["id"] == ok["id"]
    # Off: the captures go, and no new one is made.
    inspect(admin, "cfg_hooks", enabled=False)
    deadline = time.monotonic() + 20
    while captures(admin, "cfg_hooks") and time.monotonic() < deadline:
        time.sleep(0.1)
    with web(edge) as client:
        client.get("/after")
    assert captures(admin, "cfg_hooks") == []


def test_bodies_are_capped_and_streamed_bodies_reach_the_upstream_whole(
    edge: ApiEdge, admin: httpx.Client, upstream: Recorder
) -> None:
    inspect(admin, "cfg_hooks", enabled=True, max_body_bytes=1024)
    wait_captured(edge, admin, "cfg_hooks", "/warm-cap")
    big = b"0123456789abcdef" * 4096  # 64 KiB

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    with web(edge) as client:
        # chunked: streamed through the edge
        answer = client.post("/upload", content=chunks(), headers={"x-echo": "1"})
    assert answer.status_code == 200
    assert upstream.seen[-1]["body"].encode() == big
    capture = next(c for c in captures(admin, "cfg_hooks") if c["request"]["uri"] == "/upload")
    request = capture["request"]
    assert request["body"] == big[:1024].decode() and request["body_size"] == len(big)
    assert request["body_truncated"] is True
    response = capture["response"]
    assert response["body_truncated"] is True and len(response["body"]) == 1024
    assert response["body_size"] == len(answer.content) > 1024
    # A truncated request cannot be replayed faithfully: refused, said why.
    refused = admin.post(capture["uri"] + "/replay")
    assert refused.status_code == 409 and "cut at 1024 bytes" in refused.json()["msg"]
    inspect(admin, "cfg_hooks", max_body_bytes=65536)


def test_credentials_and_vault_secrets_never_appear(
    edge: ApiEdge, admin: httpx.Client, upstream: Recorder
) -> None:
    vault = admin.post("/vaults", json={"name": "inspector"}).json()
    made = admin.post(
        "/secrets", json={"vault_id": vault["id"], "name": "signing", "value": VAULT_SECRET}
    )
    assert made.status_code == 201, made.text
    inspect(admin, "cfg_hooks", enabled=True)
    # The edge learns a new secret from its store watcher (about 250 ms), and
    # then takes it out of what it kept before too. Probe until it knows.
    deadline = time.monotonic() + 20
    with web(edge) as client:
        while time.monotonic() < deadline:
            path = f"/warm-secrets-{time.monotonic_ns()}"
            client.post(path, content=VAULT_SECRET)
            probe = [c for c in captures(admin, "cfg_hooks") if c["request"]["uri"] == path]
            if probe and VAULT_SECRET not in json.dumps(probe[0]):
                break
            time.sleep(0.1)
    body = json.dumps({"event": "paid", "note": f"signed with {VAULT_SECRET}", "password": "pw1"})
    with web(edge) as client:
        answer = client.post(
            "/hook?token=tok-in-query&id=7",
            content=body,
            headers={
                "authorization": "Bearer bearer-token-0xabc",
                "cookie": "session=cookie-value-77",
                "x-hub-signature-256": "sha256=deadbeefcafe",
                "content-type": "application/json",
            },
        )
    assert answer.status_code == 200
    # The upstream got everything, untouched.
    seen = upstream.seen[-1]
    assert seen["headers"]["authorization"] == "Bearer bearer-token-0xabc"
    assert VAULT_SECRET in seen["body"]
    # (an exchange is kept once it ends, a moment after the client has its answer)
    deadline = time.monotonic() + 20
    while True:
        listed = admin.get("/endpoints/cfg_hooks/captures").text
        hooks = [
            c for c in json.loads(listed)["captures"] if c["request"]["uri"].startswith("/hook")
        ]
        if hooks or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    capture = hooks[0]
    shown = admin.get(capture["uri"]).text
    for text in (listed, shown):
        for secret in (
            "bearer-token-0xabc",
            "cookie-value-77",
            "deadbeefcafe",
            "tok-in-query",
            VAULT_SECRET,
            "pw1",
            "zzz-top",
        ):
            assert secret not in text, secret
    headers = dict(map(tuple, capture["request"]["headers"]))
    assert headers["authorization"] == "Bearer [REDACTED]"
    assert headers["x-hub-signature-256"] == "[REDACTED]"
    assert capture["request"]["uri"] == "/hook?token=[REDACTED]&id=7"
    assert (
        "[REDACTED]" in capture["request"]["body"]
        and '"event": "paid"' in capture["request"]["body"]
    )
    assert ["set-cookie", "[REDACTED]"] in capture["response"]["headers"]


def test_replay_reaches_the_upstream_again_and_is_captured_as_a_replay(
    edge: ApiEdge, admin: httpx.Client, upstream: Recorder
) -> None:
    inspect(admin, "cfg_hooks", enabled=True)
    wait_captured(edge, admin, "cfg_hooks", "/warm-replay")
    with web(edge) as client:
        client.put("/orders/9?x=1", content=b"order nine", headers={"x-kind": "order"})
    original = next(
        c for c in captures(admin, "cfg_hooks") if c["request"]["uri"] == "/orders/9?x=1"
    )
    before = len(upstream.seen)
    replayed = admin.post(original["uri"] + "/replay")
    assert replayed.status_code == 201, replayed.text
    again = replayed.json()
    assert len(upstream.seen) == before + 1
    seen = upstream.seen[-1]
    assert (seen["method"], seen["path"], seen["body"]) == ("PUT", "/orders/9?x=1", "order nine")
    assert seen["headers"]["x-kind"] == "order" and "edgeward-replay" not in seen["headers"]
    assert again["replay_of"] == original["id"] and again["id"] != original["id"]
    assert again["response"]["status_code"] == 200
    assert ["edgeward-replay"] not in [h[:1] for h in again["request"]["headers"]]
    assert again["id"] in [c["id"] for c in captures(admin, "cfg_hooks")]
    # Clearing drops them all; the audit log has the toggles, the replay, the clear.
    assert admin.delete("/endpoints/cfg_hooks/captures").status_code == 204
    assert captures(admin, "cfg_hooks") == []
    types = {e["event_type"] for e in edge.audit()}
    assert {
        "endpoint_inspection_updated.v0",
        "endpoint_capture_replayed.v0",
        "endpoint_captures_cleared.v0",
    } <= types


def test_a_developer_inspects_its_own_agent_endpoint_only(
    edge: ApiEdge, admin: httpx.Client
) -> None:
    alice, bob = (
        edge.key("developer", "bind:*.apps.example.com"),
        edge.key("developer", "bind:*.apps.example.com"),
    )
    auditor = edge.key("auditor")
    with edge.client(alice) as as_alice:
        token = as_alice.post("/credentials", json={"acl": ["bind:*.apps.example.com"]}).json()
    with named_server(b"alice's app") as port:
        agent = edge.agents.agent(
            Token(token["id"], token["token"]), "http", str(port), "--url",
            "http://alice.apps.example.com",
        )  # fmt: skip
        try:
            url = agent.url
            with edge.client(alice) as as_alice:
                endpoint = next(
                    e for e in as_alice.get("/endpoints").json()["endpoints"] if e["url"] == url
                )
                id = endpoint["id"]
                with edge.client(bob) as as_bob:
                    assert (
                        as_bob.patch(
                            f"/endpoints/{id}", json={"inspect": {"enabled": True}}
                        ).status_code
                        == 404
                    )
                    assert as_bob.get(f"/endpoints/{id}/captures").status_code == 404
                assert inspect(as_alice, id, enabled=True)["inspect"]["enabled"] is True
                found = first_captures(
                    edge,
                    as_alice,
                    id,
                    "/from-agent",
                    host="alice.apps.example.com",
                    served=_alices_app,
                )
                assert found[0]["response"]["body"] == "alice's app"
                with edge.client(bob) as as_bob:
                    assert (
                        as_bob.get(f"/endpoints/{id}/captures/{found[0]['id']}").status_code == 404
                    )
                    assert as_bob.delete(f"/endpoints/{id}/captures").status_code == 404
                with edge.client(auditor) as as_auditor:
                    assert len(captures(as_auditor, id)) >= 1
                    refused = as_auditor.patch(
                        f"/endpoints/{id}", json={"inspect": {"enabled": False}}
                    )
                    assert refused.status_code == 403
                # A developer sees neither edge.yml's endpoints nor their captures.
                assert as_alice.get("/endpoints/cfg_hooks/captures").status_code == 404
                bad = as_alice.patch(f"/endpoints/{id}", json={"inspect": {"max_requests": 0}})
                assert bad.status_code == 400
        finally:
            agent.kill()


def test_invalid_settings_are_refused(admin: httpx.Client) -> None:
    for value in ({"enabled": "yes"}, {"max_body_bytes": 2**30}, {"colour": 1}, []):
        answer = admin.patch("/endpoints/cfg_hooks", json={"inspect": value})
        assert answer.status_code == 400, (value, answer.text)


def test_the_inspectors_answers_validate_against_the_openapi_document(
    edge: ApiEdge, admin: httpx.Client
) -> None:
    from tests.admin.test_openapi import Checker

    from edgeward.admin.openapi import document

    check = Checker(edge, document())
    shown = check(admin, "PATCH", "/endpoints/cfg_hooks", json={"inspect": {"enabled": True}})
    assert shown.json()["inspect"]["enabled"] is True
    check(admin, "GET", "/endpoints/cfg_hooks")
    check(admin, "GET", "/endpoints")
    wait_captured(edge, admin, "cfg_hooks", "/admin/openapi")  # a deny: with a decision
    wait_captured(edge, admin, "cfg_hooks", "/openapi-ok")
    listed = check(admin, "GET", "/endpoints/cfg_hooks/captures", params={"limit": "1"}).json()
    assert len(listed["captures"]) == 1 and listed["next_page_uri"]
    one = listed["captures"][0]["id"]
    check(admin, "GET", f"/endpoints/cfg_hooks/captures/{one}")
    assert check(admin, "POST", f"/endpoints/cfg_hooks/captures/{one}/replay").status_code == 201
    assert check(admin, "GET", "/endpoints/cfg_hooks/captures/cap_none").status_code == 404
    assert check(admin, "DELETE", "/endpoints/cfg_hooks/captures").status_code == 204
    bad = {"inspect": {"enabled": 1}}
    assert check(admin, "PATCH", "/endpoints/cfg_hooks", json=bad).status_code == 400


def test_an_internal_endpoint_behind_a_public_one_is_inspected_and_replayed(
    edge: ApiEdge, admin: httpx.Client, upstream: Recorder
) -> None:
    inspect(admin, "cfg_inner", enabled=True)
    found = first_captures(
        edge, admin, "cfg_inner", "/through", host="front.example.com", served=_ok
    )
    capture = found[0]
    assert capture["request"]["host"] == "front.example.com"
    assert [(s["rule"], s["action"]) for s in capture["trace"]][-1] == ("mark inner", "add-headers")
    assert upstream.seen[-1]["headers"]["x-inner"] == "1"
    assert captures(admin, "cfg_front") == []  # not inspected: nothing kept there
    before = len(upstream.seen)
    replayed = admin.post(capture["uri"] + "/replay")
    assert replayed.status_code == 201, replayed.text
    assert replayed.json()["replay_of"] == capture["id"]
    assert len(upstream.seen) == before + 1
    assert "edgeward-replay" not in upstream.seen[-1]["headers"]  # the mark never leaves


def test_an_http2_exchange_is_captured_as_one(
    edge: ApiEdge, admin: httpx.Client, upstream: Recorder
) -> None:
    inspect(admin, "cfg_hooks", enabled=True)
    wait_captured(edge, admin, "cfg_hooks", "/warm-h2")
    with httpx.Client(
        base_url=f"http://127.0.0.1:{edge.agents.web_port}", http1=False, http2=True, timeout=30
    ) as client:  # h2c with prior knowledge
        answer = client.post("/h2", content=b"over h2", headers={"host": "hooks.example.com"})
    assert answer.status_code == 200 and answer.http_version == "HTTP/2"
    capture = next(c for c in captures(admin, "cfg_hooks") if c["request"]["uri"] == "/h2")
    assert capture["request"]["proto"] == "HTTP/2" and capture["request"]["body"] == "over h2"
    assert capture["response"]["status_code"] == 200 and capture["outcome"] == "completed"
    assert upstream.seen[-1]["body"] == "over h2"


CLOUD_POLICY = """on_http_request:
  - name: hello
    actions:
      - type: custom-response
        config: {status_code: 200, body: "from the cloud endpoint"}
"""


def test_a_cloud_endpoint_is_inspected_and_a_failed_change_sets_nothing(
    edge: ApiEdge, admin: httpx.Client
) -> None:
    made = admin.post(
        "/endpoints", json={"url": "http://cloud.example.com", "traffic_policy": CLOUD_POLICY}
    )
    assert made.status_code == 201, made.text
    id = made.json()["id"]
    assert made.json()["inspect"]["enabled"] is False
    # A change refused for its URL leaves the inspector as it was.
    refused = admin.patch(f"/endpoints/{id}", json={"url": "ftp://x", "inspect": {"enabled": True}})
    assert refused.status_code == 400
    assert admin.get(f"/endpoints/{id}").json()["inspect"]["enabled"] is False
    both = admin.patch(
        f"/endpoints/{id}", json={"description": "d", "inspect": {"enabled": True}}
    ).json()
    assert both["description"] == "d" and both["inspect"]["enabled"] is True
    found = first_captures(edge, admin, id, "/c", host="cloud.example.com", served=_from_the_cloud)
    assert found[0]["decision"]["rule"] == "hello"
    assert found[0]["decision"]["action"] == "custom-response"
    assert admin.delete(f"/endpoints/{id}").status_code == 204
    with edge.client(edge.key("admin")) as again:
        assert again.get(f"/endpoints/{id}/captures").status_code == 404


def _alices_app(answer: httpx.Response) -> bool:
    assert answer.content == b"alice's app"
    return True


def _ok(answer: httpx.Response) -> bool:
    assert answer.status_code == 200
    return True


def _from_the_cloud(answer: httpx.Response) -> bool:
    if answer.status_code == 404:  # not applied yet: the edge serves it within a second
        return False
    assert answer.text == "from the cloud endpoint"
    return True

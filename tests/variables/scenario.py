"""A connection, request and response that provide every variable the
edge can have (tests/variables/data/reference-variables.tsv): IP
intelligence from small databases and list files, TLS with client and
server certificates and a ClientHello, a request and response with every
header the variables read. Driven through a compiled policy without
sockets (tests/policy/helpers.py does the same for the action tests)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.variables import geodata
from tests.variables.pki import Pki

from edgeward.document import parse_document
from edgeward.hookdriver import drive_sync as drive
from edgeward.hooks import (
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    Forward,
    ReadBody,
    RequestHead,
    ResponseHead,
    TlsInfo,
)
from edgeward.ipintel import IpIntelligence, Sources
from edgeward.policy import compile_policy
from edgeward.policy.events import ListSink
from edgeward.policy.expressions import compile_expression
from edgeward.policy.model import Phase
from edgeward.proxy.tls import certificate

NOW = 1_700_000_000.0
CLIENT_IP, SERVER_IP = "127.0.0.2", "127.0.0.1"  # both in the test databases and lists
VECTORS = Path(__file__).resolve().parents[2] / "native/core/testdata/ja4_vectors.json"

USER_AGENTS = {
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "bot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
}

ENDPOINT = EndpointInfo(
    name="app",
    url="https://app.example.com:8443",
    host="app.example.com",
    port=8443,
    scheme="https",
    id="ep_app",
    upstream="http://127.0.0.1:9",
)


def write_intelligence(directory: Path) -> Sources:
    """The databases and the list files (every list holds 127.0.0.0/8)."""
    directory.mkdir(parents=True, exist_ok=True)
    lists = {}
    for name in ("com.example.office", "proxy.anonymous.tor", "blocklist.firehol_level1"):
        path = directory / f"{name}.txt"
        path.write_text("# test list\n127.0.0.0/8\n198.51.100.0/24 ; a comment\n")
        lists[name] = path
    return Sources(
        geodata.write_city(directory / "city.mmdb"),
        geodata.write_asn(directory / "asn.mmdb"),
        lists,
    )


def client_hello() -> bytes:
    first = json.loads(VECTORS.read_text())[0]
    return bytes.fromhex(first["records"])


@dataclass(frozen=True)
class World:
    intel: IpIntelligence
    pki: Pki
    hello: bytes

    def connection(self, scenario: str = "desktop") -> ConnectionInfo:
        eu = scenario == "eu"  # addresses in Sweden (the City database's EU record)
        return ConnectionInfo(
            id="c1",
            listener="web",
            client_ip="89.160.20.7" if eu else CLIENT_IP,
            client_port=50123,
            server_ip="89.160.20.1" if eu else SERVER_IP,
            server_port=8443,
            started_at=NOW - 1,
            tls=TlsInfo(
                version="TLSv1.3",
                cipher="TLS_AES_128_GCM_SHA256",
                server_name="app.example.com",
                alpn="h2",
                client_cert=certificate(self.pki.client.der),
                server_cert=certificate(self.pki.server.der),
                session_resumed=True,
                client_hello=self.hello,
            ),
            bytes_in=517,
            bytes_out=1234,
        )


def request_head(scenario: str) -> RequestHead:
    headers = [
        ("user-agent", USER_AGENTS.get(scenario, USER_AGENTS["desktop"])),
        ("cookie", "session=abc123; theme=dark"),
        ("location", "/elsewhere"),
        ("content-type", "application/json; charset=utf-8"),
        ("content-encoding", "gzip"),
    ]
    if scenario != "no-body":
        headers.append(("content-length", "5"))
    return RequestHead(
        method=b"POST",
        target=b"/a%20b/c?x=1&y=2",
        authority=b"user:secret@app.example.com:8443",
        scheme=b"https",
        headers=[(n.encode(), v.encode()) for n, v in headers],
        http_version=b"2",
    )


RESPONSE = ResponseHead(
    302,
    [
        (n.encode(), v.encode())
        for n, v in [
            ("content-type", "text/html; charset=utf-8"),
            ("content-encoding", "gzip"),
            ("content-length", "10"),
            ("location", "https://example.com/next"),
            (
                "set-cookie",
                "session=xyz; Domain=example.com; Path=/app; Expires=Wed, 21 Oct 2035"
                " 07:28:00 GMT; Max-Age=3600; HttpOnly; Secure; SameSite=Strict; Priority=High",
            ),
        ]
    ],
)


def cel_path(name: str) -> str:
    """The reference's name as CEL: `[name]` is the cookie `session`."""
    return name.replace("[name]", "['session']")


def read(world: World, name: str, scenario: str) -> Any:
    """The value of variable `name` as the policy's CEL backend reads it in
    an exchange of `scenario`: a policy whose one rule reads it is run, the
    activation its condition got is kept, and `name` is evaluated on it."""
    phase = Phase.HTTP_RESPONSE if name.startswith("res.") else Phase.HTTP_REQUEST
    path = cel_path(name)
    text = (
        f"{phase.value}:\n"
        f'  - expressions: ["{path} == {path}"]\n'
        "    actions: [{type: add-headers, config: {headers: {x-seen: '1'}}}]\n"
    )
    policy = compile_policy(
        parse_document(text, "walk.yml"),
        ip_policies={},
        events=ListSink(),
        clock=lambda: NOW,
        ip_intelligence=world.intel,
    )
    # the Python engine's activation is what is spied on (the native runner
    # builds its own: tests/policy/test_native_phase.py compares the two)
    policy._request = dataclasses.replace(policy._request, runner=None)
    policy._response = dataclasses.replace(policy._response, runner=None)
    rules = policy._response if phase is Phase.HTTP_RESPONSE else policy._request
    original = rules.rules[0].condition
    assert original is not None
    seen: dict[str, Any] = {}

    class Spy:
        references = original.references

        def evaluate(self, activation: Mapping[str, Any]) -> Any:
            seen.update(activation)
            return original.evaluate(activation)

    object.__setattr__(rules.rules[0], "condition", Spy())
    connection = world.connection(scenario)
    assert policy.on_tcp_connect(connection, ENDPOINT)
    head = request_head(scenario)
    exchange = policy.begin(connection, ENDPOINT, head, "req-1")

    def perform(effect: Effect) -> EffectResult:
        if isinstance(effect, ReadBody):
            return b"hello"
        raise AssertionError(effect)

    outcome = drive(exchange.on_http_request(head), perform)
    assert isinstance(outcome, Forward), outcome
    if phase is Phase.HTTP_RESPONSE:
        drive(exchange.on_http_response(RESPONSE), perform)
    assert seen, f"{name}: the rule was not evaluated"
    return compile_expression(path, phase).evaluate(seen)

"""Internal endpoints of edge.yml and `forward-internal` through `edgeward
serve` (no agent needed): the target's policy inside the public one (its
request phase after, its response phase before), loops and the hop limit
(508), `on_error: continue` with the result variables, and internal names
never reachable from a listener; and an http-request to an agent-bound
internal endpoint."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agents.agents_support import Pki, agent_edge, curl, ingress_block
from tests.proxy.proxy_support import Upstream, start_edge


def forward(url: str, extra: str = "") -> str:
    return f"""
    traffic_policy:
      on_http_request:
        - actions:
            - type: forward-internal
              config: {{{{url: "{url}"{extra}}}}}
"""


def config(upstream: str) -> str:
    chain = "".join(
        f"  - hostname: h{i}.internal\n    upstream: {upstream}\n"
        + forward(f"https://h{i + 1}.internal")
        for i in range(1, 7)
    )
    return (
        """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - hostname: api.example.com
    upstream: http://127.0.0.1:9
    traffic_policy:
      on_http_request:
        - actions:
            - type: add-headers
              config: {{headers: {{x-public: "1"}}}}
            - type: forward-internal
              config: {{url: "https://api.internal"}}
      on_http_response:
        - actions:
            - type: add-headers
              config: {{headers: {{x-public-out: "1"}}}}
"""
        + f"""
  - hostname: api.internal
    upstream: {upstream}
    traffic_policy:
      on_http_request:
        - actions:
            - type: add-headers
              config: {{{{headers: {{{{x-internal: "${{{{endpoint.host}}}}"}}}}}}}}
      on_http_response:
        - actions:
            - type: add-headers
              config: {{{{headers: {{{{x-internal-out: "1"}}}}}}}}
  - hostname: loop.example.com
    upstream: {upstream}
{forward("https://a.internal")}
  - hostname: a.internal
    upstream: {upstream}
{forward("https://b.internal")}
  - hostname: b.internal
    upstream: {upstream}
{forward("https://a.internal")}
  - hostname: deep.example.com
    upstream: {upstream}
{forward("https://h1.internal")}
{chain}
  - hostname: h7.internal
    upstream: {upstream}
  - hostname: missing.example.com
    upstream: {upstream}
    traffic_policy:
      on_http_request:
        - actions:
            - type: forward-internal
              config: {{{{url: "https://gone.internal", on_error: continue}}}}
            - type: custom-response
              config:
                status_code: 503
                body: "fallback ${{{{actions.ngrok.forward_internal.error.code}}}}"
"""
    )


def test_forward_internal_through_the_edge(tmp_path: Path, upstream: Upstream) -> None:
    edge = start_edge(tmp_path, config(upstream.url))
    try:
        port = edge.port

        def get(host: str, path: str = "/headers") -> tuple[int, dict[str, str], bytes]:
            r = curl(f"http://{host}:{port}{path}", port)
            return r.status, r.headers, r.body

        status, headers, body = get("api.example.com")
        assert status == 200
        seen = dict(json.loads(body)["headers"])
        assert seen["x-public"] == "1" and seen["x-internal"] == "api.internal"
        assert seen["host"] == f"api.example.com:{port}"  # the public host
        assert seen["x-forwarded-host"] == f"api.example.com:{port}"
        assert headers["x-internal-out"] == "1" and headers["x-public-out"] == "1"

        status, headers, _ = get("loop.example.com")
        assert (status, headers["edgeward-error"]) == (508, "ERR_EDGEWARD_3502")
        status, headers, _ = get("deep.example.com")  # h1 ... h6: more than 5 hops
        assert (status, headers["edgeward-error"]) == (508, "ERR_EDGEWARD_3502")

        status, _, body = get("missing.example.com")
        assert (status, body) == (503, b"fallback ERR_EDGEWARD_3200")

        status, headers, _ = get("api.internal")  # never from a listener
        assert (status, headers["edgeward-error"]) == (404, "ERR_EDGEWARD_3200")
    finally:
        edge.stop()


def test_http_request_to_an_agent_bound_internal_endpoint(
    tmp_path: Path, pki: Pki, upstream: Upstream
) -> None:
    """A policy's http-request to `https://alice.internal/...` is answered by
    Alice's agent (through the edge's own routing, not DNS); once she is
    gone, the same call takes the on_error path."""
    body = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - hostname: api.example.com
    upstream: http://127.0.0.1:9
    traffic_policy:
      on_http_request:
        - actions:
            - type: http-request
              config:
                url: "https://alice.internal/headers"
                headers: {{x-from: api}}
            - type: custom-response
              config:
                body: >-
                  ${{has(actions.ngrok.http_request.error)
                    ? actions.ngrok.http_request.error.code
                    : actions.ngrok.http_request.res.body}}
""" + ingress_block(pki, domains=[])
    with agent_edge(tmp_path, pki, body) as edge:
        alice = edge.token("bind:alice.internal")
        agent = edge.agent(alice, "http", str(upstream.port), "--url", "https://alice.internal")
        try:
            assert agent.url == "https://alice.internal"
            port = edge.web_port
            r = curl(f"http://api.example.com:{port}/", port)
            assert r.status == 200, r
            seen = dict(json.loads(r.body)["headers"])
            assert seen["x-from"] == "api" and seen["host"] == "alice.internal"
            agent.wait_for(r"GET\s+/headers\s+200")  # her agent answered
        finally:
            agent.kill()
        agent.proc.wait(10)
        r = curl(f"http://api.example.com:{port}/", port)
        assert (r.status, r.body) == (200, b"ERR_EDGEWARD_3607")

"""The brief's scenario, end to end: a security team publishes the wildcard
`*.dev.example.com` in edge.yml with a policy (restrict-ips, a rule) that
ends in `forward-internal` to `https://<name>.internal`; Alice's authtoken
may bind `alice.internal` only. Her agent's app is reachable at
alice.dev.example.com only through that policy; binding bob.internal or a
public URL is refused (with the rule set named, and an event); revoking her
token takes her endpoint down. The edge and the agents are real processes,
TLS is real (trustme), the upstream is a real server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agents.agents_support import Pki, agent_edge, curl, ingress_block
from tests.proxy.proxy_support import Upstream

SECURITY_POLICY = """
    traffic_policy:
      on_tcp_connect:
        - name: loopback only
          actions:
            - type: restrict-ips
              config: {{allow: [127.0.0.0/8]}}
      on_http_request:
        - name: no admin pages
          expressions: ["req.url.path.startsWith('/admin')"]
          actions:
            - type: deny
              config: {{status_code: 403}}
        - name: to the developer's internal endpoint
          actions:
            - type: add-headers
              config:
                headers: {{x-security-team: checked}}
            - type: forward-internal
              config:
                url: "https://${{req.host.split('.dev.example.com')[0]}}.internal"
"""


def scenario_config(pki: Pki, fallback: str) -> str:
    return (
        f"""
listeners:
  - name: web
    address: 127.0.0.1:{{port_web}}
    tls:
      certificates: [{{{{cert: {pki.public_cert}, key: {pki.public_key}}}}}]
endpoints:
  - name: dev
    hostname: "*.dev.example.com"
    upstream: {fallback}
"""
        + SECURITY_POLICY
        + ingress_block(pki, domains=["*.apps.example.com"])
    )


def test_alice_publishes_her_app_behind_the_security_policy(
    tmp_path: Path, pki: Pki, upstream: Upstream
) -> None:
    with agent_edge(tmp_path, pki, scenario_config(pki, upstream.url)) as edge:
        alice = edge.token("bind:alice.internal", description="alice laptop")
        agent = edge.agent(alice, "http", str(upstream.port), "--url", "https://alice.internal")
        try:
            assert agent.url == "https://alice.internal"
            port = edge.web_port
            url = f"https://alice.dev.example.com:{port}"

            # through the public wildcard, its policy, then her agent
            r = curl(f"{url}/headers", port, pki)
            assert r.status == 200, r
            seen = dict(json.loads(r.body)["headers"])
            assert seen["x-security-team"] == "checked"  # the public policy ran first
            assert seen["host"] == f"alice.dev.example.com:{port}"  # Host stays public
            assert seen["x-forwarded-proto"] == "https"
            assert seen["x-forwarded-host"] == f"alice.dev.example.com:{port}"
            assert seen["x-forwarded-for"] == "127.0.0.1"
            agent.wait_for(r"GET\s+/headers\s+200")  # her console shows the request

            # the policy's rule holds for her app too
            assert curl(f"{url}/admin", port, pki).status == 403

            # a name nobody bound: 404 with the documented code, never a hang
            r = curl(f"https://carol.dev.example.com:{port}/hello", port, pki)
            assert r.status == 404
            assert r.headers["edgeward-error"] == "ERR_EDGEWARD_3200"

            # internal names are never reachable from a public listener
            r = curl(f"https://alice.internal:{port}/hello", port, None, "-k")
            assert r.status == 404

            # what she may not bind: another internal name, a public URL
            for other in ("https://bob.internal", "https://alice.apps.example.com"):
                refused = edge.agent(alice, "http", str(upstream.port), "--url", other)
                refused.wait_for(r"refused endpoint .*ERR_NGROK_316")
                refused.wait_for(r"not allowed by the authtoken's ACL \(bind:alice\.internal\)")
                assert refused.proc.wait(30) == 1
            event = edge.wait_event("agent_bind_refused", url="https://bob.internal")
            assert event["authtoken"] == alice.id
            assert event["error_code"] == "ERR_NGROK_316"
            assert "bind:alice.internal" in str(event["reason"])

            # revoking her token takes the endpoint down
            edge.revoke(alice)
            edge.wait_event("agent_revoked", authtoken=alice.id, timeout=5)
            r = curl(f"{url}/hello", port, pki)
            assert r.status == 404
            assert r.headers["edgeward-error"] == "ERR_EDGEWARD_3200"
            # and her agent cannot come back with it
            agent.wait_for(r"refused the authtoken")
            assert agent.proc.wait(30) == 1
        finally:
            agent.kill()


def test_the_ingress_policy_restricts_where_agents_connect_from(
    tmp_path: Path, pki: Pki, upstream: Upstream
) -> None:
    config = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints: []
""" + ingress_block(
        pki,
        domains=["*.apps.example.com"],
        extra="""  traffic_policy:
    on_tcp_connect:
      - actions:
          - type: restrict-ips
            config: {{allow: [192.0.2.0/24]}}
""",
    )
    with agent_edge(tmp_path, pki, config) as edge:
        token = edge.token("*")
        agent = edge.agent(token, "http", str(upstream.port))
        try:
            agent.wait_for(r"reconnecting in")  # closed at once, retried with backoff
            event = edge.wait_event("agent_auth_refused")
            assert event["client_ip"] == "127.0.0.1"
        finally:
            agent.kill()

"""The official `ngrok` Python SDK (PyPI; 1.4.0 on Python 3.11) as the agent
of `edgeward serve`: `server_addr` and `root_cas` point it at the agent
ingress, it authenticates with an edgeward authtoken, binds an HTTP
endpoint, and requests through the edge are served by its upstream. A
refused token and a refused bind come back to it as errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.agents.agents_support import AgentEdge, Pki, agent_edge, curl, ingress_block
from tests.proxy.proxy_support import Upstream

pytest.importorskip("ngrok")
SDK_AGENT = Path(__file__).resolve().parents[1] / "tunnel" / "sdk_agent.py"

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints: []
"""


@contextmanager
def sdk(edge: AgentEdge, token: str, domain: str, upstream: str) -> Iterator[dict[str, Any]]:
    options = {
        "server_addr": f"localhost:{edge.ingress_port}",
        "root_cas": str(edge.pki.ca),
        "authtoken": token,
        "domain": domain,
        "upstream": upstream,
    }
    proc = subprocess.Popen(
        [sys.executable, str(SDK_AGENT), json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        yield json.loads(proc.stdout.readline() or '{"error": ["exited"]}')
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_ngrok_sdk_serves_requests_through_edgeward_serve(
    tmp_path: Path, pki: Pki, upstream: Upstream
) -> None:
    config = CONFIG + ingress_block(pki, domains=["*.apps.example.com"])
    with agent_edge(tmp_path, pki, config) as edge:
        token = edge.token("bind:sdk.apps.example.com")
        domain = "sdk.apps.example.com"
        with sdk(edge, token.token, domain, upstream.url) as bound:
            # an https bind on an edge with only a plain listener gets http://
            assert bound["url"] == f"http://{domain}:{edge.web_port}", bound
            event = edge.wait_event("agent_connected", authtoken=token.id)
            assert str(event["client_type"]).startswith("ngrok")
            for _ in range(3):
                r = curl(f"http://{domain}:{edge.web_port}/hello", edge.web_port)
                assert (r.status, r.body) == (200, b"hello\n")
            body = b"z" * 600_000
            r = curl(
                f"http://{domain}:{edge.web_port}/count", edge.web_port, None,
                "--data-binary", f"@{_file(tmp_path, body)}",
            )  # fmt: skip
            assert json.loads(r.body)["bytes"] == len(body)
        # the SDK went away without unbinding: the endpoint is reserved, then answers 503
        edge.wait_event("agent_disconnected", authtoken=token.id)
        r = curl(f"http://{domain}:{edge.web_port}/hello", edge.web_port)
        assert (r.status, r.headers.get("edgeward-error")) == (503, "ERR_EDGEWARD_3209")

        with sdk(edge, token.token, "other.apps.example.com", upstream.url) as refused:
            assert "ERR_NGROK_316" in json.dumps(refused), refused
        with sdk(edge, "ewt_not_a_token", domain, upstream.url) as refused:
            assert "error" in refused
            assert "ERR_NGROK_107" in json.dumps(refused), refused


def _file(directory: Path, data: bytes) -> Path:
    path = directory / "body.bin"
    path.write_bytes(data)
    return path

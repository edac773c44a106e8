"""Helpers of the admin API tests: `edgeward serve` with an agent ingress and
the `api:` listener (a real process), API keys made with the real CLI, and an
httpx client that speaks the public API's headers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.agents.agents_support import AgentEdge, Pki, agent_edge, ingress_block, run_cli
from tests.proxy.proxy_support import free_port, wait_port

EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: site
    hostname: site.example.com
    upstream: http://127.0.0.1:9
    listeners: [web]
api:
  address: 127.0.0.1:{port_api}
  audit_log: {dir}/audit.log
"""


@dataclass
class Key:
    id: str
    token: str
    role: str


@dataclass
class ApiEdge:
    agents: AgentEdge

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.agents.edge.ports['api']}"

    @property
    def directory(self) -> Path:
        return self.agents.directory

    def key(self, role: str, *acl: str) -> Key:
        """An API key made on the local store with `edgeward api-key create`."""
        rules = [arg for rule in acl for arg in ("--acl", rule)]
        out = run_cli(
            "api-key", "create", "--state-dir", str(self.agents.state_dir),
            "--role", role, "--json", *rules,
        )  # fmt: skip
        data = json.loads(out)
        return Key(data["id"], data["token"], role)

    def client(self, key: Key | None) -> httpx.Client:
        headers = {"Ngrok-Version": "2"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key.token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def audit(self) -> list[dict[str, Any]]:
        """The audit log, once the event bus has written what it had (its
        sender thread writes it: read until two reads agree)."""
        path = self.directory / "audit.log"
        seen = None
        for _ in range(50):
            text = path.read_text() if path.exists() else ""
            if text == seen:
                break
            seen = text
            time.sleep(0.1)
        return [json.loads(line) for line in (seen or "").splitlines() if line.strip()]


@contextmanager
def api_edge(directory: Path, pki: Pki) -> Iterator[ApiEdge]:
    body = EDGE + ingress_block(pki, domains=["*.apps.example.com"])
    port_api = free_port()
    with agent_edge(directory, pki, body, port_api=port_api) as edge:
        edge.edge.ports["api"] = port_api

        wait_port(port_api, proc=edge.edge.proc)
        yield ApiEdge(edge)

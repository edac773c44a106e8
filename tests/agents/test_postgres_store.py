"""An edge whose state store is PostgreSQL (`store_url:`): authtokens made
and revoked by the CLI through the same config reach the running edge."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.agents.agents_support import TIMEOUT, Pki, Token, agent_edge, curl, run_cli
from tests.agents.test_agent_http import plain_edge
from tests.proxy.proxy_support import EDGEWARD, Upstream
from tests.store.postgres_support import Postgres


def test_an_agent_binds_with_a_token_from_a_postgresql_store(
    tmp_path: Path, pki: Pki, upstream: Upstream, postgres: Postgres
) -> None:
    url = postgres.database()
    with agent_edge(tmp_path, pki, plain_edge(pki, more=f"store_url: {url}\n")) as edge:
        config = str(edge.edge.config)
        made = json.loads(
            run_cli("authtoken", "create", "--config", config, "--json", "--acl", "bind:*")
        )
        listed = subprocess.run(
            [*EDGEWARD, "authtoken", "list", "--state-dir", str(edge.state_dir), "--json"],
            capture_output=True, text=True, timeout=TIMEOUT, check=True,
        )  # fmt: skip
        assert json.loads(listed.stdout) == []  # the SQLite store beside it is another store
        agent = edge.agent(
            Token(made["id"], made["token"]),
            "http", str(upstream.port), "--url", "http://pg.apps.example.com",
        )  # fmt: skip
        try:
            assert curl(f"{agent.url}/", edge.web_port).status == 200
            run_cli("authtoken", "revoke", "--config", config, made["id"])
            agent.wait_for("refused the authtoken")
            assert agent.proc.wait(TIMEOUT) == 1
        finally:
            agent.kill()

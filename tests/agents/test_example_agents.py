"""examples/agents/edge.yml, what `make agent-demo` serves, does what the
README's "Expose a local app" says: certificates from demo_certs.py, an
authtoken from the CLI, `edgeward agent http 9080` publishing the example
upstream, reachable at its public name and, bound as an internal endpoint,
only through the security team's *.dev.localhost endpoint."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from tests.agents.agents_support import Token, curl, run_cli, start_agent
from tests.proxy.proxy_support import EDGEWARD, free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "agents"


def test_the_agents_example(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("demo_certs", EXAMPLE / "demo_certs.py")
    assert spec is not None and spec.loader is not None
    certs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(certs)
    certs.write(tmp_path / ".demo")
    web, ingress = free_port(), free_port()
    text = (EXAMPLE / "edge.yml").read_text()
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{web}")
    text = text.replace("127.0.0.1:4443", f"127.0.0.1:{ingress}")
    text = text.replace("events: stdout", "events: off")
    config = tmp_path / "edge.yml"
    config.write_text(text)
    run_cli("check", "--config", str(config))
    upstream_port = free_port()
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "upstream.py"), "--port", str(upstream_port)]
    )
    edge = subprocess.Popen(
        [*EDGEWARD, "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    agents = []
    try:
        wait_port(upstream_port)
        wait_port(web, proc=edge)
        wait_port(ingress, proc=edge)
        out = run_cli(
            "authtoken", "create", "--config", str(config), "--description", "demo",
            "--acl", "bind:*.apps.localhost", "--acl", "bind:demo.internal",
        )  # fmt: skip
        token = Token("", re.search(r"^(ewt_\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
        ca = tmp_path / ".demo" / "ca.pem"
        server = f"localhost:{ingress}"
        public = start_agent(
            None, token, "http", str(upstream_port), "--url", "http://demo.apps.localhost",
            server=server, ca=ca,
        )  # fmt: skip
        agents.append(public)
        assert public.url == f"http://demo.apps.localhost:{web}"
        r = curl(f"http://demo.apps.localhost:{web}/hello", web)
        assert r.status == 200 and b'"path": "/hello"' in r.body
        public.wait_for(r"GET\s+/hello\s+200")
        internal = start_agent(
            None, token, "http", str(upstream_port), "--url", "https://demo.internal",
            server=server, ca=ca,
        )  # fmt: skip
        agents.append(internal)
        assert internal.url == "https://demo.internal"
        r = curl(f"http://demo.dev.localhost:{web}/hello", web)
        assert r.status == 200 and b'"x-checked-by": "security-team"' in r.body
        assert curl(f"http://demo.dev.localhost:{web}/admin", web).status == 403
    finally:
        for agent in agents:
            agent.kill()
        for proc in (edge, app):
            proc.terminate()
            proc.wait(10)

"""The agent's life: an edge that is down when it starts (retried with
backoff, not fatal), an edge restart (reconnect and re-bind the same URL),
the agent config file (`agent start`, `agent config add-authtoken`), the
authtoken from the environment, and what is fatal."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.agents.agents_support import (
    EDGEWARD,
    Pki,
    Token,
    curl,
    ingress_block,
    run_cli,
    start_agent,
)
from tests.proxy.proxy_support import Upstream, free_port, wait_port


def write_edge(directory: Path, pki: Pki, web: int, ingress: int) -> Path:
    text = (
        f"""
listeners:
  - name: web
    address: 127.0.0.1:{web}
endpoints: []
"""
        + ingress_block(pki, domains=["*.apps.example.com"]).format(port_ingress=ingress)
        + f"state_dir: {directory}/state\nevents: {directory}/events.log\n"
    )
    config = directory / "edge.yml"
    config.write_text(text)
    return config


def serve(config: Path, ports: tuple[int, ...]) -> subprocess.Popen[bytes]:
    log = (config.parent / "edge.log").open("ab")
    proc = subprocess.Popen([*EDGEWARD, "serve", "--config", str(config)], stdout=log, stderr=log)
    for port in ports:
        wait_port(port, proc=proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def new_token(directory: Path, *acl: str) -> Token:
    import json

    args = [a for rule in acl for a in ("--acl", rule)]
    out = run_cli("authtoken", "create", "--state-dir", str(directory / "state"), "--json", *args)
    data = json.loads(out)
    return Token(data["id"], data["token"])


def test_an_edge_down_at_start_then_restarted(tmp_path: Path, pki: Pki, upstream: Upstream) -> None:
    web, ingress = free_port(), free_port()
    config = write_edge(tmp_path, pki, web, ingress)
    token = new_token(tmp_path, "*")
    agent = start_agent(
        None, token, "http", str(upstream.port), "--url", "http://late.apps.example.com",
        server=f"localhost:{ingress}", ca=pki.ca,
    )  # fmt: skip
    edge = None
    try:
        agent.wait_for(r"cannot connect to localhost:\d+.*reconnecting in [\d.]+ s")
        assert agent.proc.poll() is None  # retried, not fatal
        edge = serve(config, (web, ingress))
        url = agent.url
        assert url == f"http://late.apps.example.com:{web}"
        assert curl(f"{url}/hello", web).body == b"hello\n"
        # the edge restarts: the agent reconnects and binds the same URL again
        stop(edge)
        mark = len(agent.lines)
        agent.wait_for("reconnecting in", start=mark)
        edge = serve(config, (web, ingress))
        agent.wait_for(r"connected to", start=mark)
        deadline = time.monotonic() + 30
        while curl(f"{url}/hello", web).status != 200:
            assert time.monotonic() < deadline, agent.lines
            time.sleep(0.1)
        assert curl(f"{url}/hello", web).body == b"hello\n"
    finally:
        agent.kill()
        if edge is not None:
            stop(edge)


def test_agent_start_with_a_v3_config_file(tmp_path: Path, pki: Pki, upstream: Upstream) -> None:
    web, ingress = free_port(), free_port()
    config = write_edge(tmp_path, pki, web, ingress)
    token = new_token(tmp_path, "bind:*.apps.example.com")
    agent_config = tmp_path / "agent.yml"
    agent_config.write_text(
        f"""
version: 3
agent:
  connect_url: localhost:{ingress}
  connect_cas: {pki.ca}
  heartbeat_interval: 5s
  heartbeat_tolerance: 10s
endpoints:
  - name: web
    url: http://web.apps.example.com
    upstream: {{url: {upstream.port}, protocol: http1}}
  - name: api
    url: http://api.apps.example.com
    traffic_policy:
      on_http_request:
        - actions:
            - type: custom-response
              config: {{status_code: 200, body: "from the api policy"}}
    upstream: {{url: "http://127.0.0.1:{upstream.port}"}}
"""
    )
    out = run_cli("agent", "config", "add-authtoken", token.token, "--config", str(agent_config))
    assert str(agent_config) in out
    assert oct(agent_config.stat().st_mode & 0o777) == "0o600"
    edge = serve(config, (web, ingress))
    try:
        agent = start_agent(None, None, "start", "--config", str(agent_config), "--all")
        try:
            agent.wait_for(rf"Forwarding http://web\.apps\.example\.com:{web} ->")
            agent.wait_for(rf"Forwarding http://api\.apps\.example\.com:{web} ->")
            r = curl(f"http://web.apps.example.com:{web}/hello", web)
            assert r.body == b"hello\n"
            r = curl(f"http://api.apps.example.com:{web}/x", web)
            assert r.body == b"from the api policy"
        finally:
            agent.kill()
        # one endpoint by name; the token from the environment wins over the file
        agent = start_agent(
            None, Token("x", "ewt_wrong"), "start", "--config", str(agent_config), "api"
        )
        try:
            agent.wait_for("refused the authtoken")
            assert agent.proc.wait(30) == 1
        finally:
            agent.kill()
        agent = start_agent(
            None, None, "start", "--config", str(agent_config), "nope",
        )  # fmt: skip
        agent.wait_for("no endpoint named nope")
        assert agent.proc.wait(30) == 1
    finally:
        stop(edge)


def test_usage_mistakes_are_exit_1_with_a_message(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "EDGEWARD_AUTHTOKEN": ""}
    for args, message in (
        (["http", "8080"], "no authtoken"),
        (["http", "8080", "--url", "tcp://x:1", "--authtoken", "t"], "not a http:// URL"),
        (["tcp", "http://localhost:22", "--authtoken", "t"], "upstream tcp://host:port"),
        (["http", "8080", "--server", "nohost", "--authtoken", "t"], "host:port"),
    ):
        proc = subprocess.run(
            [*EDGEWARD, "agent", *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
        assert proc.returncode == 1, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)

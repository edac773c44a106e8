"""The `api:` listener's life inside `edgeward serve`: TLS with the edge's
certificates, a clean stop, a reload that would move it refused, a port in
use refused at start in one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
from tests.agents.agents_support import TIMEOUT, Pki, run_cli
from tests.proxy.proxy_support import EDGEWARD, free_port, start_edge, wait_port

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints: []
state_dir: {dir}/state
api:
  address: 127.0.0.1:{port_api}
  tls:
    certificates: [{{cert: {cert}, key: {key}}}]
"""


def test_tls_api_stop_and_reload(tmp_path: Path, pki: Pki) -> None:
    port_api = free_port()
    out = run_cli(
        "api-key", "create", "--state-dir", str(tmp_path / "state"), "--role", "auditor", "--json"
    )
    key = json.loads(out)["token"]
    edge = start_edge(
        tmp_path, CONFIG, port_api=port_api, cert=pki.ingress_cert, key=pki.ingress_key
    )
    try:
        wait_port(port_api, proc=edge.proc)
        headers = {"Authorization": f"Bearer {key}", "Ngrok-Version": "2"}
        url = f"https://localhost:{port_api}"
        with httpx.Client(
            base_url=url, verify=ssl.create_default_context(cafile=str(pki.ca)), headers=headers
        ) as api:
            assert api.get("/credentials").json()["credentials"] == []
        with httpx.Client(base_url=url, verify=False, headers={"Ngrok-Version": "2"}) as other:
            assert other.get("/credentials").status_code == 401  # TLS, and still a key needed
        env = {**os.environ, "EDGEWARD_API_KEY": key}
        listed = subprocess.run(
            [*EDGEWARD, "authtoken", "list", "--api", url, "--api-ca", str(pki.ca)],
            capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith("ID")
        # a reload that moves the API is refused; the running one keeps serving
        edge.config.write_text(edge.config.read_text().replace(str(port_api), str(free_port())))
        edge.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while "reload rejected" not in edge.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "the admin API's settings change only with a restart" in edge.log.read_text()
        with httpx.Client(
            base_url=url, verify=ssl.create_default_context(cafile=str(pki.ca)), headers=headers
        ) as api:
            assert api.get("/endpoints").status_code == 200
    finally:
        assert edge.stop() == 0


def test_an_api_address_in_use_is_a_startup_error(tmp_path: Path, pki: Pki) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "edge.yml"
        config.write_text(
            CONFIG.format(
                port_web=free_port(), port_api=port, dir=tmp_path,
                cert=pki.ingress_cert, key=pki.ingress_key,
            )
        )  # fmt: skip
        proc = subprocess.run(
            [*EDGEWARD, "serve", "--config", str(config)],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
    assert proc.returncode == 1
    assert "admin API" in proc.stderr and "Traceback" not in proc.stderr

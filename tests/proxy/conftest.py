"""Fixtures of the proxy tests: a real upstream process and test
certificates from trustme. Everything listens on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxy_support import HERE, Upstream, wait_port


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    port_file = tmp_path_factory.mktemp("upstream") / "port"
    proc = subprocess.Popen([sys.executable, str(HERE / "upstream_app.py"), str(port_file)])
    deadline = time.monotonic() + 10
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("upstream did not start")
        time.sleep(0.02)
    up = Upstream(int(port_file.read_text()), proc)
    wait_port(up.port)
    yield up
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, server certificates for app.test / other.test / *.wild.test,
    and a client CA with one client certificate."""
    import trustme

    d = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    out = {"ca": d / "ca.pem"}
    for name, hosts in {
        "app": ["app.test"],
        "other": ["other.test"],
        "wild": ["*.wild.test"],
    }.items():
        cert = ca.issue_cert(*hosts)
        cert.cert_chain_pems[0].write_to_path(str(d / f"{name}.pem"))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(d / f"{name}.pem"), append=True)
        cert.private_key_pem.write_to_path(str(d / f"{name}-key.pem"))
        out[name] = d / f"{name}.pem"
        out[f"{name}-key"] = d / f"{name}-key.pem"
    client_ca = trustme.CA()
    client_ca.cert_pem.write_to_path(str(d / "client-ca.pem"))
    client = client_ca.issue_cert("alice@example.com", common_name="alice")
    client.private_key_and_cert_chain_pem.write_to_path(str(d / "client.pem"))
    stranger = trustme.CA().issue_cert("mallory@example.com", common_name="mallory")
    stranger.private_key_and_cert_chain_pem.write_to_path(str(d / "stranger.pem"))
    out.update(client_ca=d / "client-ca.pem", client=d / "client.pem", stranger=d / "stranger.pem")
    return out

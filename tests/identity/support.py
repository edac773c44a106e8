"""The identity tests' harness: `edgeward serve` with a TLS listener for
``*.edge.test`` and an `identity:` section, the upstream echo server, and a
scripted browser (httpx with a cookie jar) that logs in at the provider.

Test hostnames resolve to 127.0.0.1 only inside the test process
(`resolve_test_hosts`) and, for chromium, with ``--host-resolver-rules``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import trustme
from tests.proxy.proxy_support import EDGEWARD, Edge, free_port, wait_port

DOMAIN = "edge.test"
AUTH_HOST = f"auth.{DOMAIN}"


@contextlib.contextmanager
def resolve_test_hosts() -> Iterator[None]:
    """``*.edge.test`` resolves to 127.0.0.1 in this process."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


@dataclass
class Certs:
    ca_file: Path
    cert: Path
    key: Path
    spki_sha256: str  # for chromium's --ignore-certificate-errors-spki-list


def make_certs(directory: Path) -> Certs:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    leaf = ca.issue_cert(f"*.{DOMAIN}", DOMAIN)
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = directory / "cert.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key = directory / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    parsed = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    spki = parsed.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Certs(ca_file, cert, key, base64.b64encode(hashlib.sha256(spki).digest()).decode())


def write_keys(path: Path, *kids: str) -> Path:
    keys = [
        {
            "kty": "oct",
            "kid": kid,
            "k": base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="),
        }
        for kid in kids or ("k1",)
    ]
    path.write_text(json.dumps({"keys": keys}))
    return path


@dataclass
class IdentityEdge:
    edge: Edge
    port: int
    directory: Path

    def url(self, host: str, path: str = "/") -> str:
        return f"https://{host}.{DOMAIN}:{self.port}{path}"

    @property
    def callback_url(self) -> str:
        return f"https://{AUTH_HOST}:{self.port}/oauth2/callback"

    def stop(self) -> None:
        self.edge.stop()

    def log(self) -> str:
        return self.edge.log_text()


def pick_port() -> int:
    return free_port()


def start_identity_edge(
    directory: Path,
    certs: Certs,
    port: int,
    endpoints: dict[str, str],
    upstream: str,
    *,
    session_store: str = "memory",
    providers: str = "",
    keys_file: Path | None = None,
) -> IdentityEdge:
    """`edgeward serve` on `port` (TLS) with one endpoint per
    ``{name: policy}`` at ``name.edge.test`` and the auth host."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = keys_file or write_keys(directory / "keys.json")
    lines = [
        "listeners:",
        "  - name: web",
        f"    address: 127.0.0.1:{port}",
        "    tls:",
        f"      certificates: [{{cert: {certs.cert}, key: {certs.key}}}]",
        "identity:",
        f"  auth_host: {AUTH_HOST}:{port}",
        f"  keys_file: {keys}",
        f"  session_store: {session_store}",
        "  allow_insecure_loopback_issuer: true",
    ]
    if providers:
        lines.append("  providers:")
        lines += ["    " + line for line in providers.strip().splitlines()]
    lines.append("endpoints:")
    for name, policy in endpoints.items():
        policy_file = directory / f"{name}.policy.yml"
        policy_file.write_text(policy)
        lines += [
            f"  - name: {name}",
            f"    hostname: {name}.{DOMAIN}",
            f"    upstream: {upstream}",
            f"    traffic_policy_file: {policy_file}",
        ]
    config = directory / "edge.yml"
    config.write_text("\n".join(lines) + "\n")
    log = directory / "edge.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*EDGEWARD, "serve", "--config", str(config), "--log-level", "info"],
            stdout=out,
            stderr=out,
            env=env,
        )
    edge = Edge(proc, config, {"web": port}, log, directory / "access.log")
    try:
        wait_port(port, proc=proc)
    except Exception:
        edge.stop()
        raise RuntimeError(f"edge did not start:\n{log.read_text()}") from None
    return IdentityEdge(edge, port, directory)


# --- a scripted browser ----------------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name") and a.get("type") in ("hidden", None, "text"):
            self.inputs[str(a["name"])] = a.get("value") or ""


class Browser:
    """httpx with a cookie jar, following redirects itself so a test can
    stop at, and look at, any hop."""

    def __init__(self, certs: Certs) -> None:
        self.client = httpx.Client(
            verify=ssl.create_default_context(cafile=str(certs.ca_file)), timeout=30
        )
        self.hops: list[httpx.Response] = []

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(url, **kwargs)

    def follow(
        self,
        url: str,
        *,
        login: tuple[str, str] | None = None,
        stop: re.Pattern[str] | None = None,
        max_hops: int = 20,
    ) -> httpx.Response:
        """GET `url` and follow redirects, filling the provider's login
        forms with `login` (username, password). `stop`: return the
        redirect whose Location matches, without following it."""
        response = self.client.get(url)
        for _ in range(max_hops):
            self.hops.append(response)
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if stop is not None and stop.search(location):
                    return response
                response = self.client.get(location)
                continue
            if login is not None and response.status_code == 200:
                form = _Forms()
                form.feed(response.text)
                if 'name="login"' in response.text:
                    data = {**form.inputs, "login": login[0]}
                    response = self.client.post(str(response.url), data=data)
                    continue
                if 'name="password"' in response.text:
                    data = {**form.inputs, "password": login[1]}
                    response = self.client.post(str(response.url), data=data)
                    continue
            return response
        raise AssertionError(f"too many redirects from {url}")


def echo(handler: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    data = {
        "path": handler.path,
        "headers": {k.lower(): v for k, v in handler.headers.items()},
    }
    return 200, [("content-type", "application/json")], json.dumps(data).encode()


__all__ = [
    "AUTH_HOST",
    "DOMAIN",
    "EDGEWARD",
    "Browser",
    "Certs",
    "IdentityEdge",
    "echo",
    "make_certs",
    "pick_port",
    "resolve_test_hosts",
    "start_identity_edge",
    "write_keys",
]

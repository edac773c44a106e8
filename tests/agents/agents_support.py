"""Helpers of the agent tests: certificates from trustme, `edgeward serve`
with an agent ingress (a real process), authtokens made with the real CLI,
`edgeward agent` processes whose console is read line by line, and curl
for requests (with --resolve, so TLS listeners see real SNI)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.proxy.proxy_support import EDGEWARD, Edge, free_port, start_edge

TIMEOUT = 30.0


@dataclass(frozen=True)
class Pki:
    ca: Path
    ingress_cert: Path  # localhost, 127.0.0.1
    ingress_key: Path
    public_cert: Path  # *.dev.example.com, *.apps.example.com (not *.tls.example.com)
    public_key: Path
    upstream_cert: Path  # what a tls endpoint's local server presents (app.tls.example.com)
    upstream_key: Path


def make_pki(directory: Path) -> Pki:
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    out: dict[str, Path] = {}
    for name, hosts in {
        "ingress": ["localhost", "127.0.0.1"],
        "public": ["*.dev.example.com", "*.apps.example.com"],
        "upstream": ["app.tls.example.com"],
    }.items():
        cert = ca.issue_cert(*hosts)
        cert.cert_chain_pems[0].write_to_path(str(directory / f"{name}.pem"))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(directory / f"{name}.pem"), append=True)
        cert.private_key_pem.write_to_path(str(directory / f"{name}-key.pem"))
        out[name] = directory / f"{name}.pem"
        out[f"{name}-key"] = directory / f"{name}-key.pem"
    return Pki(
        directory / "ca.pem",
        out["ingress"],
        out["ingress-key"],
        out["public"],
        out["public-key"],
        out["upstream"],
        out["upstream-key"],
    )


def ingress_block(pki: Pki, *, domains: list[str], extra: str = "") -> str:
    """An `agent_ingress:` section ({port_ingress} is filled by start_edge)."""
    return f"""
agent_ingress:
  address: 127.0.0.1:{{port_ingress}}
  tls:
    certificates: [{{{{cert: {pki.ingress_cert}, key: {pki.ingress_key}}}}}]
  domains: {json.dumps(domains)}
{extra}
"""


@dataclass
class Token:
    id: str
    token: str


@dataclass
class AgentEdge:
    """`edgeward serve` with an agent ingress."""

    edge: Edge
    directory: Path
    pki: Pki

    @property
    def web_port(self) -> int:
        return self.edge.ports["web"]

    @property
    def ingress_port(self) -> int:
        return self.edge.ports["ingress"]

    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    def token(self, *acl: str, description: str = "test") -> Token:
        args = [arg for rule in acl for arg in ("--acl", rule)]
        out = run_cli(
            "authtoken", "create", "--state-dir", str(self.state_dir), "--json",
            "--description", description, *args,
        )  # fmt: skip
        data = json.loads(out)
        return Token(data["id"], data["token"])

    def revoke(self, token: Token) -> None:
        run_cli("authtoken", "revoke", "--state-dir", str(self.state_dir), token.id)

    def agent(self, token: Token | None, *args: str, env: dict[str, str] | None = None) -> Agent:
        return start_agent(self, token, *args, env=env)

    def events(self, kind: str | None = None) -> list[dict[str, object]]:
        path = self.directory / "events.log"
        if not path.exists():
            return []
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r for r in records if kind is None or r.get("event") == kind]

    def wait_event(
        self, kind: str, timeout: float = TIMEOUT, **fields: object
    ) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.events(kind):
                if all(record.get(k) == v for k, v in fields.items()):
                    return record
            time.sleep(0.05)
        raise AssertionError(f"no {kind} event {fields} in {self.events()}")


def run_cli(*args: str) -> str:
    proc = subprocess.run(
        [*EDGEWARD, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@contextmanager
def agent_edge(
    directory: Path, pki: Pki, body: str, *, args: tuple[str, ...] = (), **values: object
) -> Iterator[AgentEdge]:
    """Run `edgeward serve` on `body` (an edge.yml with {port_web},
    {port_ingress} and {dir}); events go to {dir}/events.log."""
    text = (
        body + "\nstate_dir: {dir}/state\nevents: {dir}/events.log\naccess_log: {dir}/access.log\n"
    )
    edge = start_edge(directory, text, listeners=["web", "ingress"], args=args, **values)
    try:
        yield AgentEdge(edge, directory, pki)
    finally:
        edge.stop()


@dataclass
class Agent:
    """An `edgeward agent` process; its console lines are collected."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = TIMEOUT, start: int = 0) -> re.Match[str]:
        """The first console line from `start` matching `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[start:]:
                    match = regex.search(line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._pending()):
                    raise AssertionError(
                        f"no line matching {pattern!r} (exit {self.proc.poll()}):\n"
                        + "\n".join(self.lines)
                    )
                self._changed.wait(min(left, 0.2))

    def _pending(self) -> bool:
        return self.proc.stdout is not None and not self.proc.stdout.closed

    @property
    def url(self) -> str:
        return self.wait_for(r"^Forwarding (\S+) ->").group(1)

    def stop(self, timeout: float = TIMEOUT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def rss_peak_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")


def start_agent(
    edge: AgentEdge | None,
    token: Token | None,
    *args: str,
    env: dict[str, str] | None = None,
    server: str | None = None,
    ca: Path | None = None,
) -> Agent:
    base = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CONFIG_HOME": "/nonexistent"}
    base.pop("EDGEWARD_AUTHTOKEN", None)
    if token is not None:
        base["EDGEWARD_AUTHTOKEN"] = token.token
    base.update(env or {})
    command = [*EDGEWARD, "agent", *args]
    if args and args[0] in ("http", "tcp", "tls", "start"):
        if server or edge is not None:
            command += ["--server", server or f"localhost:{edge.ingress_port}"]  # type: ignore[union-attr]
        if ca or edge is not None:
            command += ["--ca", str(ca or edge.pki.ca)]  # type: ignore[union-attr]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=base
    )
    agent = Agent(proc)
    threading.Thread(target=agent._read, daemon=True).start()
    return agent


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def curl(
    url: str, port: int, pki: Pki | None = None, *args: str, timeout: float = TIMEOUT
) -> Response:
    """A request to `url` whose host resolves to 127.0.0.1:`port` (the
    edge's listener): real SNI and Host. Status 0 when no answer."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname
    command = ["curl", "-sS", "-D", "-", "--max-time", str(timeout)]
    command += ["--resolve", f"{host}:{port}:127.0.0.1"]
    if pki is not None:
        command += ["--cacert", str(pki.ca)]
    proc = subprocess.run(
        [*command, *args, url], capture_output=True, timeout=timeout + 5, check=False
    )
    out = proc.stdout
    if not out.startswith(b"HTTP/"):
        return Response(0, {"error": proc.stderr.decode(errors="replace")}, b"")
    while True:  # skip interim responses
        head, _, rest = out.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status >= 200 or not rest.startswith(b"HTTP/"):
            break
        out = rest
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode().strip().lower()] = value.decode().strip()
    return Response(status, headers, rest)


def public_port(url: str) -> int:
    from urllib.parse import urlsplit

    port = urlsplit(url).port
    assert port is not None
    return port


__all__ = ["free_port"]

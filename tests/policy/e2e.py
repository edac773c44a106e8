"""End-to-end support for the action tests: small HTTP servers run by the
test itself on 127.0.0.1 (the upstream, a JWKS server) and `edgeward serve`
in front of them with a policy, on either backend."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.proxy.proxy_support import Edge, start_edge

Reply = tuple[int, list[tuple[str, str]], bytes]
Route = Callable[["Handler"], Reply | None]  # None: the route wrote the response itself


@dataclass
class Server:
    """A threaded HTTP/1.1 server; `hits` counts requests per path."""

    port: int
    hits: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, object]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict[str, Route]
    record: Server

    def _serve(self) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("content-length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.record.hits[url.path] = self.record.hits.get(url.path, 0) + 1
        self.record.requests.append(
            {"path": url.path, "headers": [[k.lower(), v] for k, v in self.headers.items()]}
        )
        route = self.routes.get(url.path)
        reply = route(self) if route else (404, [], b"no such route\n")
        if reply is None:
            return
        status, headers, body = reply
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(routes: dict[str, Route]) -> Iterator[Server]:
    record = Server(0)
    handler = type("RouteHandler", (Handler,), {"routes": routes, "record": record})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    record.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def echo_headers(handler: Handler) -> Reply:
    """The request as the upstream got it, as JSON."""
    data = {
        "method": handler.command,
        "headers": [[k.lower(), v] for k, v in handler.headers.items()],
    }
    return 200, [("content-type", "application/json")], json.dumps(data).encode()


EDGE_CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: 127.0.0.1
    upstream: {upstream}
    traffic_policy_file: {policy}
"""


@contextlib.contextmanager
def running_edge(directory: Path, policy: str, upstream: str, backend: str) -> Iterator[Edge]:
    """`edgeward serve` on the given backend, with `policy` on one endpoint."""
    directory.mkdir(parents=True, exist_ok=True)
    policy_file = directory / "policy.yml"
    policy_file.write_text(policy)
    saved = os.environ.get("EDGEWARD_BACKEND")
    os.environ["EDGEWARD_BACKEND"] = backend  # start_edge passes the environment on
    try:
        edge = start_edge(directory, EDGE_CONFIG, upstream=upstream, policy=policy_file)
    finally:
        if saved is None:
            del os.environ["EDGEWARD_BACKEND"]
        else:
            os.environ["EDGEWARD_BACKEND"] = saved
    try:
        yield edge
    finally:
        edge.stop()


def events(edge: Edge) -> list[dict[str, object]]:
    """The policy events the edge printed (the JSON lines of its log that
    have a verdict; the server log is JSON lines too). Events are written
    by the output's thread, which gathers what comes within 50 ms: read
    until the log stops growing."""
    text, deadline = edge.log_text(), time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.15)
        again = edge.log_text()
        if again == text:
            break
        text = again
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if "verdict" in record:
                out.append(record)
    return out


BACKENDS = ["rust", "python"]

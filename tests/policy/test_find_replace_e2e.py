"""The find-replace actions and the on_event_stream_message phase through
`edgeward serve`, against a real upstream, on both backends: large
streamed responses whose matches straddle the upstream's writes (chunked
and with a Content-Length, HTTP/1.1 and HTTP/2 clients), an SSE stream
changed message by message as it streams, request bodies (chunked and
with a Content-Length) replaced on their way up."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.policy.e2e import BACKENDS, Handler, Reply, running_edge, serve

POLICY = r"""
on_http_request:
  - expressions: ["req.url.path == '/echo'"]
    actions:
      - type: request-body-find-replace
        config:
          replacements:
            - from: '"api_key":\s*"[^"]*"'
              to: '"api_key": "[REDACTED]"'
            - from: '[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}'
              to: '[EMAIL]'
on_http_response:
  - expressions: ["req.url.path == '/big'"]
    actions:
      - type: response-body-find-replace
        config:
          replacements:
            - from: '\b\d{3}-\d{2}-\d{4}\b'
              to: '[SSN]'
            - from: 'secret-(\w+)'
              to: 'hidden-${req.method}-$1'
on_event_stream_message:
  - expressions: ["sse.event != 'raw'"]
    actions:
      - type: sse-find-replace
        config:
          replacements:
            - from: '\d{3}-\d{2}-\d{4}'
              to: '[SSN of ${sse.id}]'
            - field: retry
              from: '\d+'
              to: '5000'
"""

# ~2 MiB whose matches fall across the upstream's 4093-byte writes
BIG = b"".join(
    b"row %06d ssn 123-45-%04d token secret-%s tail\n" % (i, i % 10000, b"abc" * (i % 4 + 1))
    for i in range(40000)
)
WRITE = 4093


def expected_big(method: str = "GET") -> bytes:
    out = re.sub(rb"\b\d{3}-\d{2}-\d{4}\b", b"[SSN]", BIG)
    return re.sub(rb"secret-(\w+)", b"hidden-" + method.encode() + rb"-\1", out)


def big_route(handler: Handler) -> None:
    chunked = handler.query.get("framing") == "chunked"
    handler.send_response(200)
    handler.send_header("content-type", "text/plain")
    if chunked:
        handler.send_header("transfer-encoding", "chunked")
    else:
        handler.send_header("content-length", str(len(BIG)))
    handler.end_headers()
    if handler.command == "HEAD":
        return
    for i in range(0, len(BIG), WRITE):
        piece = BIG[i : i + WRITE]
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        handler.wfile.flush()
    if chunked:
        handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def read_chunked(handler: Handler) -> tuple[bytes, int]:
    """The request body (chunked), and how many chunks carried it."""
    body, count = b"", 0
    while True:
        size = int(handler.rfile.readline().split(b";")[0], 16)
        if size == 0:
            while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return body, count
        body += handler.rfile.read(size)
        handler.rfile.readline()
        count += 1


def echo_route(handler: Handler) -> Reply:
    framing = "length"
    body = handler.body
    if handler.headers.get("transfer-encoding", "").lower() == "chunked":
        body, _ = read_chunked(handler)
        framing = "chunked"
    return 200, [("content-type", "application/json"), ("x-framing", framing)], body


RELEASE = threading.Event()
SSE_UPSTREAM = [  # as the upstream writes it: pieces that split lines and matches
    b"retry: 10\n\n: keep-alive\n\nid: 1\ndata: first 123-4",
    b"5-6789 end\n",
    b"\n",  # event 1 complete: the client must see it before the rest comes
    b"id: 2\r\ndata: line one\r\ndata: ssn 987-65-4321\r\n\r\n"
    b"event: raw\ndata: 111-22-3333\n\nid: 3\nda",
    b"ta: last 555-44-3333\n\n",
]
SSE_CLIENT = (
    b"retry: 5000\n\n: keep-alive\n\nid: 1\ndata: first [SSN of 1] end\n\n"
    b"id: 2\r\ndata: line one\r\ndata: ssn [SSN of 2]\r\n\r\n"
    b"event: raw\ndata: 111-22-3333\n\n"
    b"id: 3\ndata: last [SSN of 3]\n\n"
)


def sse_route(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("transfer-encoding", "chunked")
    handler.end_headers()
    for i, piece in enumerate(SSE_UPSTREAM):
        late = i == 3 and not RELEASE.wait(10)  # the client never saw event 1 on its own
        data = b"data: too late\n\n" if late else piece
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        handler.wfile.flush()
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


@pytest.fixture(scope="module", params=BACKENDS)
def edge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if request.param == "rust":
        pytest.importorskip("edgeward_native")
    routes = {"/big": big_route, "/echo": echo_route, "/sse": sse_route}
    with serve(routes) as upstream:  # type: ignore[arg-type]
        directory = tmp_path_factory.mktemp(f"find-replace-{request.param}")
        with running_edge(directory, POLICY, upstream.url, request.param) as running:
            yield running


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_large_streamed_response_replaced_across_writes(edge: Any, framing: str) -> None:
    r = httpx.get(edge.url(f"/big?framing={framing}"), timeout=30)
    assert r.status_code == 200
    assert "content-length" not in r.headers  # reframed: the length changed
    assert r.content == expected_big()


def test_large_response_over_http2(edge: Any) -> None:
    out = subprocess.run(
        ["curl", "-s", "--http2-prior-knowledge", edge.url("/big?framing=chunked")],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert out.stdout == expected_big()


def test_head_and_other_paths_are_left_alone(edge: Any) -> None:
    head = httpx.head(edge.url("/big?framing=length"), timeout=10)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(BIG))


BODY = b'{"api_key": "sk-abc123secret", "user_email": "john.doe@example.com", "m": "hi"}'
REPLACED = b'{"api_key": "[REDACTED]", "user_email": "[EMAIL]", "m": "hi"}'


def test_request_body_with_a_content_length(edge: Any) -> None:
    r = httpx.post(edge.url("/echo"), content=BODY, timeout=10)
    assert r.status_code == 200
    assert r.content == REPLACED
    assert r.headers["x-framing"] == "chunked"  # the new length is not known before the end


def test_request_body_chunked_splitting_matches(edge: Any) -> None:
    def pieces() -> Iterator[bytes]:
        for i in range(0, len(BODY), 5):
            yield BODY[i : i + 5]

    r = httpx.post(edge.url("/echo"), content=pieces(), timeout=10)
    assert r.status_code == 200 and r.content == REPLACED
    big = b"[" + b",".join([BODY] * 3000) + b"]"  # ~240 KiB through the filter
    r = httpx.post(edge.url("/echo"), content=big, timeout=30)
    assert json.loads(r.content) == [json.loads(REPLACED)] * 3000


@pytest.mark.parametrize("http2", [False, True])
def test_sse_messages_changed_as_they_stream(edge: Any, http2: bool) -> None:
    RELEASE.clear()
    seen = b""
    if http2:
        curl = subprocess.Popen(
            ["curl", "-sN", "--http2-prior-knowledge", edge.url("/sse")], stdout=subprocess.PIPE
        )
        assert curl.stdout is not None
        while b"end\n\n" not in seen:  # event 1 arrives while the upstream holds the rest
            piece = curl.stdout.read1(65536)
            assert piece, seen
            seen += piece
        RELEASE.set()
        seen += curl.stdout.read()
        assert curl.wait(10) == 0
    else:
        with httpx.stream("GET", edge.url("/sse"), timeout=15) as r:
            assert r.headers["content-type"] == "text/event-stream"
            chunks = r.iter_raw()
            while b"end\n\n" not in seen:
                seen += next(chunks)
            RELEASE.set()
            seen += b"".join(chunks)
    assert seen == SSE_CLIENT


def test_request_body_over_http2(edge: Any) -> None:
    out = subprocess.run(
        ["curl", "-s", "--http2-prior-knowledge", "--data-binary", "@-", edge.url("/echo")],
        input=BODY,
        capture_output=True,
        timeout=10,
        check=True,
    )
    assert out.stdout == REPLACED

"""compress-response: negotiation, the streaming filters, the sans-IO action
and the running edge (real clients decoding real compressed streams)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import zlib
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import brotli
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.policy.e2e import BACKENDS, Handler, Reply, running_edge, serve
from tests.policy.helpers import ENDPOINT, Harness, conn, drive, load, load_error, one

from edgeward.hooks import (
    BodyFilter,
    Forward,
    LocalResponse,
    PassResponse,
    RequestHead,
    ResponseHead,
)
from edgeward.policy.actions.compress_response import compressor, negotiate

POLICY = """
on_http_response:
  - actions:
      - type: compress-response
  - actions:
      - type: set-vars
        config: {vars: [{c: "${actions.ngrok.compress}"}]}
      - type: add-headers
        config:
          headers:
            x-coding: "${vars.c.negotiated_algorithm}|${vars.c.already_compressed}"
"""

TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(400))


def decode(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "deflate":
        return zlib.decompress(data)  # HTTP's deflate is the zlib format
    return bytes(brotli.decompress(data))


def respond(
    h: Harness,
    *,
    accept: str | None = "gzip, deflate, br",
    method: str = "GET",
    status: int = 200,
    headers: Sequence[tuple[str, str]] = (("content-type", "text/plain; charset=utf-8"),),
) -> tuple[ResponseHead, BodyFilter | None]:
    """Run both phases; the response head and body filter the client gets."""
    request_headers = [(b"accept-encoding", accept.encode())] if accept is not None else []
    head = RequestHead(method.encode(), b"/", b"app.example.com", b"https", request_headers, b"1.1")
    exchange = h.policy.begin(conn(), ENDPOINT, head, "req-1")
    outcome = drive(exchange.on_http_request(head), None)
    if isinstance(outcome, LocalResponse):  # the edge answered (custom-response)
        response = ResponseHead(outcome.status, list(outcome.headers))
    else:
        assert isinstance(outcome, Forward)
        response = ResponseHead(status, [(n.encode(), v.encode()) for n, v in headers])
    final = drive(exchange.on_http_response(response), None)
    assert isinstance(final, PassResponse)
    return final.head, final.body_filter


def header(head: ResponseHead, name: str) -> list[str]:
    return [v.decode() for n, v in head.headers if n == name.encode()]


@pytest.mark.parametrize(
    ("accept", "offered", "chosen"),
    [
        ("gzip;q=1.0, br; q=0.5, *;q=0", ["gzip", "deflate", "br"], "gzip"),  # the docs' example
        ("br;q=1, gzip;q=1", ["gzip", "deflate", "br"], "gzip"),  # tie: policy order
        ("br;q=1, gzip;q=1", ["br", "gzip"], "br"),
        ("gzip;q=0.2, deflate;q=0.8", ["gzip", "deflate", "br"], "deflate"),
        ("*", ["br", "gzip"], "br"),
        ("gzip;q=0, *", ["gzip", "br"], "br"),
        ("GZIP", ["gzip"], "gzip"),
        ("x-gzip", ["gzip"], "gzip"),
        ("identity", ["gzip", "br"], None),
        ("br;q=0", ["br"], None),
        ("gzip;q=abc", ["gzip"], None),
        ("compress", ["gzip", "br"], None),
        ("", ["gzip"], None),
    ],
)
def test_negotiation(accept: str, offered: list[str], chosen: str | None) -> None:
    assert negotiate([accept.encode()], offered) == chosen


def test_accept_encoding_headers_are_combined() -> None:
    assert negotiate([b"deflate;q=0.5", b"br"], ["gzip", "deflate", "br"]) == "br"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_compresses_with_the_negotiated_coding(coding: str) -> None:
    h = load(POLICY)
    head, body_filter = respond(
        h,
        accept=f"{coding}, identity;q=0.1",
        headers=[
            ("content-type", "application/json"),
            ("content-length", str(len(TEXT))),
            ("etag", '"v1"'),
        ],
    )
    assert body_filter is not None
    assert header(head, "content-encoding") == [coding]
    assert header(head, "content-length") == []
    assert header(head, "vary") == ["Accept-Encoding"]
    assert header(head, "etag") == ['W/"v1"']  # no longer these exact bytes
    assert header(head, "x-coding") == [f"{coding}|false"]
    out = b"".join(body_filter.feed(TEXT[i : i + 1000]) for i in range(0, len(TEXT), 1000))
    out += body_filter.finish()
    assert decode(coding, out) == TEXT and len(out) < len(TEXT) / 4


@pytest.mark.parametrize(
    ("kwargs", "already"),
    [
        ({"method": "HEAD"}, False),
        ({"status": 204}, False),
        ({"status": 304}, False),
        (
            {
                "status": 206,
                "headers": [("content-type", "text/plain"), ("content-range", "bytes 0-9/99")],
            },
            False,
        ),
        ({"headers": [("content-type", "text/plain"), ("content-encoding", "gzip")]}, True),
        (
            {
                "headers": [
                    ("content-type", "text/plain"),
                    ("cache-control", "public, no-transform"),
                ]
            },
            False,
        ),
        ({"headers": [("content-type", "text/plain"), ("content-length", "255")]}, False),
        ({"headers": [("content-type", "image/png")]}, False),
        ({"headers": [("content-type", "application/zip")]}, False),
        ({"headers": []}, False),
        ({"accept": None}, False),
        ({"accept": "identity"}, False),
    ],
)
def test_left_alone(kwargs: dict[str, Any], already: bool) -> None:
    h = load(POLICY)
    head, body_filter = respond(h, **kwargs)
    assert body_filter is None
    assert header(head, "x-coding") == [f"|{str(already).lower()}"]
    assert header(head, "content-encoding") == (["gzip"] if already else [])


def test_vary_is_set_whenever_the_answer_depended_on_accept_encoding() -> None:
    h = load(POLICY)
    head, _ = respond(h, accept=None)  # compressible but not accepted
    assert header(head, "vary") == ["Accept-Encoding"]
    head, _ = respond(h, headers=[("content-type", "image/png")])  # not compressible at all
    assert header(head, "vary") == []
    head, _ = respond(
        h, headers=[("content-type", "text/html"), ("vary", "Origin, accept-encoding")]
    )
    assert header(head, "vary") == ["Origin, accept-encoding"]
    head, _ = respond(h, headers=[("content-type", "text/html"), ("vary", "Origin")])
    assert header(head, "vary") == ["Origin", "Accept-Encoding"]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "text/css",
        "application/json",
        "application/problem+json",
        "application/xml",
        "application/atom+xml",
        "application/javascript",
        "image/svg+xml",
        "text/event-stream",
    ],
)
def test_compressible_types(content_type: str) -> None:
    _, body_filter = respond(load(POLICY), headers=[("content-type", content_type)])
    assert body_filter is not None


def test_configured_algorithms_only() -> None:
    h = load(
        "on_http_response: [{actions: [{type: compress-response, config: {algorithms: [br]}}]}]"
    )
    assert respond(h, accept="gzip")[1] is None
    head, _ = respond(h, accept="gzip, br;q=0.1")
    assert header(head, "content-encoding") == ["br"]


def test_edge_made_responses_are_compressed_too() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: custom-response
                config:
                  status_code: 200
                  headers: {content-type: text/plain}
                  body: "%s"
        on_http_response:
          - actions: [{type: compress-response}]
        """
        % ("hello " * 100)
    )
    _, body_filter = respond(h, accept="gzip")
    assert body_filter is not None


def test_policy_test_cases_see_the_compressed_body() -> None:
    from edgeward.document import parse_document
    from edgeward.policy.cases import CaseClock, read_cases, run_case

    h = load(POLICY)
    cases, _ = read_cases(
        parse_document(
            json.dumps(
                {
                    "cases": [
                        {
                            "request": {
                                "url": "https://a.test/",
                                "headers": {"accept-encoding": "gzip"},
                            },
                            "response": {
                                "headers": {"content-type": "text/plain"},
                                "body": TEXT.decode(),
                            },
                            "expect": {"headers": {"content-encoding": "gzip"}},
                        }
                    ]
                }
            ),
            "cases.json",
        )
    )
    out = run_case(h.policy, cases[0], CaseClock(), [])
    assert out.passed, out.failures
    assert gzip.decompress(out.body) == TEXT


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("algorithms: [zstd]", "unknown algorithm 'zstd'"),
        ("algorithms: [gzip, gzip]", "listed twice"),
        ("algorithms: []", "at least 1"),
        ("level: 9", "unknown field 'level'"),
    ],
)
def test_load_errors(config: str, message: str) -> None:
    err = load_error(
        f"on_http_response: [{{actions: [{{type: compress-response, config: {{{config}}}}}]}}]"
    )
    assert message in str(err) and "policy.yml:1:" in str(err)


def test_response_phase_only_and_compress_warns() -> None:
    err = load_error("on_http_request: [{actions: [{type: compress-response}]}]")
    assert "on_http_request" in str(err)
    h = load(one("compress-response", "algorithms: [compress, gzip]", phase="on_http_response"))
    assert any("LZW" in w.message for w in h.policy.warnings)
    assert respond(h, accept="compress")[1] is None


@given(
    coding=st.sampled_from(["gzip", "deflate", "br"]),
    chunks=st.lists(st.binary(max_size=3000), max_size=12),
)
def test_filters_round_trip_any_chunking(coding: str, chunks: list[bytes]) -> None:
    f = compressor(coding)
    out = b"".join(f.feed(c) for c in chunks) + f.finish()
    assert decode(coding, out) == b"".join(chunks)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_each_chunk_is_flushed(coding: str) -> None:
    """A client can decode every chunk as it arrives (SSE stays live)."""
    f = compressor(coding)
    if coding == "br":
        d: Any = brotli.Decompressor()
        step = d.process
    else:
        d = zlib.decompressobj(31 if coding == "gzip" else 15)
        step = d.decompress
    for i in range(5):
        event = b"data: event %d\n\n" % i
        assert step(f.feed(event)) == event


MEMORY_PROBE = """
import os, sys
from edgeward.policy.actions.compress_response import compressor

def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

chunk = os.urandom(32768) + bytes(range(256)) * 128  # 64 KiB, half incompressible
before = peak_kib()
f = compressor(sys.argv[1])
for _ in range(320):  # 20 MiB through one response
    f.feed(chunk)
f.finish()
print(peak_kib() - before)
"""


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_memory_stays_bounded_while_streaming(coding: str) -> None:
    """The process's peak resident memory (the C libraries' too) barely
    moves while 20 MiB stream through one compressor."""
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, coding],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(done.stdout) < 8 * 1024, done.stdout


# --- end to end ---------------------------------------------------------------------------


RELEASE = threading.Event()


def json_route(handler: Handler) -> Reply:
    n = int(handler.query.get("n", "5000"))
    body = json.dumps({"items": ["x" * 10] * (n // 15)}).encode()
    return 200, [("content-type", "application/json")], body


def png_route(handler: Handler) -> Reply:
    return 200, [("content-type", "image/png")], b"\x89PNG" + bytes(4000)


def encoded_route(handler: Handler) -> Reply:
    return 200, [("content-type", "text/plain"), ("content-encoding", "gzip")], gzip.compress(TEXT)


def stream_route(handler: Handler) -> None:
    """Server-sent events: the second waits until the test saw the first."""
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("transfer-encoding", "chunked")
    handler.end_headers()
    for i, wait in enumerate((False, True)):
        event = b"data: event %d\n\n" % i
        if wait and not RELEASE.wait(5):  # the client never saw event 0 on its own
            event = b"data: too late\n\n"
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        handler.wfile.flush()
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


@pytest.fixture(scope="module", params=BACKENDS)
def edge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if request.param == "rust":
        pytest.importorskip("edgeward_native")
    routes = {
        "/json": json_route,
        "/png": png_route,
        "/encoded": encoded_route,
        "/stream": stream_route,
    }
    with serve(routes) as upstream:  # type: ignore[arg-type]
        directory = tmp_path_factory.mktemp(f"compress-{request.param}")
        with running_edge(directory, POLICY, upstream.url, request.param) as running:
            yield running


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_edge_compresses_for_httpx(edge: Any, coding: str) -> None:
    r = httpx.get(edge.url("/json?n=20000"), headers={"accept-encoding": coding})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == coding and "content-length" not in r.headers
    assert r.headers["vary"] == "Accept-Encoding" and r.headers["x-coding"] == f"{coding}|false"
    assert len(r.json()["items"]) == 20000 // 15  # httpx decoded it
    assert r.num_bytes_downloaded < len(r.content) / 10  # what crossed the wire


def test_edge_leaves_what_it_should_alone(edge: Any) -> None:
    png = httpx.get(edge.url("/png"), headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in png.headers and png.headers["content-length"] == "4004"
    already = httpx.get(edge.url("/encoded"), headers={"accept-encoding": "br"})
    assert already.headers["content-encoding"] == "gzip" and already.content == TEXT
    assert already.headers["x-coding"] == "|true"
    head = httpx.head(edge.url("/json"), headers={"accept-encoding": "gzip"})
    assert head.status_code == 200 and "content-encoding" not in head.headers


@pytest.mark.parametrize("http2", [False, True])
def test_edge_with_curl(edge: Any, http2: bool) -> None:
    args = ["--http2-prior-knowledge"] if http2 else []
    out = subprocess.run(
        ["curl", "-s", "--compressed", "-D", "-", *args, edge.url("/json?n=3000")],
        capture_output=True,
        timeout=10,
        check=True,
    )
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert b"content-encoding: " in head.lower()
    assert len(json.loads(body)["items"]) == 200


def test_edge_streams_compressed_events(edge: Any) -> None:
    RELEASE.clear()
    with httpx.stream(
        "GET", edge.url("/stream"), headers={"accept-encoding": "gzip"}, timeout=10
    ) as r:
        assert r.headers["content-encoding"] == "gzip"
        chunks: Generator[bytes] = r.iter_bytes()
        seen = b""
        while b"event 0" not in seen:
            seen += next(chunks)  # arrives while the upstream still holds event 1
        RELEASE.set()
        seen += b"".join(chunks)
    assert seen == b"data: event 0\n\ndata: event 1\n\n"

"""What the agent prints: the public URLs, then one line per request (time,
method, path, status, duration) or per tcp/tls connection, like the console
a developer expects from a tunnel tool.

The agent copies bytes and does not speak HTTP itself; `HttpObserver` reads
the two directions of a stream as they go by (llhttp, through httptools, as
the edge's own codec) to find where each request and response begins and
ends. Observing is best effort: anything it cannot follow (an upgraded
connection, a malformed message) only ends the lines for that stream; the
bytes always pass unchanged.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import httptools

from edgeward.linefile import printable, rfc3339


@dataclass(frozen=True, slots=True)
class RequestLine:
    started: float  # unix time
    method: str
    path: str
    status: int
    duration: float  # seconds, request head to the end of the response


class Console:
    """Lines on a stream (stdout), flushed at once; the error the agent
    exits with on another (stderr), where a redirected stdout leaves it seen."""

    def __init__(
        self, out: TextIO | None = None, *, err: TextIO | None = None, quiet: bool = False
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet  # no per-request lines (benchmarks)

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def info(self, text: str) -> None:
        self.line(f"edgeward agent: {text}")

    def fatal(self, text: str) -> None:
        """Why the agent exits 1 (a refused authtoken or bind)."""
        print(f"edgeward agent: {text}", file=self.err, flush=True)

    def forwarding(self, public_url: str, upstream: str) -> None:
        self.line(f"Forwarding {public_url} -> {upstream}")

    def request(self, req: RequestLine) -> None:
        if not self.quiet:
            self.line(
                f"{rfc3339(req.started)}  {printable(req.method):<7} {printable(req.path)}"
                f"  {req.status}  {req.duration * 1000:.1f} ms"
            )

    def connection(
        self, kind: str, client: str, started: float, counts: tuple[int, int], error: str = ""
    ) -> None:
        """A tcp/tls connection (or a stream whose upstream was down) ended."""
        received, sent = counts
        if not self.quiet or error:
            tail = f"  {error}" if error else ""
            self.line(
                f"{rfc3339(started)}  {kind.upper():<7} {client}  {time.time() - started:.1f} s"
                f"  in {received} B out {sent} B{tail}"
            )


class _Stop(Exception):
    """Stops observing a stream (an upgrade)."""


class _HeadAnswered(Exception):
    """A response to HEAD: its head is all of it (llhttp, not told the
    method, would wait for the body its Content-Length announces)."""


class HttpObserver:
    """Follows the requests and responses of one stream and reports each
    exchange once its response has ended."""

    __slots__ = (
        "_pending",
        "_report",
        "_request",
        "_request_parser",
        "_response_parser",
        "_status",
        "_url",
        "active",
    )

    def __init__(self, report: Callable[[RequestLine], None]) -> None:
        self._report = report
        self._pending: deque[tuple[str, str, float, float]] = deque()  # method, path, t0, unix
        self._url = b""
        self._status = 0
        self._request_parser = httptools.HttpRequestParser(_RequestSide(self))
        self._response_parser = httptools.HttpResponseParser(_ResponseSide(self))
        self.active = True

    def requests(self, data: bytes) -> None:
        """Bytes the edge sent (requests)."""
        if not self.active:
            return
        try:
            self._request_parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # the response says whether it happened
        except (httptools.HttpParserError, _Stop):
            self.active = False

    def responses(self, data: bytes) -> None:
        """Bytes the upstream answered."""
        if not self.active:
            return
        try:
            self._response_parser.feed_data(data)
        except _HeadAnswered:  # a fresh parser for the next response
            self._response_parser = httptools.HttpResponseParser(_ResponseSide(self))
        except (httptools.HttpParserError, httptools.HttpParserUpgrade, _Stop):
            self.active = False

    # --- parser callbacks ----------------------------------------------------------

    def _request_url(self, part: bytes) -> None:
        self._url += part

    def _request_head(self) -> None:
        method = self._request_parser.get_method().decode("latin-1")
        self._pending.append((method, self._url.decode("latin-1"), time.monotonic(), time.time()))
        self._url = b""

    def _response_head(self) -> None:
        status = self._response_parser.get_status_code()
        self._status = status
        if status == 101:
            self._response_done()
            raise _Stop  # an upgraded stream: bytes from now on
        if status >= 200 and self._pending and self._pending[0][0] == "HEAD":
            self._response_done()
            raise _HeadAnswered

    def _response_done(self) -> None:
        if 100 <= self._status < 200 and self._status != 101:
            return  # an interim response: the final one follows
        if not self._pending:
            return
        method, path, t0, started = self._pending.popleft()
        self._report(RequestLine(started, method, path, self._status, time.monotonic() - t0))


class _RequestSide:
    __slots__ = ("observer",)

    def __init__(self, observer: HttpObserver) -> None:
        self.observer = observer

    def on_url(self, url: bytes) -> None:
        self.observer._request_url(url)

    def on_headers_complete(self) -> None:
        self.observer._request_head()


class _ResponseSide:
    __slots__ = ("observer",)

    def __init__(self, observer: HttpObserver) -> None:
        self.observer = observer

    def on_headers_complete(self) -> None:
        self.observer._response_head()

    def on_message_complete(self) -> None:
        self.observer._response_done()

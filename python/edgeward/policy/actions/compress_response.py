"""`compress-response`: compress the response body as it streams.

The coding is negotiated from the request's `Accept-Encoding` (RFC 9110
§12.5.3: the acceptable coding with the highest q-value; on a tie, the first
in `algorithms`). Left alone: responses to HEAD, 1xx/204/206/304, bodies
already encoded, `Cache-Control: no-transform`, content types that do not
compress (images, archives...), and bodies known to be under 256 bytes.
When it compresses, it sets `Content-Encoding`, drops `Content-Length`,
weakens a strong `ETag` and adds `Vary: Accept-Encoding` (also when it
declined only because of the client's `Accept-Encoding`, so caches keep the
variants apart).

The body goes through a `BodyFilter` chunk by chunk, each chunk flushed
(Z_SYNC_FLUSH / brotli flush) so streamed responses (SSE) are not held
back; memory per response is the compressor's window (zlib 32 KiB, brotli
256 KiB). Results: `actions.ngrok.compress.{already_compressed,
negotiated_algorithm}`.

`compress` (LZW) is accepted in `algorithms` for compatibility but never
chosen: no current client asks for it and no maintained library writes it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Self

import brotli

from edgeward.document import did_you_mean
from edgeward.hooks import Header
from edgeward.policy.actions._body import pipeline, weaken_etag
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)

ALGORITHMS = ("gzip", "deflate", "br", "compress")  # the public default, in its order
IMPLEMENTED = frozenset({"gzip", "deflate", "br"})
MIN_LENGTH = 256  # bytes; smaller bodies gain nothing from a coding's framing

_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/x-ndjson",
        "application/graphql",
        "application/wasm",
        "application/x-www-form-urlencoded",
        "application/vnd.ms-fontobject",
        "image/svg+xml",
        "image/x-icon",
        "image/bmp",
        "font/ttf",
        "font/otf",
    }
)
_SKIP_STATUS = frozenset({204, 206, 304})


def compressible(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def negotiate(accept_encoding: Sequence[bytes], offered: Sequence[str]) -> str | None:
    """The coding of `offered` the client accepts with the highest q-value
    (ties: `offered` order), or None. `*` stands for codings not named;
    q=0 refuses; `x-gzip` is gzip (RFC 9110 §8.4.1.3)."""
    weights: dict[str, float] = {}
    for header in accept_encoding:
        for item in header.decode("latin-1").split(","):
            coding, _, params = item.partition(";")
            coding = coding.strip().lower()
            if not coding:
                continue
            q = 1.0
            for param in params.split(";"):
                name, _, value = param.partition("=")
                if name.strip().lower() == "q":
                    try:
                        q = min(max(float(value.strip()), 0.0), 1.0)
                    except ValueError:
                        q = 0.0
            coding = "gzip" if coding == "x-gzip" else coding
            weights[coding] = max(q, weights.get(coding, 0.0))
    best: str | None = None
    best_q = 0.0
    for coding in offered:
        q = weights.get(coding, weights.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


class _Zlib:
    """gzip (wbits 31) or HTTP's `deflate`, the zlib format (wbits 15)."""

    __slots__ = ("_c",)

    def __init__(self, wbits: int) -> None:
        self._c = zlib.compressobj(6, zlib.DEFLATED, wbits)

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        return self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._c.flush(zlib.Z_FINISH)


class _Brotli:
    __slots__ = ("_c",)

    def __init__(self) -> None:
        # Quality 4: the usual choice for compressing on the fly; a 256 KiB
        # window bounds memory per response.
        self._c = brotli.Compressor(quality=4, lgwin=18)

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        out: bytes = self._c.process(data) + self._c.flush()
        return out

    def finish(self) -> bytes:
        out: bytes = self._c.finish()
        return out


def compressor(coding: str) -> _Zlib | _Brotli:
    if coding == "br":
        return _Brotli()
    return _Zlib(31 if coding == "gzip" else 15)


class CompressResponse(Action):
    type = "compress-response"
    phases = frozenset({Phase.HTTP_RESPONSE})
    result_key = "compress"

    def __init__(self, algorithms: Sequence[str]) -> None:
        self.algorithms = tuple(a for a in algorithms if a in IMPLEMENTED)

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        algorithms = config.string_list("algorithms", min_items=1)
        if algorithms is None:
            return cls(ALGORITHMS)
        for name in algorithms:
            if name not in ALGORITHMS:
                hint = did_you_mean(name, ALGORITHMS)
                config.fail(
                    "algorithms", f"unknown algorithm {name!r}{hint} ({', '.join(ALGORITHMS)})"
                )
            if algorithms.count(name) > 1:
                config.fail("algorithms", f"algorithm {name!r} is listed twice")
        if "compress" in algorithms:
            config.warn("algorithms", "'compress' (LZW) is accepted but never used by edgeward")
        return cls(algorithms)

    def apply(self, ctx: ActionContext) -> Decision | None:
        response, received = ctx.response, ctx.received
        assert response is not None and received is not None
        headers = response.headers
        encoded = any(
            n == b"content-encoding" and v.strip().lower() != b"identity" for n, v in headers
        )
        coding: str | None = None
        if not encoded and self._eligible(received.method, response.status, headers):
            accept = [v for n, v in received.headers if n == b"accept-encoding"]
            coding = negotiate(accept, self.algorithms)
            _add_vary(headers)
            if coding is not None:
                headers[:] = [
                    weaken_etag(h)
                    for h in headers
                    if h[0] not in (b"content-length", b"content-encoding")
                ]
                headers.append((b"content-encoding", coding.encode()))
                # after the phase's text filters (find-replace, SSE), whatever their order
                pipeline(ctx).encoder = compressor(coding)
        ctx.record(
            "compress", {"already_compressed": encoded, "negotiated_algorithm": coding or ""}
        )
        return None

    @staticmethod
    def _eligible(method: bytes, status: int, headers: list[Header]) -> bool:
        if method == b"HEAD" or status < 200 or status in _SKIP_STATUS:
            return False
        content_type = b""
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"content-range" or (
                name == b"cache-control" and b"no-transform" in value.lower()
            ):
                return False
            elif name == b"content-length":
                try:
                    if int(value) < MIN_LENGTH:
                        return False
                except ValueError:
                    return False
        return compressible(content_type)


def _add_vary(headers: list[Header]) -> None:
    for name, value in headers:
        if name == b"vary":
            tokens = {t.strip().lower() for t in value.split(b",")}
            if b"accept-encoding" in tokens or b"*" in tokens:
                return
    headers.append((b"vary", b"Accept-Encoding"))

"""Which HTTP/1.1 codec the proxy uses on each side (`--http1 fast|h11`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Literal

from edgeward.http1.codec import Codec, Limits

CodecKind = Literal["fast", "h11"]
CodecFactory = Callable[[], Codec]

# upstream responses: generous, but still bounded
_UPSTREAM_LIMITS = Limits(
    max_header_bytes=256 * 1024, max_header_count=1000, max_target_length=64 * 1024
)


def codec_factories(kind: CodecKind, limits: Limits) -> tuple[CodecFactory, CodecFactory]:
    """(server side, client side) codec constructors. "fast" falls back to
    the h11 reference when the fast path is not built."""
    server_cls, client_cls = _classes(kind)

    def server() -> Codec:
        return server_cls(limits)  # type: ignore[no-any-return]

    def client() -> Codec:
        return client_cls(_UPSTREAM_LIMITS)  # type: ignore[no-any-return]

    return server, client


def _classes(kind: CodecKind) -> tuple[type, type]:
    if kind == "fast":
        try:
            fast = importlib.import_module("edgeward.http1.fast")
            return fast.FastServerCodec, fast.FastClientCodec
        except (ImportError, AttributeError):
            pass
    from edgeward.http1.h11codec import H11ClientCodec, H11ServerCodec

    return H11ServerCodec, H11ClientCodec

"""Which HTTP/1.1 codec the proxy uses on each side (`--http1 fast|h11`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from edgeward.http1.codec import Codec

CodecKind = Literal["fast", "h11"]
CodecFactory = Callable[[], Codec]


def codec_factories(kind: CodecKind, max_header_bytes: int, max_header_count: int) -> tuple[CodecFactory, CodecFactory]:
    """(server side, client side) codec constructors."""
    from edgeward.proxy import _h11shim as mod

    def server() -> Codec:
        return mod.ServerCodec(max_header_bytes, max_header_count)

    def client() -> Codec:
        # upstream responses: generous, but still bounded
        return mod.ClientCodec(max(max_header_bytes, 256 * 1024), 1000)

    return server, client

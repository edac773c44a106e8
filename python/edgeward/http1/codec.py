"""The interface every HTTP/1.1 codec implements (a subset of h11's)."""

from __future__ import annotations

from typing import Protocol

from edgeward.http1.events import Event, _Sentinel


class Limits(Protocol):
    max_header_bytes: int  # request/status line + headers
    max_header_count: int


class Codec(Protocol):
    """One side of one HTTP/1.1 connection: `ServerCodec` parses requests and
    serialises responses; `ClientCodec` the other way round."""

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; b"" means the peer closed its side."""

    def next_event(self) -> Event | _Sentinel:
        """The next event, `NEED_DATA` or `PAUSED`. Raises `ProtocolError`."""

    def send(self, event: Event) -> bytes:
        """Serialise an outgoing event to bytes for the wire."""

    def start_next_cycle(self) -> None:
        """Both messages of the exchange are done; reuse the connection."""

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another exchange."""

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received past the last message (after an Upgrade/101 or
        CONNECT), and whether the peer closed."""

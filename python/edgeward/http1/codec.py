"""The interface every HTTP/1.1 codec implements (a subset of h11's), and the
limits each codec enforces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from edgeward.http1.events import Event, State, _Sentinel


@dataclass(frozen=True, slots=True)
class Limits:
    """What a codec accepts from its peer; exceeding one is a `ProtocolError`
    with the status in brackets."""

    max_header_bytes: int = 16 * 1024
    """Request/status line plus header fields, up to and including the blank
    line that ends them [431]. Trailers are held to the same bound."""
    max_header_count: int = 100
    """Header field lines of one head (or one trailer section) [431]."""
    max_target_length: int = 8 * 1024
    """Length of the request-target [414]."""


DEFAULT_LIMITS = Limits()


class Codec(Protocol):
    """One side of one HTTP/1.1 connection: a server codec parses requests and
    serialises responses; a client codec the other way round."""

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; b"" means the peer closed its side."""

    def next_event(self) -> Event | _Sentinel:
        """The next event, `NEED_DATA` or `PAUSED`. Raises `ProtocolError`."""

    def send(self, event: Event) -> bytes:
        """Serialise an outgoing event to bytes for the wire. Raises
        `LocalProtocolError` when the event is not allowed now."""

    def start_next_cycle(self) -> None:
        """Both messages of the exchange are done; reuse the connection.
        Raises `LocalProtocolError` unless both sides are DONE."""

    @property
    def our_state(self) -> State: ...

    @property
    def their_state(self) -> State: ...

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another exchange."""

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        """(Server) the client sent `Expect: 100-continue` and awaits an
        answer before sending the body."""

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received past the last message (after an Upgrade/101 or
        CONNECT), and whether the peer closed."""

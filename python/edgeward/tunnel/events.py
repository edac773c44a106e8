"""Events of a muxado session (`mux.Session.receive_data`), one per thing the
caller must act on. Plain slotted dataclasses, dispatched with isinstance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class StreamOpened:
    """The peer opened a stream and its 4-byte type has arrived."""

    stream_id: int
    stream_type: int


@dataclass(slots=True)
class DataReceived:
    """Payload for a stream; `Session.acknowledge(stream_id, len(data))` once it
    is consumed, which is what lets the peer send more."""

    stream_id: int
    data: bytes


@dataclass(slots=True)
class StreamEnded:
    """The peer half-closed the stream (FIN): no more data will come."""

    stream_id: int


@dataclass(slots=True)
class StreamReset:
    """The stream is gone. `by_peer`: the peer sent RST (or a GOAWAY that did
    not cover the stream); otherwise we reset it because the peer broke a
    stream rule (window overrun: FLOW_CONTROL; data after FIN: STREAM_CLOSED),
    and told it so."""

    stream_id: int
    error_code: int
    by_peer: bool


@dataclass(slots=True)
class WindowUpdated:
    """The peer granted `increment` more bytes of send window on the stream."""

    stream_id: int
    increment: int


@dataclass(slots=True)
class GoAwayReceived:
    """The peer is going away: it processed our streams up to
    `last_stream_id` (the later ones were reset) and accepts no new ones."""

    last_stream_id: int
    error_code: int
    message: bytes


@dataclass(slots=True)
class SessionFailed:
    """The peer broke the protocol; we queued GOAWAY(`error_code`) and the
    session is over: flush `data_to_send()`, then close the connection."""

    error_code: int
    message: str


MuxEvent = (
    StreamOpened
    | DataReceived
    | StreamEnded
    | StreamReset
    | WindowUpdated
    | GoAwayReceived
    | SessionFailed
)

"""The limits of one HTTP/2 server connection, shared by both
implementations of `H2Server` (see docs/http2.md, *Limits*)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_CONTROL_FRAMES = 1000
"""Control frames the client made us queue (SETTINGS ACK, PING ACK,
RST_STREAM) that are not yet written to the socket; more is a flood
(nghttp2's `max_outbound_ack`, Envoy's `max_outbound_control_frames`)."""

MAX_EMPTY_FRAMES = 100
"""Consecutive frames that carry nothing: DATA, HEADERS or CONTINUATION with
an empty payload and no END_STREAM, PRIORITY, unknown types (Envoy's
`max_consecutive_inbound_frames_with_empty_payload`, which defaults to 1)."""


@dataclass(frozen=True, slots=True)
class H2Limits:
    max_concurrent_streams: int = 100
    max_header_list_size: int = 64 * 1024
    max_resets: int = 200  # client resets allowed per window
    reset_window: float = 10.0
    stream_window: int = 1024 * 1024  # receive window per stream: bounds buffered body
    connection_window: int = 4 * 1024 * 1024
    max_control_frames: int = MAX_CONTROL_FRAMES
    max_empty_frames: int = MAX_EMPTY_FRAMES

"""The phases of a Traffic Policy document."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """When a phase's rules run. The value is the document key."""

    TCP_CONNECT = "on_tcp_connect"  # connection accepted, before any byte is read
    HTTP_REQUEST = "on_http_request"  # request head received, before forwarding
    HTTP_RESPONSE = "on_http_response"  # response head ready, before the client gets it
    # each message of a text/event-stream response, as it streams (docs/policy.md)
    EVENT_STREAM_MESSAGE = "on_event_stream_message"

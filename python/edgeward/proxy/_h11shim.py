"""TEMPORARY stand-in for `edgeward.http1.h11codec` until the http1 branch
lands: h11 behind the `Codec` contract. Deleted on merge."""

from __future__ import annotations

from typing import Any

import h11

from edgeward.http1 import events as ev


class _Base:
    role: Any

    def __init__(self, max_header_bytes: int = 65536, max_header_count: int = 100) -> None:
        self._conn = h11.Connection(self.role, max_incomplete_event_size=max_header_bytes)
        self._max_count = max_header_count

    def receive_data(self, data: bytes) -> None:
        self._conn.receive_data(data)

    def next_event(self) -> ev.Event | ev._Sentinel:
        try:
            e = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise ev.ProtocolError(str(exc), exc.error_status_hint) from None
        if e is h11.NEED_DATA:
            return ev.NEED_DATA
        if e is h11.PAUSED:
            return ev.PAUSED
        if isinstance(e, h11.Request):
            if len(e.headers) > self._max_count:
                raise ev.ProtocolError("too many headers", 431)
            return ev.Request(e.method, e.target, [(n.lower(), v) for n, v in e.headers.raw_items()], e.http_version)
        if isinstance(e, h11.InformationalResponse):
            return ev.InformationalResponse(e.status_code, [(n.lower(), v) for n, v in e.headers.raw_items()], e.http_version, e.reason)
        if isinstance(e, h11.Response):
            return ev.Response(e.status_code, [(n.lower(), v) for n, v in e.headers.raw_items()], e.http_version, e.reason)
        if isinstance(e, h11.Data):
            return ev.Data(bytes(e.data))
        if isinstance(e, h11.EndOfMessage):
            return ev.EndOfMessage([(n.lower(), v) for n, v in e.headers.raw_items()])
        return ev.ConnectionClosed()

    def send(self, event: ev.Event) -> bytes:
        try:
            if isinstance(event, ev.Request):
                out = self._conn.send(h11.Request(method=event.method, target=event.target, headers=event.headers, http_version=event.http_version))
            elif isinstance(event, ev.InformationalResponse):
                out = self._conn.send(h11.InformationalResponse(status_code=event.status_code, headers=event.headers, reason=event.reason))
            elif isinstance(event, ev.Response):
                out = self._conn.send(h11.Response(status_code=event.status_code, headers=event.headers, reason=event.reason))
            elif isinstance(event, ev.Data):
                out = self._conn.send(h11.Data(data=event.data))
            elif isinstance(event, ev.EndOfMessage):
                out = self._conn.send(h11.EndOfMessage(headers=event.headers))
            else:
                out = self._conn.send(h11.ConnectionClosed())
        except h11.LocalProtocolError as exc:
            raise ev.LocalProtocolError(str(exc)) from None
        return out or b""

    def start_next_cycle(self) -> None:
        self._conn.start_next_cycle()

    @property
    def keep_alive(self) -> bool:
        return bool(self._conn.our_state is not h11.MUST_CLOSE and self._conn.their_state is not h11.MUST_CLOSE and self._conn.our_state is not h11.CLOSED and self._conn.their_state is not h11.CLOSED and self._conn.our_state is not h11.ERROR)

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        data, closed = self._conn.trailing_data
        return bytes(data), closed


class ServerCodec(_Base):
    role = h11.SERVER


class ClientCodec(_Base):
    role = h11.CLIENT

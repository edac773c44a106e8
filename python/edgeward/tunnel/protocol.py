"""What the server and the client protocol sessions share: the mux under
them, the bytes out, and the data streams (Proxy streams) the caller
drives. The control streams (RPCs, heartbeats, commands) are the subclass's;
the caller only ever touches data streams, through the methods here, so
the bookkeeping of both layers stays in step."""

from __future__ import annotations

from collections.abc import Sequence

from edgeward.tunnel.frames import ErrorCode
from edgeward.tunnel.mux import Session


class ProtocolSession:
    def __init__(self, mux: Session) -> None:
        self.mux = mux

    # --- what each role implements ---------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> Sequence[object]:
        """Bytes from the peer; the events they cause."""
        raise NotImplementedError

    def tick(self, now: float) -> Sequence[object]:
        """The timer's events (heartbeats)."""
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """When `tick` may next have something to say (None: nothing planned)."""
        raise NotImplementedError

    def connection_lost(self) -> Sequence[object]:
        """The connection is gone: the data streams the caller holds are reset."""
        raise NotImplementedError

    # --- bytes out ---------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        return self.mux.data_to_send()

    @property
    def outbound_size(self) -> int:
        return self.mux.outbound_size

    @property
    def closed(self) -> bool:
        return self.mux.closed

    def go_away(self, error_code: int = ErrorCode.NONE, message: str = "") -> None:
        self.mux.go_away(error_code, message.encode())

    # --- data streams --------------------------------------------------------------------

    def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        """At most `send_window(stream_id)` bytes (see `mux.Session.send_data`)."""
        self.mux.send_data(stream_id, data, fin=fin)
        if fin and not self.mux.is_open(stream_id):
            self._stream_closed(stream_id)

    def end_stream(self, stream_id: int) -> None:
        self.send_data(stream_id, b"", fin=True)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.STREAM_CANCELLED) -> None:
        self.mux.reset_stream(stream_id, error_code)
        self._stream_closed(stream_id)

    def acknowledge(self, stream_id: int, size: int) -> None:
        self.mux.acknowledge(stream_id, size)

    def send_window(self, stream_id: int) -> int:
        return self.mux.send_window(stream_id)

    def is_writable(self, stream_id: int) -> bool:
        return self.mux.is_writable(stream_id)

    def _stream_closed(self, stream_id: int) -> None:
        """We closed or reset the stream: if it is gone from the mux, drop
        what the subclass keeps on it."""

    # --- control streams -------------------------------------------------------------------

    def _end(self, stream_id: int) -> None:
        """Half-close a control stream from our side, if still writable."""
        if self.mux.is_writable(stream_id):
            self.mux.end_stream(stream_id)

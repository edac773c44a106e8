"""`Session`: one muxado session (typed streams) as a sans-IO object.

Fed bytes (`receive_data`), it returns events (`events.py`); its methods open,
write, half-close and reset streams, acknowledge consumed data and send
GOAWAY; `data_to_send()` hands back the bytes to write. It never touches a
socket, a clock or a task. Everything about streams, windows and stream
limits lives here; the frame layout and header rules live in `frames.py`.

Rules, as the ngrok SDKs (Rust muxado, Go muxado) behave:

* ids: a client opens odd ids from 3, a server even ids from 2. A SYN with our
  own parity, or for a stream that is open, ends the session (PROTOCOL).
* every stream is typed: its opener writes a u32 type first. `StreamOpened`
  is emitted once those 4 bytes have arrived; the rest is payload.
* windows: 256 KiB per stream and direction, not negotiated. A DATA frame
  beyond the receive window resets the stream (FLOW_CONTROL); data after the
  peer's FIN resets it (STREAM_CLOSED). Consumed bytes are credited back with
  WNDINC once a quarter of the window is owed (one WNDINC per 64 KiB rather
  than one per read: the peer's window never drops below three quarters of
  the window because of us, so it never waits on our batching), and what is
  still owed when we send FIN or RST, so the peer learns that its data was
  read (the edge tells a Proxy stream the agent dropped unread by that).
* unknown stream: non-empty or non-FIN DATA is answered RST(STREAM_CLOSED);
  RST, WNDINC and an empty FIN are ignored (a stream we forgot).
* limits: a SYN beyond `max_streams` open streams is refused with
  RST(STREAMS_EXHAUSTED) (Rust muxado ends the whole session there; refusing
  one stream is kinder), beyond `accept_backlog` streams still waiting for
  their type with RST(ACCEPT_QUEUE_FULL), after our GOAWAY with
  RST(STREAM_REFUSED). The muxado SDKs count streams the application has
  not accepted yet; here the caller sees a stream the moment its type is in
  (one read may carry more SYNs than the backlog, and nobody can accept in
  the middle of `receive_data`), so streams waiting for the application are
  the driver's queue, bounded by the stream limit.
* GOAWAY received: our streams above its last id are reset; the others may
  finish; no new stream can be opened. Whether to keep the connection is the
  driver's choice (the ngrok SDK drops it and reconnects).
"""

from __future__ import annotations

from edgeward.tunnel.errors import (
    FlowControlError,
    SessionClosedError,
    StreamClosedError,
)
from edgeward.tunnel.events import (
    DataReceived,
    GoAwayReceived,
    MuxEvent,
    SessionFailed,
    StreamEnded,
    StreamOpened,
    StreamReset,
    WindowUpdated,
)
from edgeward.tunnel.frames import (
    DATA,
    FIN,
    MAX_INCREMENT,
    MAX_STREAM_ID,
    RST,
    SYN,
    WNDINC,
    ErrorCode,
    FrameDecoder,
    GoAway,
    data_header,
    encode_goaway,
    encode_rst,
    encode_wndinc,
    parse_body,
    syn_header,
)

DEFAULT_WINDOW = 0x40000  # 256 KiB, both directions (muxado's DEFAULT_WINDOW)
DEFAULT_ACCEPT_BACKLOG = 64
DEFAULT_MAX_STREAMS = 512
TYPE_SIZE = 4


class _Stream:
    __slots__ = (
        "id",
        "local_closed",
        "recv_window",
        "remote_closed",
        "send_window",
        "stream_type",
        "type_buf",
        "unacked",
        "untyped",
    )

    def __init__(self, stream_id: int, window: int, stream_type: int | None) -> None:
        self.id = stream_id
        self.send_window = window  # bytes we may still send
        self.recv_window = window  # bytes the peer may still send
        self.unacked = 0  # consumed by the caller, not yet credited with WNDINC
        self.local_closed = False  # we sent FIN
        self.remote_closed = False  # the peer sent FIN
        self.stream_type = stream_type  # None until a remote stream's type has arrived
        self.type_buf = b""
        self.untyped = False  # opened by the peer, type not in yet: in the backlog


class Session:
    """One side of a muxado session; `client=True` for the agent."""

    def __init__(
        self,
        *,
        client: bool,
        window: int = DEFAULT_WINDOW,
        max_streams: int = DEFAULT_MAX_STREAMS,
        accept_backlog: int = DEFAULT_ACCEPT_BACKLOG,
        max_frame_size: int | None = None,
    ) -> None:
        self.client = client
        self.window = window
        self.max_streams = max_streams
        self.accept_backlog = accept_backlog
        self.max_frame_size = max_frame_size or window  # the largest frame we accept
        self.ack_threshold = max(1, window // 4)
        # The largest frame we send: a quarter of the window, the credit
        # quantum. A frame as large as the window would be credited only
        # once the peer consumed all of it, so sender and receiver would
        # take turns; in quarters the sender keeps writing while the
        # receiver works (a bulk transfer ran at half the speed).
        self.send_frame_size = self.max_frame_size
        self._remote_parity = 0 if client else 1
        self._next_id = 3 if client else 2
        self._streams: dict[int, _Stream] = {}
        self._untyped = 0  # the accept backlog
        self._decoder = FrameDecoder(self.max_frame_size)
        self._out: list[bytes] = []
        self._out_size = 0
        self.last_remote_id = 0
        self.local_gone_away = False  # we sent GOAWAY
        self.remote_gone_away = False  # the peer sent GOAWAY
        self.closed = False  # failed, or the connection was lost: nothing more happens

    # --- receiving ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[MuxEvent]:
        events: list[MuxEvent] = []
        streams = self._streams
        raw, error = self._decoder.decode(data)  # a closed session's decoder is dead
        for frame_type, flags, stream_id, body in raw:
            if frame_type == DATA:
                # fast path: payload for an open, typed stream, within its window
                stream = streams.get(stream_id)
                if (
                    not flags
                    and body
                    and stream is not None
                    and stream.stream_type is not None
                    and not stream.remote_closed
                    and len(body) <= stream.recv_window
                ):
                    stream.recv_window -= len(body)
                    events.append(DataReceived(stream_id, body))
                    continue
                self._on_data(stream_id, body, flags, events)
            elif frame_type == WNDINC:
                stream = streams.get(stream_id)
                if stream is not None:
                    increment = int.from_bytes(body, "big") & MAX_INCREMENT
                    stream.send_window += increment
                    if stream.stream_type is not None and not stream.local_closed:
                        events.append(WindowUpdated(stream_id, increment))
            elif frame_type == RST:
                stream = streams.get(stream_id)
                if stream is not None:
                    self._remove(stream)
                    if stream.stream_type is not None:
                        code = int.from_bytes(body, "big")
                        events.append(StreamReset(stream_id, code, True))
            else:
                goaway = parse_body(frame_type, flags, stream_id, body)
                assert isinstance(goaway, GoAway)
                self._on_goaway(goaway, events)
            if self.closed:
                return events
        if error is not None:
            self._fail(error.error_code, error.message, events)
        return events

    def _on_data(self, stream_id: int, data: bytes, flags: int, events: list[MuxEvent]) -> None:
        stream = self._streams.get(stream_id)
        if flags & SYN:
            if stream is not None:
                self._fail(ErrorCode.PROTOCOL, f"SYN for open stream {stream_id}", events)
                return
            if stream_id & 1 != self._remote_parity:
                self._fail(ErrorCode.PROTOCOL, f"SYN for stream {stream_id}: wrong parity", events)
                return
            self.last_remote_id = max(self.last_remote_id, stream_id)
            if self.local_gone_away:
                self._queue(encode_rst(stream_id, ErrorCode.STREAM_REFUSED))
                return
            if len(self._streams) >= self.max_streams:
                self._queue(encode_rst(stream_id, ErrorCode.STREAMS_EXHAUSTED))
                return
            if self._untyped >= self.accept_backlog:
                self._queue(encode_rst(stream_id, ErrorCode.ACCEPT_QUEUE_FULL))
                return
            stream = _Stream(stream_id, self.window, None)
            stream.untyped = True
            self._untyped += 1
            self._streams[stream_id] = stream
        elif stream is None:
            if data or not flags & FIN:
                self._queue(encode_rst(stream_id, ErrorCode.STREAM_CLOSED))
            return
        if data:
            if stream.remote_closed:
                self._reset(stream, ErrorCode.STREAM_CLOSED, events)
                return
            if len(data) > stream.recv_window:
                self._reset(stream, ErrorCode.FLOW_CONTROL, events)
                return
            stream.recv_window -= len(data)
            if stream.stream_type is None:
                data = self._read_type(stream, data, events)
            if data:
                events.append(DataReceived(stream_id, data))
        if flags & FIN and not stream.remote_closed:
            if stream.stream_type is None:  # ended before saying what it is
                self._reset(stream, ErrorCode.PROTOCOL, events)
                return
            stream.remote_closed = True
            events.append(StreamEnded(stream_id))
            if stream.local_closed:
                self._remove(stream)

    def _read_type(self, stream: _Stream, data: bytes, events: list[MuxEvent]) -> bytes:
        """Take the stream type from the front of a new stream's data; return
        the payload after it."""
        need = TYPE_SIZE - len(stream.type_buf)
        stream.type_buf += data[:need]
        if len(stream.type_buf) < TYPE_SIZE:
            self._credit(stream, len(data))
            return b""
        stream.stream_type = int.from_bytes(stream.type_buf, "big")
        stream.type_buf = b""
        stream.untyped = False
        self._untyped -= 1
        self._credit(stream, need)
        events.append(StreamOpened(stream.id, stream.stream_type))
        return data[need:]

    def _on_goaway(self, frame: GoAway, events: list[MuxEvent]) -> None:
        self.remote_gone_away = True
        events.append(GoAwayReceived(frame.last_stream_id, frame.error_code, frame.message))
        for stream in list(self._streams.values()):
            if stream.id & 1 != self._remote_parity and stream.id > frame.last_stream_id:
                self._remove(stream)
                events.append(StreamReset(stream.id, ErrorCode.REMOTE_GONE_AWAY, True))

    def _fail(self, code: int, message: str, events: list[MuxEvent]) -> None:
        self._queue(encode_goaway(self.last_remote_id, code, message.encode()))
        self.local_gone_away = True
        self.closed = True
        self._decoder.dead = True
        self._streams.clear()
        self._untyped = 0
        events.append(SessionFailed(code, message))

    def _reset(self, stream: _Stream, code: int, events: list[MuxEvent]) -> None:
        self._queue(encode_rst(stream.id, code))
        self._remove(stream)
        if stream.stream_type is not None:
            events.append(StreamReset(stream.id, code, False))

    def _remove(self, stream: _Stream) -> None:
        del self._streams[stream.id]
        if stream.untyped:
            stream.untyped = False
            self._untyped -= 1

    # --- the caller's actions ---------------------------------------------------------

    def open_stream(self, stream_type: int, data: bytes = b"", *, fin: bool = False) -> int:
        """Open a stream of `stream_type`; `data` rides in the SYN frame after
        the type (both count against the window). Returns the stream id."""
        if self.closed or self.remote_gone_away:
            code = ErrorCode.REMOTE_GONE_AWAY if self.remote_gone_away else ErrorCode.SESSION_CLOSED
            raise SessionClosedError(code, "the session accepts no new streams")
        stream_id = self._next_id
        if stream_id > MAX_STREAM_ID or len(self._streams) >= self.max_streams:
            raise SessionClosedError(ErrorCode.STREAMS_EXHAUSTED, "no stream available")
        size = TYPE_SIZE + len(data)
        if size > self.window:
            raise FlowControlError(stream_id, size, self.window)
        self._next_id += 2
        stream = _Stream(stream_id, self.window, stream_type)
        stream.send_window -= size  # what we sent counts against the peer's window, not ours
        self._streams[stream_id] = stream
        self._queue(syn_header(stream_id, stream_type, size, fin))
        if data:
            self._queue(data)
        stream.local_closed = fin
        return stream_id

    def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        """Write `data` (at most `send_window(stream_id)` bytes); `fin`
        half-closes after it."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed:
            raise StreamClosedError(stream_id)
        size = len(data)
        if size > stream.send_window:
            raise FlowControlError(stream_id, size, stream.send_window)
        stream.send_window -= size
        limit = self.send_frame_size
        if size > limit:
            view = memoryview(data)
            for start in range(0, size - limit, limit):
                self._queue(data_header(stream_id, limit))
                self._queue(bytes(view[start : start + limit]))
            start = (size - 1) // limit * limit
            data = bytes(view[start:])
        if fin and stream.unacked:
            self._flush_credit(stream)
        self._queue(data_header(stream_id, len(data), fin))
        if data:
            self._queue(data)
        if fin:
            stream.local_closed = True
            if stream.remote_closed:
                self._remove(stream)

    def end_stream(self, stream_id: int) -> None:
        """Half-close: an empty DATA frame with FIN."""
        self.send_data(stream_id, b"", fin=True)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.STREAM_CANCELLED) -> None:
        """Abort the stream both ways. A stream that is already gone is left
        alone (the peer may have reset it first)."""
        stream = self._streams.get(stream_id)
        if stream is not None and not self.closed:
            if stream.unacked:
                self._flush_credit(stream)
            self._queue(encode_rst(stream_id, error_code))
            self._remove(stream)

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The caller consumed `size` bytes of the stream's data: credit them
        back to the peer (batched, see the module doc)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            self._credit(stream, size)

    def _credit(self, stream: _Stream, size: int) -> None:
        owed = self.window - stream.recv_window  # received and not yet credited
        stream.unacked = min(stream.unacked + size, owed)
        if stream.unacked >= self.ack_threshold and not stream.remote_closed:
            self._flush_credit(stream)

    def _flush_credit(self, stream: _Stream) -> None:
        self._queue(encode_wndinc(stream.id, stream.unacked))
        stream.recv_window += stream.unacked
        stream.unacked = 0

    def go_away(self, error_code: int = ErrorCode.NONE, message: bytes = b"") -> None:
        """Tell the peer we accept no new streams (those it opened so far,
        up to `last_remote_id`, may finish)."""
        if not self.closed:
            self._queue(encode_goaway(self.last_remote_id, error_code, message))
            self.local_gone_away = True

    def connection_lost(self) -> list[StreamReset]:
        """The connection under the session is gone: every stream the caller
        knows is reset (PEER_EOF)."""
        self.closed = True
        self._decoder.dead = True
        gone = [
            StreamReset(s.id, ErrorCode.PEER_EOF, True)
            for s in self._streams.values()
            if s.stream_type is not None
        ]
        self._streams.clear()
        self._untyped = 0
        return gone

    # --- queries ------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = b"".join(out) if len(out) > 1 else out[0]
        out.clear()
        self._out_size = 0
        return data

    @property
    def outbound_size(self) -> int:
        """Bytes queued and not yet taken by `data_to_send()`."""
        return self._out_size

    def send_window(self, stream_id: int) -> int:
        """Bytes that may be sent on the stream now (0 when it is not open)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed:
            return 0
        return stream.send_window

    def is_open(self, stream_id: int) -> bool:
        """The stream is known (not reset, not closed both ways)."""
        return stream_id in self._streams

    def is_writable(self, stream_id: int) -> bool:
        """We may still send on the stream (it is open and we sent no FIN)."""
        stream = self._streams.get(stream_id)
        return stream is not None and not stream.local_closed

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)

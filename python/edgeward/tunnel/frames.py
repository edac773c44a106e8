"""muxado frames: the 8-byte header, the four frame types, their encoders and
an incremental decoder that enforces the header rules.

Header (big-endian)::

    word0 = length (24 bits) << 8 | type (4 bits) << 4 | flags (4 bits)
    word1 = stream id (the top bit is masked off)

Flags are FIN = 0x1 and SYN = 0x2 (muxado's PROTOCOL.md draws SYN as 0x10,
which does not fit the field; the implementations use 0x2). The rules checked
here are the ones the ngrok SDK's decoder applies (`validate_header`), plus a
maximum frame length: a DATA frame longer than the receive window can never
be legal, so it is refused from its header instead of being buffered.
Everything about streams and windows lives in `mux.py`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from edgeward.tunnel.errors import FrameError

RST, DATA, WNDINC, GOAWAY = 0, 1, 2, 3
FIN, SYN = 0x1, 0x2
HEADER_SIZE = 8
MAX_LENGTH = 0xFFFFFF
MAX_STREAM_ID = 0x7FFFFFFF
MAX_INCREMENT = 0x7FFFFFFF

_HEADER = struct.Struct(">II")
_HEADER_U32 = struct.Struct(">III")  # RST and WNDINC: header + one u32
_GOAWAY = struct.Struct(">IIII")  # header + last stream id + error code
_pack = _HEADER.pack
_pack_u32 = _HEADER_U32.pack
_unpack_from = _HEADER.unpack_from


class ErrorCode(IntEnum):
    """muxado error codes (RST and GOAWAY)."""

    NONE = 0x0
    PROTOCOL = 0x1
    INTERNAL = 0x2
    FLOW_CONTROL = 0x3
    STREAM_CLOSED = 0x4
    STREAM_REFUSED = 0x5
    STREAM_CANCELLED = 0x6
    STREAM_RESET = 0x7
    FRAME_SIZE = 0x8
    ACCEPT_QUEUE_FULL = 0x9
    ENHANCE_YOUR_CALM = 0xA
    REMOTE_GONE_AWAY = 0xB
    STREAMS_EXHAUSTED = 0xC
    WRITE_TIMEOUT = 0xD
    SESSION_CLOSED = 0xE
    PEER_EOF = 0xF


@dataclass(slots=True)
class Data:
    stream_id: int
    data: bytes
    fin: bool = False
    syn: bool = False


@dataclass(slots=True)
class Rst:
    stream_id: int
    error_code: int


@dataclass(slots=True)
class WndInc:
    stream_id: int
    increment: int


@dataclass(slots=True)
class GoAway:
    last_stream_id: int
    error_code: int
    message: bytes = b""


Frame = Data | Rst | WndInc | GoAway


# --- encoding ---------------------------------------------------------------------


def data_header(stream_id: int, length: int, fin: bool = False, syn: bool = False) -> bytes:
    """The header of a DATA frame; the payload follows it on the wire."""
    return _pack(length << 8 | DATA << 4 | (FIN if fin else 0) | (SYN if syn else 0), stream_id)


def syn_header(stream_id: int, stream_type: int, length: int, fin: bool = False) -> bytes:
    """The header of a stream's first DATA frame (SYN) and the stream type
    that starts its payload; `length` counts the type and what follows."""
    return _pack_u32(length << 8 | DATA << 4 | SYN | (FIN if fin else 0), stream_id, stream_type)


def encode_rst(stream_id: int, error_code: int) -> bytes:
    return _pack_u32(4 << 8 | RST << 4, stream_id, error_code)


def encode_wndinc(stream_id: int, increment: int) -> bytes:
    return _pack_u32(4 << 8 | WNDINC << 4, stream_id, increment)


def encode_goaway(last_stream_id: int, error_code: int, message: bytes = b"") -> bytes:
    # The length counts the two ids; the ngrok SDK's own GOAWAY leaves them out.
    return _GOAWAY.pack((8 + len(message)) << 8 | GOAWAY << 4, 0, last_stream_id, error_code) + (
        message
    )


def encode(frame: Frame) -> bytes:
    """One frame, header and body (for tests and tools; the session writes
    headers and payloads separately to avoid copying data)."""
    if isinstance(frame, Data):
        return data_header(frame.stream_id, len(frame.data), frame.fin, frame.syn) + frame.data
    if isinstance(frame, Rst):
        return encode_rst(frame.stream_id, frame.error_code)
    if isinstance(frame, WndInc):
        return encode_wndinc(frame.stream_id, frame.increment)
    return encode_goaway(frame.last_stream_id, frame.error_code, frame.message)


# --- decoding ---------------------------------------------------------------------


def check_header(length: int, frame_type: int, stream_id: int, max_length: int) -> None:
    """The decoder's rules for one header; raises `FrameError` (session-fatal)."""
    if frame_type == DATA:
        if stream_id == 0:
            raise FrameError(ErrorCode.PROTOCOL, "DATA frame on stream 0")
    elif frame_type in (RST, WNDINC):
        name = "RST" if frame_type == RST else "WNDINC"
        if stream_id == 0:
            raise FrameError(ErrorCode.PROTOCOL, f"{name} frame on stream 0")
        if length != 4:
            raise FrameError(ErrorCode.PROTOCOL, f"{name} frame of length {length}, not 4")
    elif frame_type == GOAWAY:
        if stream_id != 0:
            raise FrameError(ErrorCode.PROTOCOL, f"GOAWAY frame on stream {stream_id}")
        if length < 8:
            raise FrameError(ErrorCode.PROTOCOL, f"GOAWAY frame of length {length}, under 8")
    else:
        raise FrameError(ErrorCode.PROTOCOL, f"unknown frame type {frame_type}")
    if length > max_length:
        raise FrameError(
            ErrorCode.FRAME_SIZE, f"frame of {length} bytes exceeds the limit of {max_length}"
        )


RawFrame = tuple[int, int, int, bytes]
"""(frame type, flags, stream id, body): what the session consumes, without
building a frame object per frame."""


class FrameDecoder:
    """Bytes in, frames out. A frame comes out once it is complete; a broken
    header is reported as soon as its 8 bytes are in (after the frames
    before it), and the decoder is dead from then on."""

    __slots__ = ("_buf", "_need", "dead", "max_length")

    def __init__(self, max_length: int = MAX_LENGTH) -> None:
        self.max_length = max_length
        self._buf = bytearray()
        self._need = HEADER_SIZE  # bytes the buffered frame needs before parsing again
        self.dead = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> Iterator[Frame]:
        """Consume `data`, yielding frame objects; a broken header raises
        `FrameError` after the frames before it."""
        raw, error = self.decode(data)
        for frame_type, flags, stream_id, body in raw:
            yield parse_body(frame_type, flags, stream_id, body)
        if error is not None:
            raise error

    def decode(self, data: bytes) -> tuple[list[RawFrame], FrameError | None]:
        """Consume `data`: the complete frames in it, and the error that
        stopped the decoder, if one did (a list, not a generator: this is
        the session's hot path)."""
        frames: list[RawFrame] = []
        if self.dead:
            return frames, None
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return frames, None
            data = bytes(buf)
            buf.clear()
        end = len(data)
        pos = 0
        max_length = self.max_length
        append = frames.append
        while end - pos >= HEADER_SIZE:
            word, stream_id = _unpack_from(data, pos)
            length = word >> 8
            frame_type = word >> 4 & 0xF
            stream_id &= MAX_STREAM_ID
            # DATA, the common case, is checked inline
            if frame_type != DATA or stream_id == 0 or length > max_length:
                try:
                    check_header(length, frame_type, stream_id, max_length)
                except FrameError as error:
                    self.dead = True
                    return frames, error
            stop = pos + HEADER_SIZE + length
            if stop > end:
                self._need = stop - pos
                break
            append((frame_type, word & 0xF, stream_id, data[pos + HEADER_SIZE : stop]))
            pos = stop
        else:
            self._need = HEADER_SIZE
        if pos < end:
            buf += memoryview(data)[pos:]
        return frames, None


def parse_body(frame_type: int, flags: int, stream_id: int, body: bytes) -> Frame:
    """The frame object of a raw frame whose header passed `check_header`."""
    if frame_type == DATA:
        return Data(stream_id, body, bool(flags & FIN), bool(flags & SYN))
    if frame_type == WNDINC:
        return WndInc(stream_id, int.from_bytes(body, "big") & MAX_INCREMENT)
    if frame_type == RST:
        return Rst(stream_id, int.from_bytes(body, "big"))
    last, code = _unpack_from(body)
    return GoAway(last & MAX_STREAM_ID, code, body[8:])

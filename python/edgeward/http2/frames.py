"""Frame headers, read ahead of h2 and behind it.

Some limits must see frames in the order they arrive, before h2 acts on
them: a flood of empty frames is cut off before h2 has spent a read's worth
of work on it, and a DATA frame that overruns its stream's content-length
is refused before h2 makes a connection error of it. `FrameScanner` walks
the 9-byte frame headers of the bytes the client sends (and a padded frame's
pad length); payloads are skipped, h2 still parses every frame.

`answers` counts, in bytes we are about to send, the control frames a
client can make us queue at will (RFC 9113: SETTINGS and PING must be
acknowledged; frames on a reset stream are answered with RST_STREAM).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

PREFACE_LENGTH = 24
"""The client connection preface (RFC 9113 §3.4) comes before the first frame."""

_HEADER = struct.Struct(">BHBBL")  # length (24 bits, as 8 + 16), type, flags, stream id

Frame = tuple[int, int, int, int, int]
"""(start, type, flags, stream id, content length) of a received frame."""


class FrameScanner:
    """Follows the frame boundaries of a received byte stream, read by read."""

    __slots__ = ("_held", "_skip", "end")

    def __init__(self, skip: int = PREFACE_LENGTH) -> None:
        self._skip = skip  # bytes of the current frame (or the preface) still to come
        self._held = b""  # the start of a frame header cut by the end of the last read
        self.end = 0
        """Where the frame last reported ends in the data scanned (past its
        end while the rest of the frame is still to come)."""

    def scan(self, data: bytes) -> Iterator[Frame]:
        """The frames whose header `data` completes, in order. `start` is
        where the frame begins in `data` (0 if it began in an earlier read);
        the content length is the payload without padding and priority
        fields (DATA: the data; HEADERS: the field block fragment), negative
        when the padding is invalid. A frame is reported before its last
        byte has been passed to h2, whatever the split of the reads."""
        pos, end = 0, len(data)
        if self._skip:
            if self._skip >= end:
                self._skip -= end
                return
            pos, self._skip = self._skip, 0
        if self._held:
            buf = self._held + data[:10]
            frame = _parse(buf, 0)
            if frame is None:
                self._held = buf
                return
            pos = self.end = 9 + frame[0] - len(self._held)
            self._held = b""
            yield 0, frame[1], frame[2], frame[3], frame[4]
        while pos < end:
            frame = _parse(data, pos)
            if frame is None:
                self._held = data[pos:]
                return
            self.end = pos + 9 + frame[0]
            yield pos, frame[1], frame[2], frame[3], frame[4]
            pos = self.end
        self._skip = pos - end


def _parse(buf: bytes, pos: int) -> Frame | None:
    """(length, type, flags, stream id, content length) of the frame at
    `pos`, or None while its header (with a pad length) is incomplete."""
    if len(buf) - pos < 9:
        return None
    high, low, ftype, flags, stream_id = _HEADER.unpack_from(buf, pos)
    length = high << 16 | low
    content = length
    if ftype <= HEADERS:
        if flags & PADDED and length:
            if len(buf) - pos < 10:
                return None
            content -= 1 + buf[pos + 9]
        if ftype == HEADERS and flags & PRIORITY_FLAG:
            content -= 5
    return length, ftype, flags, stream_id & 0x7FFFFFFF, content


def answers(data: bytes) -> int:
    """How many SETTINGS ACK, PING ACK and RST_STREAM frames `data` (whole
    frames we send) holds."""
    count = pos = 0
    end = len(data)
    unpack = _HEADER.unpack_from
    while pos < end:
        high, low, ftype, flags, _ = unpack(data, pos)
        if ftype == RST_STREAM or (flags & ACK and ftype in (SETTINGS, PING)):
            count += 1
        pos += 9 + (high << 16 | low)
    return count

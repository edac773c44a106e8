"""Server-Sent Events (`text/event-stream`), parsed as the stream arrives.

The format (WHATWG HTML, "Server-sent events", §9.2.5-9.2.6): UTF-8 lines
ended by CRLF, LF or CR; a blank line ends a message; `:` starts a
comment; otherwise `name: value` (one space after the colon dropped), the
fields being `data` (lines joined with LF), `event`, `id` and `retry`.

`EventStreamParser` is sans-IO: `feed` it bytes, it returns what is
complete, as `Block`s (the lines of one message and the blank line that
ends it, each line kept as received) or as plain bytes to pass on as they
are (a BOM, the unterminated tail at the end of the stream, a message over
`MAX_MESSAGE`). The bytes it returns, joined, are exactly the bytes fed, so
a message nobody changes goes out byte for byte. `Message` is one block
seen as fields, changed by `sse-find-replace` and written back.

Memory is bounded: a message is held until its blank line, at most
`MAX_MESSAGE` bytes; a longer one is passed on unchanged as it arrives
(counted in `oversized`; the engine logs it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_MESSAGE = 1024 * 1024  # bytes of one message the parser holds
BOM = b"\xef\xbb\xbf"
_EOL = re.compile(rb"\r\n?|\n")


@dataclass(slots=True)
class Line:
    """One line of a message, as received."""

    name: bytes | None  # the field name; None for a comment
    value: bytes
    raw: bytes  # the line without its terminator
    end: bytes  # its terminator: CRLF, LF or CR


@dataclass(slots=True)
class Block:
    """One message: its lines and the terminator of the blank line that
    ended it."""

    lines: list[Line]
    blank: bytes

    @property
    def is_message(self) -> bool:
        """Whether it has a field (comment-only blocks are not messages)."""
        return any(line.name is not None for line in self.lines)

    def raw(self) -> bytes:
        return b"".join(line.raw + line.end for line in self.lines) + self.blank


def parse_line(raw: bytes, end: bytes) -> Line:
    if raw.startswith(b":"):
        return Line(None, raw[1:], raw, end)
    name, colon, value = raw.partition(b":")
    if colon and value.startswith(b" "):
        value = value[1:]
    return Line(name, value, raw, end)


class EventStreamParser:
    """Splits a stream into `Block`s and pass-through bytes."""

    __slots__ = ("_buf", "_lines", "_partial", "_passing", "_size", "_started", "oversized")

    def __init__(self) -> None:
        self._buf = b""  # the line in progress
        self._lines: list[Line] = []  # the message in progress
        self._size = 0
        self._started = False  # past the optional BOM
        self._passing = False  # inside an oversized message: pass bytes on
        self._partial = False  # passing, and the last bytes passed ended mid-line
        self.oversized = 0  # messages passed on unchanged for their size

    def feed(self, data: bytes) -> list[Block | bytes]:
        out: list[Block | bytes] = []
        buf = self._buf + data
        if not self._started:
            if len(buf) < len(BOM) and BOM.startswith(buf):
                self._buf = buf
                return out
            self._started = True
            if buf.startswith(BOM):
                out.append(BOM)
                buf = buf[len(BOM) :]
        self._buf = self._lines_of(buf, out, final=False)
        if not self._passing and len(self._buf) + self._size > MAX_MESSAGE:
            self._pass(out)
        if self._passing:
            self._pass_partial(out)
        return out

    def finish(self) -> list[Block | bytes]:
        """What is left at the end of the stream: an unterminated message is
        passed on as it is (clients discard it)."""
        out: list[Block | bytes] = []
        self._started = True
        rest = self._lines_of(self._buf, out, final=True)
        tail = b"".join(line.raw + line.end for line in self._lines) + rest
        if tail:
            out.append(tail)
        self._buf, self._lines, self._size = b"", [], 0
        return out

    def _lines_of(self, buf: bytes, out: list[Block | bytes], final: bool) -> bytes:
        """Take the complete lines of `buf`; returns the rest."""
        start = 0
        for m in _EOL.finditer(buf):
            if m.end() == len(buf) and m.group() == b"\r" and not final:
                break  # a CR may be the first half of a CRLF
            self._line(buf[start : m.start()], m.group(), out)
            start = m.end()
        return buf[start:]

    def _line(self, raw: bytes, end: bytes, out: list[Block | bytes]) -> None:
        if self._passing:
            out.append(raw + end)
            if not raw and not self._partial:
                self._passing = False  # the blank line that ends the oversized message
            self._partial = False
            return
        if not raw:
            out.append(Block(self._lines, end))
            self._lines, self._size = [], 0
            return
        self._lines.append(parse_line(raw, end))
        self._size += len(raw) + len(end)
        if self._size > MAX_MESSAGE:
            self._pass(out)

    def _pass(self, out: list[Block | bytes]) -> None:
        """The message in progress is too large: pass it on unchanged."""
        held = b"".join(line.raw + line.end for line in self._lines)
        if held:
            out.append(held)
        self._lines, self._size = [], 0
        self._passing = True
        self._partial = False
        self.oversized += 1

    def _pass_partial(self, out: list[Block | bytes]) -> None:
        """Pass on the line in progress of an oversized message (a final CR
        stays: it may be half of a CRLF)."""
        buf = self._buf
        keep = b"\r" if buf.endswith(b"\r") else b""
        if len(buf) > len(keep):
            out.append(buf[: len(buf) - len(keep)])
            self._partial = True
        self._buf = keep


@dataclass(slots=True)
class Message:
    """One message as fields: what the `on_event_stream_message` phase
    reads (`sse.*`) and `sse-find-replace` changes (`data`, `retry`)."""

    block: Block
    data: bytes = b""  # the data lines joined with LF
    retry: list[bytes] = field(default_factory=list)  # each retry line's value
    event: bytes = b""  # the last event type given
    id: bytes = b""  # the last id given
    changed: bool = False

    @classmethod
    def of(cls, block: Block) -> Message:
        message = cls(block)
        data: list[bytes] = []
        for line in block.lines:
            name = line.name
            if name == b"data":
                data.append(line.value)
            elif name == b"retry":
                message.retry.append(line.value)
            elif name == b"event":
                message.event = line.value
            elif name == b"id" and b"\0" not in line.value:
                message.id = line.value
        message.data = b"\n".join(data)
        return message

    def values(self) -> dict[str, str]:
        """`sse.*` (the last `retry` given, as text)."""
        return {
            "data": _text(self.data),
            "event": _text(self.event),
            "id": _text(self.id),
            "retry": _text(self.retry[-1]) if self.retry else "",
        }

    def encode(self) -> bytes:
        """The message on the wire: as received unless changed; then the
        data lines are written from `data` (split at line breaks) where the
        first one was, the retry lines from `retry`, every other line kept."""
        block = self.block
        if not self.changed:
            return block.raw()
        out: list[bytes] = []
        retries = iter(self.retry)
        wrote_data = False
        for line in block.lines:
            if line.name == b"data":
                if not wrote_data:
                    wrote_data = True
                    out.extend(b"data: " + part + line.end for part in _EOL.split(self.data))
            elif line.name == b"retry":
                out.append(b"retry: " + next(retries, b"") + line.end)
            else:
                out.append(line.raw + line.end)
        out.append(block.blank)
        return b"".join(out)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def is_event_stream(content_type: bytes) -> bool:
    return content_type.split(b";", 1)[0].strip().lower() == b"text/event-stream"

"""Reading RPC bodies off streams.

The ngrok SDK writes an RPC request as one JSON object and does not
half-close: it waits for the answer and reads to the end of the stream. So
the server cannot wait for FIN; `JsonObjectReader` finds where the object
ends (brackets outside strings) and decodes it then. An answer, by contrast,
is read to FIN (`ResponseReader`), as the SDK does.
"""

from __future__ import annotations

import re

from edgeward.tunnel.errors import MessageError
from edgeward.tunnel.messages import parse_json

MAX_RPC_SIZE = 1024 * 1024  # a bind carries a traffic policy: generous, but bounded

_OUTSIDE = re.compile(rb'[{}\[\]"]')
_INSIDE = re.compile(rb'["\\]')
_SPACE = b" \t\r\n"


class JsonObjectReader:
    """The JSON object at the start of a stream, complete once its closing
    brace has arrived (bytes after it are ignored)."""

    __slots__ = ("_buf", "_depth", "_in_string", "_pos", "done", "limit", "where")

    def __init__(self, where: str, limit: int = MAX_RPC_SIZE) -> None:
        self.where = where
        self.limit = limit
        self._buf = bytearray()
        self._pos = 0  # scanned up to here
        self._depth = 0
        self._in_string = False
        self.done = False

    def feed(self, data: bytes) -> object | None:
        """The decoded object once complete, else None."""
        if self.done:
            return None
        buf = self._buf
        buf += data
        pos = self._pos
        if self._depth == 0:  # nothing opened yet: skip blanks, then "{"
            while pos < len(buf) and buf[pos] in _SPACE:
                pos += 1
            if pos == len(buf):
                self._pos = pos
                self._check_size()
                return None
            if buf[pos] != ord("{"):
                raise MessageError(self.where, "expected a JSON object")
        while True:
            if self._in_string:
                m = _INSIDE.search(buf, pos)
                if m is None:
                    break
                if m.group() == b"\\":
                    pos = m.end() + 1  # skip the escaped byte (maybe not here yet)
                    continue
                self._in_string = False
                pos = m.end()
                continue
            m = _OUTSIDE.search(buf, pos)
            if m is None:
                break
            pos = m.end()
            char = m.group()
            if char == b'"':
                self._in_string = True
            elif char in (b"{", b"["):
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    self.done = True
                    return parse_json(bytes(buf[:pos]), self.where)
        self._pos = max(pos, len(buf))
        self._check_size()
        return None

    def _check_size(self) -> None:
        if len(self._buf) > self.limit:
            raise MessageError(self.where, f"larger than {self.limit} bytes")

    def finish(self) -> None:
        """The stream ended: an object that is still open is an error."""
        if not self.done:
            raise MessageError(self.where, "the stream ended inside the JSON object")


class ResponseReader:
    """An RPC answer: every byte up to the responder's FIN."""

    __slots__ = ("_parts", "_size", "limit", "where")

    def __init__(self, where: str, limit: int = MAX_RPC_SIZE) -> None:
        self.where = where
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.limit:
            raise MessageError(self.where, f"larger than {self.limit} bytes")
        self._parts.append(data)

    def body(self) -> bytes:
        return b"".join(self._parts)


class InboundRpc:
    """A request stream the peer opened: its reader, and where we are."""

    __slots__ = ("answered", "ended", "reader", "request", "stream_type")

    def __init__(self, stream_type: int, where: str, limit: int = MAX_RPC_SIZE) -> None:
        self.stream_type = stream_type
        self.reader = JsonObjectReader(where, limit)
        self.request: object = None  # the decoded request, once complete
        self.answered = False  # we wrote the answer and FIN
        self.ended = False  # the peer half-closed

"""The server name a TLS client asks for, read from its ClientHello without
terminating TLS: what routes a connection to an agent's `tls` endpoint
(SNI passthrough). Sans-IO: fed the first bytes of a connection (peeked,
so they still reach the agent untouched).

    result = client_hello_sni(data)   # NEED_MORE, None (no SNI / not TLS) or the name
"""

from __future__ import annotations

from typing import Final

NEED_MORE: Final = "need more"
MAX_HELLO = 16 * 1024 + 5  # a ClientHello this edge reads (one full record and its header)

_HANDSHAKE = 22
_CLIENT_HELLO = 1
_SERVER_NAME = 0
_HOST_NAME = 0


def client_hello_sni(data: bytes) -> str | None:
    """The SNI host name (lower case, no trailing dot); None when the bytes
    are not a TLS ClientHello or it names no server; `NEED_MORE` when the
    ClientHello is not complete yet (within `MAX_HELLO` bytes)."""
    handshake = bytearray()
    pos = 0
    while True:  # gather handshake fragments until the ClientHello is whole
        if len(data) < pos + 5:
            return NEED_MORE if len(data) < MAX_HELLO else None
        if data[pos] != _HANDSHAKE or data[pos + 1] != 3:
            return None
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if length == 0 or length > 16 * 1024:
            return None
        if len(data) < pos + 5 + length:
            return NEED_MORE if pos + 5 + length <= MAX_HELLO else None
        handshake += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(handshake) >= 4:
            if handshake[0] != _CLIENT_HELLO:
                return None
            size = int.from_bytes(handshake[1:4], "big")
            if len(handshake) >= 4 + size:
                return _server_name(bytes(handshake[4 : 4 + size]))
            if 4 + size > MAX_HELLO:
                return None


def _server_name(hello: bytes) -> str | None:
    try:
        pos = 2 + 32  # version, random
        pos += 1 + hello[pos]  # session id
        pos += 2 + int.from_bytes(hello[pos : pos + 2], "big")  # cipher suites
        pos += 1 + hello[pos]  # compression methods
        if pos + 2 > len(hello):
            return None  # no extensions
        end = pos + 2 + int.from_bytes(hello[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            kind = int.from_bytes(hello[pos : pos + 2], "big")
            size = int.from_bytes(hello[pos + 2 : pos + 4], "big")
            body = hello[pos + 4 : pos + 4 + size]
            pos += 4 + size
            if kind != _SERVER_NAME:
                continue
            at = 2
            while at + 3 <= len(body):
                name_type = body[at]
                name_len = int.from_bytes(body[at + 1 : at + 3], "big")
                name = body[at + 3 : at + 3 + name_len]
                at += 3 + name_len
                if name_type == _HOST_NAME and name:
                    text = name.decode("ascii")
                    return text.lower().rstrip(".") or None
            return None
    except (IndexError, UnicodeDecodeError):
        return None
    return None

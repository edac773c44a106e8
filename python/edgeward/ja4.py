"""Pure-Python twin of `edgeward_native.ja4_fingerprint`: the JA4 TLS client
fingerprint of a ClientHello as the client sent it (one or more TLS
records), following FoxIO's JA4 specification exactly as the Rust core
(`native/core/src/ja4/mod.rs`) does. Anything that is not a complete,
well-formed ClientHello gives None. Imports nothing of edgeward."""

from __future__ import annotations

import hashlib

__all__ = ["MAX_HELLO", "ja4_fingerprint"]

MAX_HELLO = 64 * 1024  # the longest handshake message reassembled
_SNI, _ALPN, _SIGNATURE_ALGORITHMS, _SUPPORTED_VERSIONS = 0x0000, 0x0010, 0x000D, 0x002B
_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}


class _Short(Exception):
    """The input ends (or a length points) past what is there."""


def _grease(value: int) -> bool:
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


class _Reader:
    __slots__ = ("at", "data", "end")

    def __init__(self, data: bytes, at: int = 0, end: int | None = None) -> None:
        self.data, self.at = data, at
        self.end = len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if self.end - self.at < n:
            raise _Short
        self.at += n
        return self.data[self.at - n : self.at]

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, width: int) -> _Reader:
        length = self.uint(width)
        body = _Reader(self.data, self.at, self.at + length)
        self.take(length)
        return body

    def empty(self) -> bool:
        return self.at >= self.end

    def u16s(self) -> list[int]:
        if (self.end - self.at) % 2:
            raise _Short
        return [self.uint(2) for _ in range((self.end - self.at) // 2)]


def _handshake_message(records: bytes) -> bytes:
    reader, message = _Reader(records), b""
    while True:
        kind = reader.uint(1)
        reader.take(2)
        fragment = reader.vector(2)
        if kind != 22:
            raise _Short
        message += fragment.take(fragment.end - fragment.at)
        if len(message) >= 4:
            length = int.from_bytes(message[1:4], "big")
            if length + 4 > MAX_HELLO:
                raise _Short
            if len(message) >= length + 4:
                return message[: length + 4]


def _alpn(value: bytes | None) -> str:
    if not value:
        return "00"
    first, last = value[:1], value[-1:]
    if first.isalnum() and last.isalnum() and first.isascii() and last.isascii():
        return (first + last).decode("ascii")
    digits = value.hex()
    return digits[0] + digits[-1]


def _hash12(text: str, empty: bool) -> str:
    return "000000000000" if empty else hashlib.sha256(text.encode()).hexdigest()[:12]


def _hex(values: list[int]) -> str:
    return ",".join(f"{v:04x}" for v in values)


def ja4_fingerprint(records: bytes) -> str | None:
    """The JA4 fingerprint (`t13d1516h2_8daaf6152771_e5627efa2ab1`) of the
    ClientHello at the start of `records`, or None."""
    try:
        message = _Reader(_handshake_message(records))
        if message.uint(1) != 1:
            return None
        body = message.vector(3)
        version = body.uint(2)
        body.take(32)
        body.vector(1)
        ciphers = [c for c in body.vector(2).u16s() if not _grease(c)]
        body.vector(1)
        extensions: list[int] = []
        alpn: bytes | None = None
        alpn_seen = False
        versions: list[int] = []
        algorithms: list[int] = []
        if not body.empty():
            block = body.vector(2)
            while not block.empty():
                kind = block.uint(2)
                data = block.vector(2)
                if _grease(kind):
                    continue
                extensions.append(kind)
                if kind == _ALPN and not alpn_seen:
                    alpn_seen = True
                    names = data.vector(2)
                    if not names.empty():
                        name = names.vector(1)
                        alpn = name.take(name.end - name.at)
                elif kind == _SUPPORTED_VERSIONS:
                    versions = [v for v in data.vector(1).u16s() if not _grease(v)]
                elif kind == _SIGNATURE_ALGORITHMS:
                    algorithms = [a for a in data.vector(2).u16s() if not _grease(a)]
    except _Short:
        return None
    if versions:
        version = max(versions)
    rest = sorted(e for e in extensions if e not in (_SNI, _ALPN))
    extension_text = _hex(rest) + (f"_{_hex(algorithms)}" if algorithms else "")
    return (
        f"t{_VERSIONS.get(version, '00')}{'d' if _SNI in extensions else 'i'}"
        f"{min(len(ciphers), 99):02d}{min(len(extensions), 99):02d}{_alpn(alpn)}"
        f"_{_hash12(_hex(sorted(ciphers)), not ciphers)}_{_hash12(extension_text, not rest)}"
    )

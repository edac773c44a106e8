"""HPACK tuned for a proxy's server side (RFC 7541), on hpack's primitives.

`StatelessEncoder`: every field is sent as a static-table index or as a literal *without
indexing* (RFC 7541 §6.1, §6.2.2, §6.2.3): nothing is ever added to the
dynamic table. The encoding of a field then depends on the field alone, never
on what was sent before, so it can be computed once and reused for every
response on every connection (`content-type: text/plain`, `server: nginx`,
`:status: 200`...). A proxy's responses repeat the same fields over and over;
hpack's own encoder searches its tables and re-encodes each of them per
response in Python, which was the largest single cost of an HTTP/2 response.

What this gives up: the dynamic table (a repeated field costs its literal
bytes on the wire every time, instead of one index byte) and Huffman coding
(which would cost Python time on every miss). Responses to the client are a
small part of a proxy's bytes; CPU is the scarce resource here.

It also does the normalisation h2's `normalize_outbound_headers` would
(lower-case names, values without surrounding whitespace, connection-specific
fields dropped, credentials as never-indexed fields), on a cache miss only.
hpack supplies the static table and the integer coding; only the choice of
representation is ours.

`CachingDecoder`: hpack's decoder, remembering the last few header blocks
that neither changed the dynamic table nor were decoded under other limits.
Clients send the same block again and again (every request of a load
generator or a polling API client is byte for byte the same: indexed fields
and unindexed literals), and while the table is unchanged such a block means
the same fields.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpack import Decoder
from hpack.hpack import encode_integer
from hpack.struct import HeaderTuple
from hpack.table import HeaderTable

_STATIC: dict[bytes, tuple[int, dict[bytes, int]]] = HeaderTable.STATIC_TABLE_MAPPING
"""name -> (its first static index, {value: index of the full field})."""

_NEVER_INDEXED = frozenset({b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"})
"""Credentials: sent as never-indexed literals (RFC 7541 §7.1.3, so that no
intermediary re-encoding them indexes them either), and never cached."""

_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class _FieldCache:
    """Encoded fields, shared by every connection: the encoding is a pure
    function of the field. Emptied when it holds 4096 fields or 1 MiB, so
    per-response values (dates, request ids) or an upstream's ever-new
    headers cannot make it grow; the fields that repeat are back after one
    response. Fields over 4 KiB are not kept."""

    MAX_FIELDS = 4096
    MAX_BYTES = 1024 * 1024
    MAX_FIELD = 4096

    def __init__(self) -> None:
        self.fields: dict[tuple[bytes, bytes], bytes] = {}
        self.size = 0

    def put(self, field: tuple[bytes, bytes], encoded: bytes) -> None:
        size = len(field[0]) + len(field[1]) + len(encoded)
        if size > self.MAX_FIELD:
            return
        if len(self.fields) >= self.MAX_FIELDS or self.size + size > self.MAX_BYTES:
            self.fields.clear()
            self.size = 0
        self.fields[field] = encoded
        self.size += size


_cache = _FieldCache()


class StatelessEncoder:
    """Drop-in for `hpack.Encoder` in `h2.connection.H2Connection.encoder`:
    h2 only calls `encode()` and sets `header_table_size`."""

    __slots__ = ("_announce",)

    def __init__(self) -> None:
        self._announce = True  # say "dynamic table size 0" in the first block

    @property
    def header_table_size(self) -> int:
        return 0

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        # The peer changed SETTINGS_HEADER_TABLE_SIZE. Our table stays empty
        # (size 0 is below any limit), but a decoder whose limit went down
        # expects a size update in the next block (RFC 7541 §4.2): restate 0.
        self._announce = True

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = False) -> bytes:
        parts: list[bytes] = []
        if self._announce:
            self._announce = False
            parts.append(b"\x20")  # dynamic table size update: 0
        cached = _cache.fields
        for field in headers:
            encoded = cached.get(field)
            if encoded is None:
                name = field[0].lower()
                value = field[1].strip(b" \t")
                if name in _NEVER_INDEXED:
                    parts.append(encode_field(name, value, never_indexed=True))
                    continue
                # connection-specific fields have no place in HTTP/2 (RFC 9113 §8.2.2)
                encoded = b"" if name in _CONNECTION_SPECIFIC else encode_field(name, value)
                _cache.put(field, encoded)
            parts.append(encoded)
        return b"".join(parts)


def encode_field(name: bytes, value: bytes, *, never_indexed: bool = False) -> bytes:
    """One field as an indexed field (both in the static table) or a literal
    without indexing (name indexed when the static table has it)."""
    static = _STATIC.get(name)
    if static is None:
        return (b"\x10" if never_indexed else b"\x00") + _string(name) + _string(value)
    name_index, full = static
    if not never_indexed:
        index = full.get(value)
        if index is not None:
            return bytes((0x80 | index,))  # static indices are below 128
    if name_index < 15:  # fits the 4-bit prefix
        head = bytes(((0x10 if never_indexed else 0x00) | name_index,))
    else:
        head = bytes((0x1F if never_indexed else 0x0F, name_index - 15))  # below 128 + 15
    return head + _string(value)


def _string(data: bytes) -> bytes:
    """A string literal without Huffman coding (RFC 7541 §5.2)."""
    if len(data) < 127:  # fits the 7-bit prefix
        return bytes((len(data),)) + data
    return bytes(encode_integer(len(data), 7)) + data


_DECODED_BLOCKS = 8  # per connection
_DECODED_BLOCK_BYTES = 512  # larger blocks are decoded every time


class _VersionedTable(HeaderTable):
    """hpack's header table, counting its changes (insertions and resizes)."""

    def __init__(self) -> None:
        super().__init__()
        self.version = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.version += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.version += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class CachingDecoder(Decoder):
    """Drop-in for `hpack.Decoder` in `h2.connection.H2Connection.decoder`."""

    def __init__(self) -> None:
        super().__init__()
        self.header_table = self._table = _VersionedTable()
        self._decoded: dict[bytes, tuple[tuple[int, int, int], list[HeaderTuple]]] = {}

    def decode(self, data: bytes, raw: bool = False) -> list[HeaderTuple]:
        table = self._table
        state = (table.version, self.max_header_list_size, self.max_allowed_table_size)
        hit = self._decoded.get(data)
        if hit is not None and hit[0] == state:
            return list(hit[1])
        headers: list[HeaderTuple] = super().decode(data, raw)  # type: ignore[assignment]
        if table.version == state[0] and type(data) is bytes and len(data) <= _DECODED_BLOCK_BYTES:
            if len(self._decoded) >= _DECODED_BLOCKS:
                self._decoded.clear()
            self._decoded[data] = (state, headers)
            return list(headers)
        return headers

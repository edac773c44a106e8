"""HPACK: the native decoder (native/core/src/h2/hpack.rs) against the
reference's (Python's `hpack` under h2). Header lists are encoded with
`hpack.Encoder` as a client would (Huffman or not, the dynamic table
indexing and evicting, table size changes, sensitive fields never indexed),
some blocks are then broken (bytes changed, cut, inserted, a size update
appended, a Huffman string of random bits), and each is sent as a request to
both servers through `Twin`: the same requests, or the same connection error,
on both. The RFC 7541 examples and every Huffman code are Rust unit tests."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import hpack
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from tests.http2.twin import Twin

from edgeward.http2 import NATIVE, ConnectionEnded, H2Limits, Request, StreamReset

pytestmark = pytest.mark.skipif(not NATIVE, reason="the native H2Server is not built")

_VISIBLE = bytes(range(0x21, 0x7F))
_VALUE_BYTES = _VISIBLE + b" \t" + bytes(range(0x80, 0x100))
_NAME = st.one_of(
    st.sampled_from([b"accept", b"cookie", b"authorization", b"user-agent", b"x-request-id"]),
    st.binary(min_size=1, max_size=12).map(
        lambda raw: bytes(b"abcdefghijklmnopqrstuvwxyz0123456789-_."[b % 39] for b in raw)
    ),
)
_VALUE = st.one_of(
    st.sampled_from([b"", b"*/*", b"gzip, deflate", b"session=0123456789abcdef"]),
    st.binary(max_size=60).map(lambda raw: bytes(_VALUE_BYTES[b % 193] for b in raw).strip()),
    st.sampled_from([b"a\x00b", b" lead", b"x" * 300]),  # malformed, and large
)
_FIELD = st.tuples(_NAME, _VALUE, st.booleans())  # (name, value, sensitive)
_BREAK = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 400), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 400)),
    st.tuples(st.just("insert"), st.integers(0, 400), st.binary(min_size=1, max_size=6)),
    # after the fields: size updates (valid only before them), index 0, a
    # 6-byte index (hpack takes 5 continuation bytes)
    st.tuples(
        st.just("append"),
        st.sampled_from([b"\x20", b"\x3f\xe1\x1f", b"\x80", b"\xff\x80\x80\x80\x80\x00"]),
    ),
    # a table size over our SETTINGS_HEADER_TABLE_SIZE (4096)
    st.tuples(st.just("table"), st.sampled_from([4097, 70_000])),
    # a user-agent literal of random bits marked as Huffman
    st.tuples(st.just("huffman"), st.binary(max_size=12)),
)
_REQUEST = st.fixed_dictionaries(
    {
        "path": st.binary(max_size=40).map(lambda raw: b"/" + bytes(_VISIBLE[b % 94] for b in raw)),
        "authority": st.sampled_from([b"a.test", b"www.example.com", b"127.0.0.1:8080"]),
        "fields": st.lists(_FIELD, max_size=8),
        "huffman": st.booleans(),
        # the encoder's table size before this block: a size update starts it
        "table_size": st.sampled_from([None, None, None, None, 0, 40, 256, 4096]),
        # about one block in four is broken
        "break": st.tuples(st.integers(0, 3), _BREAK).map(lambda p: p[1] if p[0] == 3 else None),
    }
)


def _started(limits: H2Limits) -> Twin:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server = Twin(limits)
    server.initiate()
    # the client acknowledges our SETTINGS first: h2 applies its limits only then
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send(), 0.0)
    server.all_sent()
    return server


def _headers(sid: int, block: bytes) -> bytes:
    """A HEADERS frame with END_STREAM and END_HEADERS."""
    return len(block).to_bytes(3, "big") + b"\x01\x05" + sid.to_bytes(4, "big") + block


def _block(encoder: hpack.Encoder, request: dict[str, Any]) -> bytes:
    if request["table_size"] is not None:
        encoder.header_table_size = request["table_size"]
    if request["break"] and request["break"][0] == "table":
        encoder.header_table_size = request["break"][1]
    fields = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", request["path"]),
        (b":authority", request["authority"]),
        *request["fields"],
    ]
    block = bytearray(encoder.encode(fields, huffman=request["huffman"]))
    match request["break"]:
        case ("set", at, byte):
            block[at % len(block)] = byte
        case ("cut", at):
            del block[at % len(block) :]
        case ("insert", at, data):
            block[at % (len(block) + 1) : at % (len(block) + 1)] = data
        case ("append", data):
            block += data
        case ("huffman", bits):
            # literal without indexing, name index 58 (user-agent), Huffman value
            block += bytes([0x0F, 58 - 15, 0x80 | len(bits)]) + bits
    return bytes(block)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_REQUEST, min_size=1, max_size=10),
    st.sampled_from([H2Limits(), H2Limits(max_header_list_size=400)]),
)
def test_same_requests_or_errors_from_hpack_blocks(
    requests: list[dict[str, Any]], limits: H2Limits
) -> None:
    server = _started(limits)
    encoder = hpack.Encoder()
    for sid, request in enumerate(requests, start=1):
        events = server.receive_data(_headers(2 * sid - 1, _block(encoder, request)), float(sid))
        for e in events:
            if isinstance(e, ConnectionEnded):
                event(f"connection error {e.error_code}")
            elif isinstance(e, Request | StreamReset):
                event(type(e).__name__)
        server.data_to_send()
        server.all_sent()
        if server.ended:
            break


_GET = bytes.fromhex("82 86 84 01 06") + b"a.test"  # :method GET, :scheme http, :path /, :authority


_CASES = {
    "only a size update": (b"\x20", False),  # valid HPACK, a malformed request
    "size update first": (b"\x20" + _GET, False),
    "several size updates": (b"\x3f\xe1\x1f\x20\x3f\xe1\x1f" + _GET, False),
    "6-byte integer": (b"\x3f\x82\x80\x80\x80\x00" + _GET, False),  # 33: hpack takes it
    "7-byte integer": (b"\x3f\x80\x80\x80\x80\x80\x00" + _GET, True),
    "size update over 4096": (b"\x3f\xe2\x1f" + _GET, True),  # our SETTINGS_HEADER_TABLE_SIZE
    "size update after a field": (_GET + b"\x20", True),
    "size update 4096 after a field": (_GET + b"\x3f\xe1\x1f", True),
    "index 0": (_GET + b"\x80", True),
    "index past the tables": (_GET + b"\xbe", True),  # 62: the dynamic table is empty
    "huffman": (_GET + b"\x0f\x2b\x81\x1f", False),  # user-agent: "a"
    "huffman 8 bits of padding": (_GET + b"\x0f\x2b\x81\xff", True),
    "huffman padding of zeros": (_GET + b"\x0f\x2b\x81\x00", True),
    "huffman EOS": (_GET + b"\x0f\x2b\x84\xff\xff\xff\xfc", True),
    "string past the block": (_GET + b"\x0f\x2b\x85", True),
}


@pytest.mark.parametrize(("block", "ended"), list(_CASES.values()), ids=list(_CASES))
def test_the_decoders_edge_cases_end_alike(block: bytes, ended: bool) -> None:
    """Where a decoder could take what the other refuses (RFC 7541 leaves
    integer limits to the decoder; hpack takes several size updates)."""
    server = _started(H2Limits())
    server.receive_data(_headers(1, block), 1.0)
    assert server.ended == ended

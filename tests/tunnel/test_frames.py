"""muxado frames: the wire layout, encode/decode round trips, the decoder's
rules (agent-protocol.md §2), and any frame sequence split anywhere."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tunnel_support import frame_list

from edgeward.tunnel import frames
from edgeward.tunnel.errors import FrameError
from edgeward.tunnel.frames import ErrorCode


def header(length: int, frame_type: int, flags: int, stream_id: int) -> bytes:
    return struct.pack(">II", length << 8 | frame_type << 4 | flags, stream_id)


def test_the_header_layout_of_the_fact_sheet() -> None:
    # length 24 bits, type 4 bits, flags 4 bits, then the stream id; SYN is 0x2, FIN 0x1
    wire = frames.encode(frames.Data(3, b"\x00\x00\x00\x00", syn=True))
    assert wire == bytes.fromhex("000004120000000300000000")
    assert frames.encode(frames.Data(5, b"", fin=True)) == bytes.fromhex("00000011 00000005")
    assert frames.encode(frames.Rst(7, ErrorCode.FLOW_CONTROL)) == bytes.fromhex(
        "00000400 00000007 00000003"
    )
    assert frames.encode(frames.WndInc(2, 0x40000)) == bytes.fromhex("00000420 00000002 00040000")
    assert frames.encode(frames.GoAway(9, ErrorCode.PROTOCOL, b"bye")) == bytes.fromhex(
        "00000b30 00000000 00000009 00000001"
    ) + (b"bye")


@pytest.mark.parametrize(
    "frame",
    [
        frames.Data(1, b"payload"),
        frames.Data(2, b"", fin=True),
        frames.Data(3, b"\x00\x00\x00\x01{}", syn=True),
        frames.Data(0x7FFFFFFF, b"x", fin=True, syn=True),
        frames.Rst(4, ErrorCode.STREAM_CLOSED),
        frames.Rst(4, 0xFFFFFFFF),
        frames.WndInc(6, 1),
        frames.WndInc(6, 0x7FFFFFFF),
        frames.GoAway(0, ErrorCode.NONE, b""),
        frames.GoAway(11, ErrorCode.REMOTE_GONE_AWAY, b"shutting down"),
    ],
)
def test_round_trip(frame: frames.Frame) -> None:
    assert frame_list(frames.encode(frame)) == [frame]


def test_the_top_bit_of_ids_and_increments_is_masked() -> None:
    # the SDK masks these (StreamID::mask, WndInc::mask)
    assert frame_list(header(0, frames.DATA, frames.FIN, 0x80000005)) == [
        frames.Data(5, b"", fin=True)
    ]
    wire = header(4, frames.WNDINC, 0, 2) + struct.pack(">I", 0x80000010)
    assert frame_list(wire) == [frames.WndInc(2, 0x10)]


def test_unknown_flag_bits_are_ignored() -> None:
    assert frame_list(header(1, frames.DATA, 0xC | frames.FIN, 3) + b"x") == [
        frames.Data(3, b"x", fin=True)
    ]


@pytest.mark.parametrize(
    ("wire", "code", "words"),
    [
        (header(0, 4, 0, 1), ErrorCode.PROTOCOL, "unknown frame type 4"),
        (header(0, 15, 0, 1), ErrorCode.PROTOCOL, "unknown frame type 15"),
        (header(3, frames.DATA, 0, 0), ErrorCode.PROTOCOL, "DATA frame on stream 0"),
        (header(4, frames.RST, 0, 0), ErrorCode.PROTOCOL, "RST frame on stream 0"),
        (header(8, frames.RST, 0, 1), ErrorCode.PROTOCOL, "RST frame of length 8"),
        (header(0, frames.RST, 0, 1), ErrorCode.PROTOCOL, "RST frame of length 0"),
        (header(4, frames.WNDINC, 0, 0), ErrorCode.PROTOCOL, "WNDINC frame on stream 0"),
        (header(3, frames.WNDINC, 0, 1), ErrorCode.PROTOCOL, "WNDINC frame of length 3"),
        (header(8, frames.GOAWAY, 0, 1), ErrorCode.PROTOCOL, "GOAWAY frame on stream 1"),
        (header(7, frames.GOAWAY, 0, 0), ErrorCode.PROTOCOL, "GOAWAY frame of length 7"),
        # the SDK's own GOAWAY counts only the message: refused like any short GOAWAY
        (header(0, frames.GOAWAY, 0, 0), ErrorCode.PROTOCOL, "GOAWAY frame of length 0"),
        (header(1025, frames.DATA, 0, 1), ErrorCode.FRAME_SIZE, "exceeds the limit of 1024"),
        (header(1025, frames.GOAWAY, 0, 0), ErrorCode.FRAME_SIZE, "exceeds the limit"),
    ],
)
def test_decoder_rules(wire: bytes, code: int, words: str) -> None:
    decoder = frames.FrameDecoder(max_length=1024)
    good = frames.encode(frames.Data(1, b"before"))
    seen: list[frames.Frame] = []
    with pytest.raises(FrameError) as caught:
        seen.extend(decoder.feed(good + wire))  # only the header is there: refused at once
    assert seen == [frames.Data(1, b"before")]
    assert caught.value.error_code == code
    assert words in caught.value.message
    assert decoder.dead
    assert list(decoder.feed(good)) == []  # a dead decoder yields nothing


def test_a_frame_of_exactly_the_limit_is_accepted() -> None:
    decoder = frames.FrameDecoder(max_length=1024)
    assert list(decoder.feed(frames.encode(frames.Data(1, b"x" * 1024)))) == [
        frames.Data(1, b"x" * 1024)
    ]


def test_partial_frames_wait_for_their_bytes() -> None:
    decoder = frames.FrameDecoder()
    wire = frames.encode(frames.Data(1, b"abcdef")) + frames.encode(frames.WndInc(1, 6))
    assert list(decoder.feed(wire[:5])) == []
    assert list(decoder.feed(wire[5:10])) == []
    assert decoder.buffered == 10
    assert list(decoder.feed(wire[10:])) == [frames.Data(1, b"abcdef"), frames.WndInc(1, 6)]
    assert decoder.buffered == 0


stream_ids = st.integers(1, frames.MAX_STREAM_ID)
codes = st.integers(0, 0xFFFFFFFF)
any_frame = st.one_of(
    st.builds(frames.Data, stream_ids, st.binary(max_size=300), st.booleans(), st.booleans()),
    st.builds(frames.Rst, stream_ids, codes),
    st.builds(frames.WndInc, stream_ids, st.integers(0, frames.MAX_INCREMENT)),
    st.builds(frames.GoAway, st.integers(0, frames.MAX_STREAM_ID), codes, st.binary(max_size=40)),
)


@given(st.lists(any_frame, max_size=30), st.lists(st.integers(0, 4000), max_size=12))
def test_any_frame_sequence_split_anywhere_decodes_the_same(
    sequence: list[frames.Frame], cuts: list[int]
) -> None:
    wire = b"".join(frames.encode(f) for f in sequence)
    points = sorted({min(c, len(wire)) for c in cuts})
    decoder = frames.FrameDecoder()
    out: list[frames.Frame] = []
    start = 0
    for point in [*points, len(wire)]:
        out.extend(decoder.feed(wire[start:point]))
        start = point
    assert out == sequence
    assert decoder.buffered == 0

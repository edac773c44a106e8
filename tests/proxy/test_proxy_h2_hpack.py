"""Our HPACK pieces against hpack itself: the stateless encoder's blocks
decode (with hpack's decoder) to the normalised fields, whatever came
before; the caching decoder decodes every block as hpack's does."""

from __future__ import annotations

from hpack import Decoder, Encoder
from hypothesis import given
from hypothesis import strategies as st

from edgeward.http2.compression import CachingDecoder, StatelessEncoder

_NAMES = st.sampled_from(
    [
        b"content-type",
        b"Content-Length",
        b"date",
        b"server",
        b"x-custom",
        b"set-cookie",
        b"authorization",
        b"connection",
        b"transfer-encoding",
        b"cache-control",
        b"etag",
        b"vary",
        b":status",
        b"x-" + b"a" * 200,
    ]
)
_VALUES = st.one_of(
    st.sampled_from([b"", b"200", b"404", b"text/plain", b"gzip", b" padded\t", b"no-cache"]),
    st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
_BLOCKS = st.lists(st.lists(st.tuples(_NAMES, _VALUES), max_size=12), min_size=1, max_size=6)

_CONNECTION_SPECIFIC = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding"}


def _normalised(fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [
        (n.lower(), v.strip(b" \t")) for n, v in fields if n.lower() not in _CONNECTION_SPECIFIC
    ]


@given(_BLOCKS)
def test_encoder_blocks_decode_to_the_normalised_fields(
    blocks: list[list[tuple[bytes, bytes]]],
) -> None:
    encoder = StatelessEncoder()
    decoder = Decoder()
    for fields in blocks:
        block = encoder.encode(fields)
        assert [tuple(h) for h in decoder.decode(block, raw=True)] == _normalised(fields)
        # nothing depends on earlier blocks: a decoder that saw none agrees
        assert Decoder().decode(encoder.encode(fields), raw=True) == _normalised(fields)
    assert len(decoder.header_table.dynamic_entries) == 0


def test_credentials_are_never_indexed_and_table_size_is_restated() -> None:
    encoder = StatelessEncoder()
    first = encoder.encode([(b"authorization", b"secret")])
    assert first[:1] == b"\x20"  # dynamic table size update: 0
    assert first[1] & 0xF0 == 0x10  # literal never indexed
    assert encoder.encode([(b"authorization", b"secret")])[:1] != b"\x20"
    encoder.header_table_size = 256  # the peer changed SETTINGS_HEADER_TABLE_SIZE
    assert encoder.encode([])[:1] == b"\x20"


@given(_BLOCKS, st.lists(st.integers(0, 5), max_size=20), st.booleans())
def test_caching_decoder_agrees_with_hpack(
    blocks: list[list[tuple[bytes, bytes]]], order: list[int], shrink: bool
) -> None:
    """Blocks from hpack's stateful encoder (indexing, evictions), sent again
    in any order, as a client repeating requests would."""
    encoder = Encoder()
    encoder.header_table_size = 512  # small: evictions happen
    reference, caching = Decoder(), CachingDecoder()
    reference.header_table_size = caching.header_table_size = 512
    sent: list[bytes] = []
    for i, fields in enumerate(blocks):
        valid = [(n.lower(), v) for n, v in fields if not n.startswith(b":")]
        sent.append(encoder.encode(valid, huffman=i % 2 == 0))
        for index in [len(sent) - 1, *order]:
            block = sent[index % len(sent)]
            try:
                expected = reference.decode(block, raw=True)
            except Exception as exc:  # an old block can refer past the table's end now
                try:
                    caching.decode(block, raw=True)
                except Exception as got:
                    assert type(got) is type(exc)
                    continue
                raise AssertionError("the caching decoder accepted what hpack refused") from exc
            assert caching.decode(block, raw=True) == expected
        if shrink:
            reference.max_header_list_size = caching.max_header_list_size = 200


@given(st.binary(max_size=40), st.integers(0, 255), st.booleans())
def test_frame_repr_text_is_unchanged(payload: bytes, pad: int, padded: bool) -> None:
    """`framerepr` only makes hyperframe's repr cheaper: same text."""
    import hyperframe.frame

    from edgeward.http2 import framerepr

    assert framerepr.ORIGINAL is not None
    assert framerepr.raw_data_repr(payload) == framerepr.ORIGINAL(payload)
    frame = hyperframe.frame.DataFrame(1, payload)
    if padded:
        frame.flags.add("PADDED")
        frame.pad_length = pad
    ours = repr(frame)
    hyperframe.frame._raw_data_repr = framerepr.ORIGINAL
    try:
        assert ours == repr(frame)
    finally:
        framerepr.install()


def test_the_field_cache_is_bounded() -> None:
    from edgeward.http2 import compression

    encoder = StatelessEncoder()
    for i in range(3000):
        encoder.encode([(b"x-unique", b"%d" % i + b"v" * 1000)])
        encoder.encode([(b"x-huge", b"%d" % i + b"v" * 10000)])
    assert compression._cache.size <= compression._FieldCache.MAX_BYTES
    assert not any(name == b"x-huge" for name, _ in compression._cache.fields)

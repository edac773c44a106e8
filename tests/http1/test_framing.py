"""`edgeward.http1.framing`: the one decision of how a body is delimited,
which both builds of the fast codec and the proxy ask."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeward.http1 import fast as fast_py
from edgeward.http1.framing import (
    CHUNKED,
    LENGTH,
    UNTIL_CLOSE,
    FramingError,
    body_framing,
    framing_of,
    has_body,
)


def test_requests() -> None:
    assert body_framing(None, None) == (LENGTH, 0)
    assert body_framing([], []) == (LENGTH, 0)
    assert body_framing([b"12"], None) == (LENGTH, 12)
    assert body_framing([b"007"], None) == (LENGTH, 7)
    assert body_framing(None, [b"chunked"]) == (CHUNKED, 0)
    assert body_framing(None, [b"Chunked"]) == (CHUNKED, 0)


def test_responses() -> None:
    assert body_framing(None, None, b"GET", 200) == (UNTIL_CLOSE, 0)
    assert body_framing([b"5"], None, b"GET", 200) == (LENGTH, 5)
    assert body_framing(None, [b"chunked"], b"POST", 500) == (CHUNKED, 0)
    for method, status in ((b"HEAD", 200), (b"GET", 204), (b"GET", 304), (b"GET", 100)):
        assert body_framing([b"5"], None, method, status) == (LENGTH, 0)
        assert body_framing(None, [b"chunked"], method, status) == (LENGTH, 0)
        assert body_framing(None, None, method, status) == (LENGTH, 0)


@pytest.mark.parametrize(
    ("lengths", "codings", "status"),
    [
        ([b"1", b"1"], None, 400),
        ([b""], None, 400),
        ([b"+5"], None, 400),
        ([b" 5"], None, 400),
        ([b"5,5"], None, 400),
        ([b"\xd9\xa1"], None, 400),  # a non-ASCII digit
        ([b"1" * 19], None, 400),
        ([b"5"], [b"chunked"], 400),
        (None, [b"gzip"], 501),
        (None, [b"gzip, chunked"], 501),
        (None, [b"chunked", b"chunked"], 501),
    ],
)
def test_refused(lengths: list[bytes] | None, codings: list[bytes] | None, status: int) -> None:
    with pytest.raises(FramingError) as caught:
        body_framing(lengths, codings)
    assert caught.value.status == status
    with pytest.raises(FramingError):  # checked even where a response has no body
        body_framing(lengths, codings, b"HEAD", 200)


def test_framing_of_a_header_list() -> None:
    headers = [(b"host", b"a"), (b"content-length", b"3"), (b"x", b"content-length")]
    assert framing_of(headers) == (LENGTH, 3)
    assert framing_of([(b"transfer-encoding", b"chunked")], b"GET", 200) == (CHUNKED, 0)
    assert framing_of([], b"GET", 200) == (UNTIL_CLOSE, 0)
    with pytest.raises(FramingError):
        framing_of([(b"content-length", b"1"), (b"content-length", b"1")])


def test_has_body() -> None:
    assert not has_body(LENGTH, 0)
    assert has_body(LENGTH, 1) and has_body(CHUNKED, 0) and has_body(UNTIL_CLOSE, 0)


def test_the_fast_codec_uses_the_same_numbers() -> None:
    assert (fast_py.F_LENGTH, fast_py.F_CHUNKED, fast_py.F_UNTIL_CLOSE) == (
        LENGTH,
        CHUNKED,
        UNTIL_CLOSE,
    )


@given(st.binary(max_size=20))
def test_any_length_value_is_a_length_or_refused(value: bytes) -> None:
    try:
        framing, length = body_framing([value], None)
    except FramingError as exc:
        assert exc.status == 400
        assert not (value.isdigit() and len(value) <= 18)
    else:
        assert framing == LENGTH and length == int(value) and value.isdigit()

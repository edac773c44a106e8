"""Every codec makes the same of the same bytes, however they are split:
the same messages (head, body, trailers) or the same rejection."""

from __future__ import annotations

import pytest
from h1support import (
    CLIENT_CODECS,
    SERVER_CODECS,
    SMALL_LIMITS,
    drive_client,
    drive_server,
    mutated,
    requests,
    responses,
    split,
)
from hypothesis import given
from hypothesis import strategies as st

from edgeward.http1 import DEFAULT_LIMITS, Request

cuts = st.lists(st.integers(0, 10_000), max_size=6)
limits = st.sampled_from([DEFAULT_LIMITS, SMALL_LIMITS])


def agree_as_server(data: bytes, cut: list[int], eof: bool, lim: object) -> None:
    pieces = split(data, cut)
    results = {name: drive_server(make(lim), pieces, eof) for name, make in SERVER_CODECS.items()}
    reference = results.pop("h11")
    for name, result in results.items():
        assert result == reference, name
    # the reference itself does not depend on how the bytes were split
    assert drive_server(SERVER_CODECS["h11"](lim), split(data, []), eof) == reference


@given(st.lists(requests(), min_size=1, max_size=3), cuts, st.booleans(), limits)
def test_valid_requests(messages: list[bytes], cut: list[int], eof: bool, lim: object) -> None:
    agree_as_server(b"".join(messages), cut, eof, lim)


@given(mutated(requests()), cuts, st.booleans(), limits)
def test_damaged_requests(data: bytes, cut: list[int], eof: bool, lim: object) -> None:
    agree_as_server(data, cut, eof, lim)


@given(st.binary(max_size=60), cuts, st.booleans())
def test_garbage(data: bytes, cut: list[int], eof: bool) -> None:
    agree_as_server(data, cut, eof, SMALL_LIMITS)


METHODS = st.sampled_from([b"GET", b"HEAD", b"POST", b"CONNECT"])


def agree_as_client(method: bytes, upgrade: bool, data: bytes, cut: list[int], eof: bool) -> None:
    target = b"example.com:443" if method == b"CONNECT" else b"/"
    headers = [(b"host", b"example.com")]
    if upgrade:
        headers += [(b"connection", b"upgrade"), (b"upgrade", b"x")]
    reqs = [Request(method, target, headers) for _ in range(3)]
    pieces = split(data, cut)
    results = {
        name: drive_client(make(SMALL_LIMITS), reqs, pieces, eof)
        for name, make in CLIENT_CODECS.items()
    }
    reference = results.pop("h11")
    for name, result in results.items():
        assert result == reference, name


@given(st.data(), METHODS, st.booleans(), cuts, st.booleans())
def test_valid_responses(
    data: st.DataObject, method: bytes, upgrade: bool, cut: list[int], eof: bool
) -> None:
    stream = b"".join(data.draw(st.lists(responses(method), min_size=1, max_size=3)))
    agree_as_client(method, upgrade, stream, cut, eof)


@given(st.data(), METHODS, st.booleans(), cuts, st.booleans())
def test_damaged_responses(
    data: st.DataObject, method: bytes, upgrade: bool, cut: list[int], eof: bool
) -> None:
    agree_as_client(method, upgrade, data.draw(mutated(responses(method))), cut, eof)


@pytest.mark.parametrize(
    "data",
    [
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_known_attacks(data: bytes) -> None:
    agree_as_server(data, [], True, DEFAULT_LIMITS)

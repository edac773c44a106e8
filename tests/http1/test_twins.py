"""The compiled fast-path modules do exactly what their pure-Python source
does (Cython compiles the same file; this guards the typed parts: C integers,
bounds, the byte-class loops). Skipped when the package was built without
Cython; the pure twins are tested everywhere else either way."""

from __future__ import annotations

from typing import Any

import pytest
from h1support import drive_server, mutated, requests, split
from hypothesis import given
from hypothesis import strategies as st

from edgeward.http1 import (
    Data,
    EndOfMessage,
    InformationalResponse,
    Limits,
    LocalProtocolError,
    Request,
    Response,
)
from edgeward.http1 import fast as fast_py
from edgeward.http1 import forwarding as forwarding_py

fast_c = pytest.importorskip("edgeward.http1._fast")
forwarding_c = pytest.importorskip("edgeward.http1._forwarding")


def test_the_builds_are_what_they_say() -> None:
    assert fast_c.compiled() and forwarding_c.compiled()
    assert not fast_py.compiled() and not forwarding_py.compiled()


@given(st.one_of(mutated(requests()), st.binary(max_size=80)), st.lists(st.integers(0, 999)))
def test_server_codecs_parse_alike(data: bytes, cuts: list[int]) -> None:
    pieces = split(data, cuts)
    limits = Limits(max_header_bytes=300, max_header_count=6, max_target_length=40)
    assert drive_server(fast_c.FastServerCodec(limits), pieces, True) == drive_server(
        fast_py.FastServerCodec(limits), pieces, True
    )


any_bytes = st.binary(max_size=12)
any_headers = st.lists(
    st.tuples(st.sampled_from([b"host", b"x", b"X", b"content-length", b"a b", b""]), any_bytes),
    max_size=4,
)
events = st.one_of(
    st.builds(Request, st.sampled_from([b"GET", b"POST", b"G T"]), any_bytes, any_headers),
    st.builds(Response, st.integers(99, 1000), any_headers, reason=any_bytes),
    st.builds(InformationalResponse, st.integers(99, 200), any_headers),
    st.builds(Data, any_bytes),
    st.builds(EndOfMessage, any_headers),
)


def outcome(codec: Any, event: Any) -> object:
    try:
        return codec.send(event), codec.our_state, codec.keep_alive
    except LocalProtocolError:
        return "refused", codec.our_state


@given(st.sampled_from(["FastServerCodec", "FastClientCodec"]), st.lists(events, max_size=5))
def test_codecs_serialise_alike(kind: str, sequence: list[Any]) -> None:
    compiled, pure = getattr(fast_c, kind)(), getattr(fast_py, kind)()
    if kind == "FastServerCodec":
        for codec in (compiled, pure):
            codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            codec.next_event()
            codec.next_event()
    for event in sequence:
        assert outcome(compiled, event) == outcome(pure, event)


header_lists = st.lists(
    st.tuples(
        st.sampled_from(
            [
                *(b"connection", b"keep-alive", b"x-forwarded-for", b"forwarded", b"host", b"a"),
                *(b"x-forwarded-proto", b"x-forwarded-host", b"content-length", b"upgrade", b"te"),
            ]
        ),
        st.one_of(st.sampled_from([b"a, b", b"close", b" A ,keep-alive", b"1.2.3.4"]), any_bytes),
    ),
    max_size=8,
)


@given(header_lists, st.sampled_from(["10.0.0.1", "::1"]), any_bytes, st.booleans())
def test_forwarding_alike(headers: Any, ip: str, host: bytes, trusted: bool) -> None:
    assert forwarding_c.strip_hop_by_hop(headers) == forwarding_py.strip_hop_by_hop(headers)
    assert forwarding_c.connection_tokens(headers) == forwarding_py.connection_tokens(headers)
    assert forwarding_c.add_forwarding(
        headers, ip, b"https", host, trusted=trusted
    ) == forwarding_py.add_forwarding(headers, ip, b"https", host, trusted=trusted)

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
from edgeward.http1 import event_classes as events_py
from edgeward.http1 import fast as fast_py
from edgeward.http1 import forwarding as forwarding_py
from edgeward.http1 import framing as framing_py

fast_c = pytest.importorskip("edgeward.http1._fast")
forwarding_c = pytest.importorskip("edgeward.http1._forwarding")
events_c = pytest.importorskip("edgeward.http1._event_classes")
framing_c = pytest.importorskip("edgeward.http1._framing")


def test_the_builds_are_what_they_say() -> None:
    assert fast_c.compiled() and forwarding_c.compiled() and events_c.compiled()
    assert framing_c.compiled() and not framing_py.compiled()
    assert not fast_py.compiled() and not forwarding_py.compiled()
    assert not events_py.compiled()


EVENT_ARGS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("Request", (b"GET", b"/", [(b"host", b"a")]), {}),
    ("Request", (b"GET", b"/"), {"headers": [], "http_version": b"1.0"}),
    ("Response", (200, [(b"a", b"b")]), {"reason": b"OK"}),
    ("Response", (204, [], b"1.0", b"No Content"), {}),
    ("InformationalResponse", (101, [(b"upgrade", b"websocket")]), {}),
    ("Data", (b"body",), {}),
    ("Data", (), {"data": b""}),
    ("EndOfMessage", (), {}),
    ("EndOfMessage", ([(b"trailer", b"1")],), {}),
    ("ConnectionClosed", (), {}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), EVENT_ARGS)
def test_event_classes_alike(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    compiled = getattr(events_c, name)(*args, **kwargs)
    pure = getattr(events_py, name)(*args, **kwargs)
    assert repr(compiled) == repr(pure)
    assert compiled == getattr(events_c, name)(*args, **kwargs)
    assert compiled != pure  # different classes, as two dataclasses are
    fields = [f for f in dir(pure) if not f.startswith("_")]
    assert [getattr(compiled, f) for f in fields] == [getattr(pure, f) for f in fields]
    for event in (compiled, pure):
        with pytest.raises(TypeError):
            hash(event)
        if fields:
            setattr(event, fields[0], "anything")  # mutable, and types are not enforced
            assert getattr(event, fields[0]) == "anything"


def test_end_of_message_gets_a_fresh_trailer_list() -> None:
    for events in (events_c, events_py):
        first, second = events.EndOfMessage(), events.EndOfMessage()
        first.headers.append((b"a", b"b"))
        assert second.headers == []


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


def framing(build: Any, *args: Any) -> object:
    try:
        return build.body_framing(*args)
    except build.FramingError as exc:
        return "refused", exc.status, str(exc)


field_values = st.one_of(
    st.none(),
    st.lists(
        st.one_of(st.sampled_from([b"0", b"12", b"chunked", b"CHUNKED", b"gzip"]), any_bytes),
        max_size=2,
    ),
)


@given(
    field_values,
    field_values,
    st.sampled_from([None, b"GET", b"HEAD"]),
    st.sampled_from([100, 101, 200, 204, 304, 500]),
)
def test_framing_alike(lengths: Any, codings: Any, method: Any, status: int) -> None:
    assert framing_c.FramingError is framing_py.FramingError  # one class: `except` catches both
    args = (lengths, codings, method, status)
    assert framing(framing_c, *args) == framing(framing_py, *args)

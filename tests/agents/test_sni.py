"""The SNI reader of tls passthrough, against real ClientHellos (the
stdlib's OpenSSL), split anywhere, and bytes that are not one."""

from __future__ import annotations

import contextlib
import ssl

from hypothesis import given
from hypothesis import strategies as st

from edgeward.agents.sni import MAX_HELLO, NEED_MORE, client_hello_sni


def client_hello(server_name: str | None) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):  # the hello is written, the answer awaited
        tls.do_handshake()
    return outgoing.read()


HELLO = client_hello("App.Example.com")


def test_the_server_name_of_a_real_client_hello() -> None:
    assert client_hello_sni(HELLO) == "app.example.com"
    assert client_hello_sni(client_hello(None)) is None  # no SNI


@given(st.integers(min_value=0, max_value=len(HELLO) - 1))
def test_a_partial_hello_needs_more(cut: int) -> None:
    assert client_hello_sni(HELLO[:cut]) is NEED_MORE


@given(st.binary(max_size=64))
def test_other_bytes_are_not_a_hello(data: bytes) -> None:
    result = client_hello_sni(b"GET / HTTP/1.1\r\n" + data)
    assert result is None


def test_a_hello_split_across_records() -> None:
    record = HELLO[5:]  # the handshake message
    first, second = record[:40], record[40:]
    split = (
        b"\x16\x03\x01" + len(first).to_bytes(2, "big") + first
        + b"\x16\x03\x01" + len(second).to_bytes(2, "big") + second
    )  # fmt: skip
    assert client_hello_sni(split) == "app.example.com"


def test_the_size_is_bounded() -> None:
    endless = b"\x16\x03\x01\x40\x00" + b"\x01\x00\xff\xff" + b"\x00" * (MAX_HELLO - 9)
    assert client_hello_sni(endless) is None

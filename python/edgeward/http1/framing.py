"""How an HTTP/1.1 message body is delimited (RFC 9112 §6.3): the one place
that decides, from a head's Content-Length and Transfer-Encoding values.

The fast codec asks it for every message it parses or sends, the proxy for
whether a request has a body and how to frame what it forwards. (The h11
codec lets h11 decide; `rules.check_framing_fields` is the independent
reference the differential tests hold both codecs to.)

Written in Cython's pure-Python mode, as `fast.py` is: this file is the
pure-Python twin and `_framing.pyx` compiles the very same source, so the
compiled codec's four calls per proxied request run compiled too.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from edgeward.http1.events import FramingError

if TYPE_CHECKING:  # the shim is typed; Cython's own `cython` module is not
    from edgeward.http1 import _cython_shim as cython
else:
    try:
        import cython
    except ModuleNotFoundError:  # pragma: no cover - Cython is a build-time tool
        from edgeward.http1 import _cython_shim as cython

__all__ = [
    "CHUNKED",
    "LENGTH",
    "MAX_LENGTH_DIGITS",
    "UNTIL_CLOSE",
    "FramingError",
    "body_framing",
    "compiled",
    "framing_of",
    "has_body",
]

LENGTH: Final = 0
"""A Content-Length body (a length of 0: no body)."""
CHUNKED: Final = 1
UNTIL_CLOSE: Final = 2
"""A response without either field: the body ends when the connection does."""

MAX_LENGTH_DIGITS: Final = 18
"""Content-Length values of more digits are refused (no 64-bit overflow)."""


def body_framing(
    lengths: list[bytes] | None,
    codings: list[bytes] | None,
    response_to: bytes | None = None,
    status: int = 200,
) -> tuple[int, int]:
    """`(framing, length)` of a message whose head has these Content-Length
    and Transfer-Encoding values (each field's values in order; None or []
    for none): `(CHUNKED, 0)`, `(LENGTH, n)`, or with neither field
    `(LENGTH, 0)` for a request and `(UNTIL_CLOSE, 0)` for a response.
    `response_to` is None for a request, for a response the method of its
    request: a response to HEAD, a 1xx, 204 or 304 has no body whatever its
    fields say (they are still checked). One Content-Length of 1-18 digits,
    never next to Transfer-Encoding (request smuggling), and only `chunked`
    as a coding (case-insensitive; 501), else FramingError."""
    framing, length = LENGTH, 0
    if lengths:
        value = lengths[0]
        if (
            len(lengths) > 1
            or not value
            or len(value) > MAX_LENGTH_DIGITS
            or not value.isdigit()  # ASCII digits only, for bytes
        ):
            raise FramingError("malformed Content-Length")
        if codings:
            raise FramingError("both Content-Length and Transfer-Encoding")
        length = int(value)
    elif codings:
        if len(codings) > 1 or codings[0].lower() != b"chunked":
            raise FramingError("only Transfer-Encoding: chunked is supported", 501)
        framing = CHUNKED
    elif response_to is not None:
        framing = UNTIL_CLOSE
    if response_to is not None and (status < 200 or status in (204, 304) or response_to == b"HEAD"):
        return LENGTH, 0
    return framing, length


def framing_of(
    headers: Iterable[tuple[bytes, bytes]],
    response_to: bytes | None = None,
    status: int = 200,
) -> tuple[int, int]:
    """`body_framing` of a head given as its (lower-case name, value) list."""
    lengths = []
    codings = []
    for name, value in headers:
        if name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            codings.append(value)
    return body_framing(lengths, codings, response_to, status)


def has_body(framing: int, length: int) -> bool:
    """Whether a message of this framing may carry body bytes."""
    return framing != LENGTH or length > 0


def compiled() -> bool:
    """Whether this module is the Cython-compiled build."""
    return bool(cython.compiled)

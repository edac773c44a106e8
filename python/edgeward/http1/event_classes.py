"""The event classes of `edgeward.http1.events` (which re-exports them).

Plain data, compared and shown as dataclasses are. Written in Cython's
pure-Python mode: `_event_classes.pyx` compiles this same source into
extension types, which cost a fifth of a Python dataclass to create (a
proxied request makes ten events). Field types are not enforced (as with
dataclasses): the annotations are for readers and mypy.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the shim is typed; Cython's own `cython` module is not
    from edgeward.http1 import _cython_shim as cython
else:
    try:
        import cython
    except ModuleNotFoundError:  # pragma: no cover - Cython is a build-time tool
        from edgeward.http1 import _cython_shim as cython

Headers = list[tuple[bytes, bytes]]


@cython.annotation_typing(False)
@cython.dataclasses.dataclass
@cython.final
@cython.cclass
class Request:
    method: bytes
    target: bytes
    headers: Headers
    http_version: bytes = b"1.1"  # b"1.0" or b"1.1"


@cython.annotation_typing(False)
@cython.dataclasses.dataclass
@cython.final
@cython.cclass
class Response:
    status_code: int
    headers: Headers
    http_version: bytes = b"1.1"
    reason: bytes = b""


@cython.annotation_typing(False)
@cython.dataclasses.dataclass
@cython.final
@cython.cclass
class InformationalResponse:
    """A 1xx response (100 Continue, 101 Switching Protocols)."""

    status_code: int
    headers: Headers
    http_version: bytes = b"1.1"
    reason: bytes = b""


@cython.annotation_typing(False)
@cython.dataclasses.dataclass
@cython.final
@cython.cclass
class Data:
    data: bytes


@cython.annotation_typing(False)
@cython.dataclasses.dataclass(init=False)
@cython.final
@cython.cclass
class EndOfMessage:
    headers: Headers  # trailers

    def __init__(self, headers: Headers | None = None) -> None:
        # not a default_factory: compiled, that costs more than the event
        self.headers = [] if headers is None else headers


@cython.annotation_typing(False)
@cython.dataclasses.dataclass
@cython.final
@cython.cclass
class ConnectionClosed:
    """The peer closed its side cleanly between messages."""


def compiled() -> bool:
    """Whether this module is the Cython-compiled build."""
    return bool(cython.compiled)

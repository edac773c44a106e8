"""`Twin`: the reference `H2Server` (h2) and the native one side by side,
behind the one interface. Every call goes to both; what they return, the
events they emit and the frames they queue must agree (events exactly,
connection ends by their error code; frames as decoded: header blocks as
field lists, DATA, RST_STREAM and GOAWAY codes, WINDOW_UPDATE increments).
The reference's results are returned, so any test written against
`H2Server` runs unchanged as a differential test."""

from __future__ import annotations

from typing import Any

from hpack import Decoder

from edgeward.http2 import ConnectionEnded, H2Limits, WindowOpened
from edgeward.http2.connection import H2Server as Reference
from edgeward.http2.fast import H2Server as Native

_DEFAULT = H2Limits()


def comparable(events: list[Any]) -> list[Any]:
    """Connection ends compare by code: the reasons of protocol errors are
    each implementation's own words."""
    return [("ended", e.error_code) if isinstance(e, ConnectionEnded) else e for e in events]


class _Frames:
    """Decodes one side's output, frame by frame, with its own HPACK decoder."""

    def __init__(self) -> None:
        self.decoder = Decoder()
        self.pending = b""  # a header block waiting for CONTINUATION frames
        self.buffer = b""

    def frames(self, data: bytes) -> list[tuple[Any, ...]]:
        self.buffer += data
        out: list[tuple[Any, ...]] = []
        pos = 0
        buf = self.buffer
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos : pos + 3], "big")
            ftype, flags = buf[pos + 3], buf[pos + 4]
            sid = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
            payload = buf[pos + 9 : pos + 9 + length]
            pos += 9 + length
            if ftype in (1, 9):  # HEADERS, CONTINUATION
                self.pending += payload
                if flags & 0x4:
                    fields = [tuple(f) for f in self.decoder.decode(self.pending, raw=True)]
                    self.pending = b""
                    out.append(("headers", sid, flags & 0x1, fields))
            elif ftype == 0:
                out.append(("data", sid, flags & 0x1, payload))
            else:
                out.append((ftype, flags, sid, payload))
        self.buffer = buf[pos:]
        return out


_ANSWERS = {(4, 1), (6, 1)}  # SETTINGS ACK, PING ACK


class Twin:
    def __init__(self, limits: H2Limits = _DEFAULT, scheme: bytes = b"http") -> None:
        self.ref = Reference(limits, scheme)
        self.nat = Native(limits, scheme)
        self._ref_frames, self._nat_frames = _Frames(), _Frames()
        self._flooded = False

    @property
    def limits(self) -> H2Limits:
        return self.ref.limits

    @limits.setter
    def limits(self, limits: H2Limits) -> None:
        self.ref.limits = self.nat.limits = limits

    @property
    def scheme(self) -> bytes:
        return self.ref.scheme

    @property
    def ended(self) -> bool:
        assert self.ref.ended == self.nat.ended
        return self.ref.ended

    def _both(self, name: str, *args: Any) -> Any:
        try:
            result = getattr(self.ref, name)(*args)
        except Exception:
            try:
                getattr(self.nat, name)(*args)
            except Exception:
                raise
            raise AssertionError(f"only the reference refused {name}{args!r}") from None
        getattr(self.nat, name)(*args)
        return result

    def initiate(self) -> None:
        self._both("initiate")

    def receive_data(self, data: bytes, now: float) -> list[Any]:
        ref = self.ref.receive_data(data, now)
        nat = self.nat.receive_data(data, now)
        if any(
            isinstance(e, ConnectionEnded) and e.reason == "too many control frames" for e in ref
        ):
            # a flood is cut within h2's slice of 64 frames, or at the frame past
            # the limit: the SETTINGS frames before the cut may differ in number
            self._flooded = True
            ref_seen = [e for e in comparable(ref) if e != WindowOpened(0)]
            nat_seen = [e for e in comparable(nat) if e != WindowOpened(0)]
        else:
            ref_seen, nat_seen = comparable(ref), comparable(nat)
        assert nat_seen == ref_seen, f"native {nat_seen!r:.2000}\nreference {ref_seen!r:.2000}"
        return ref

    def data_to_send(self) -> bytes:
        ref, nat = self.ref.data_to_send(), self.nat.data_to_send()
        ref_frames, nat_frames = self._ref_frames.frames(ref), self._nat_frames.frames(nat)
        if self._flooded:
            # h2 answers in slices of 64 frames, the native side stops at the
            # frame past the limit: how many answers went out may differ
            ref_frames = [f for f in ref_frames if f[:2] not in _ANSWERS and f[0] != 3]
            nat_frames = [f for f in nat_frames if f[:2] not in _ANSWERS and f[0] != 3]
        assert nat_frames == ref_frames, (
            f"native {nat_frames!r:.2000}\nreference {ref_frames!r:.2000}"
        )
        return ref

    def all_sent(self) -> None:
        self._both("all_sent")

    def goaway(self, error_code: int = 0) -> None:
        self._both("goaway", error_code)

    def send_headers(
        self,
        stream_id: int,
        status: int,
        headers: list[tuple[bytes, bytes]],
        end_stream: bool = False,
    ) -> None:
        self._both("send_headers", stream_id, status, headers, end_stream)

    def send_window(self, stream_id: int) -> int:
        ref, nat = self.ref.send_window(stream_id), self.nat.send_window(stream_id)
        assert nat == ref or (ref < 0 and nat in (0, -1)), (nat, ref)
        return int(ref)

    def send_data(self, stream_id: int, data: bytes) -> None:
        self._both("send_data", stream_id, data)

    def end_stream(
        self, stream_id: int, trailers: list[tuple[bytes, bytes]], data: bytes = b""
    ) -> None:
        self._both("end_stream", stream_id, trailers, data)

    def finish_response(
        self,
        stream_id: int,
        head: tuple[int, list[tuple[bytes, bytes]]] | None,
        data: bytes,
        trailers: list[tuple[bytes, bytes]],
    ) -> bool:
        ref = self.ref.finish_response(stream_id, head, data, trailers)
        nat = self.nat.finish_response(stream_id, head, data, trailers)
        assert nat == ref, (nat, ref)
        return ref

    def consumed(self, stream_id: int, flow_length: int) -> None:
        self._both("consumed", stream_id, flow_length)

    def reset(self, stream_id: int, error_code: int = 8) -> None:
        self._both("reset", stream_id, error_code)


def implementations(module: str) -> Any:
    """An autouse fixture for a test module that builds `H2Server`s: each of
    its tests runs on `edgeward.http2.H2Server` (the build the backend
    chose), then on the `Twin` (skipped without the native build)."""
    import sys

    import pytest

    from edgeward.http2 import NATIVE

    @pytest.fixture(autouse=True, params=["chosen", "twin"])
    def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
        if request.param == "twin":
            if not NATIVE:
                pytest.skip("the native H2Server is not built (EDGEWARD_BACKEND=python)")
            monkeypatch.setattr(sys.modules[module], "H2Server", Twin)
        return str(request.param)

    return implementation

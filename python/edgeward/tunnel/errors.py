"""Errors of the tunnel protocol. Each carries what a caller acts on: a muxado
error code to put on the wire, a stream id, the message field that failed,
the ngrok error code of a refused RPC."""

from __future__ import annotations

from edgeward.errors import EdgewardError


class TunnelError(EdgewardError):
    """Root of the tunnel package's errors."""


class FrameError(TunnelError):
    """The peer broke the framing: the session ends with GOAWAY(`error_code`)."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


class StreamClosedError(TunnelError):
    """The stream is not open for what was asked (unknown, reset, or our side
    already sent FIN)."""

    def __init__(self, stream_id: int, message: str = "stream is closed") -> None:
        super().__init__(f"stream {stream_id}: {message}")
        self.stream_id = stream_id


class FlowControlError(TunnelError):
    """More data than the peer's window for the stream allows."""

    def __init__(self, stream_id: int, size: int, window: int) -> None:
        super().__init__(f"stream {stream_id}: {size} bytes exceed the send window of {window}")
        self.stream_id = stream_id
        self.size = size
        self.window = window


class SessionClosedError(TunnelError):
    """No new stream can be opened: the session failed, was closed, either
    side sent GOAWAY, or the stream limit or id space is exhausted.
    `error_code` is the muxado code that says which."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class MessageError(TunnelError):
    """An RPC message or proxy header that cannot be decoded. `where` names the
    message and field (`Bind.Opts.ProxyProto`)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class RpcError(TunnelError):
    """An RPC answered with `{"Error": ...}`. Lines of the text that start
    with `ERR_NGROK_` are the error code, the others the message (as the ngrok
    SDK splits them)."""

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(f"{message} ({error_code})" if error_code else message)
        self.message = message
        self.error_code = error_code

    @classmethod
    def from_text(cls, text: str) -> RpcError:
        code = None
        lines = []
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("ERR_NGROK_"):
                code = line.strip()
            else:
                lines.append(line)
        return cls("\n".join(lines), code)

    def to_text(self) -> str:
        return f"{self.message}\n{self.error_code}" if self.error_code else self.message


class StreamResetError(TunnelError):
    """The stream was reset (by the peer, or by us for a protocol violation)."""

    def __init__(self, stream_id: int, error_code: int) -> None:
        super().__init__(f"stream {stream_id} reset with error code {error_code:#x}")
        self.stream_id = stream_id
        self.error_code = error_code

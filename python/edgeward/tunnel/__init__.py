"""The agent tunnel protocol: muxado framing and typed streams with the JSON
RPC of the ngrok agent protocol, wire-compatible with the official ngrok
agent SDKs (docs/agents.md).

Layers, bottom up, all sans-IO except the last:

* `frames`: the 8-byte header, four frame types, the decoder's rules;
* `mux`: `Session`, streams and windows (events in `events`);
* `messages`: stream types, RPC bodies, the Proxy header; `rpc` reads them
  off streams; `heartbeat` times the beats;
* `server` / `client`: `ServerSession` (the edge) and `ClientSession` (the
  agent), protocol state machines over a `Session`;
* `trio_session`: the trio driver (`serve_agent`, `open_agent_session`,
  `TunnelStream`), the package's only trio module.
"""

from edgeward.tunnel.client import ClientSession
from edgeward.tunnel.errors import (
    FlowControlError,
    FrameError,
    MessageError,
    RpcError,
    SessionClosedError,
    StreamClosedError,
    StreamResetError,
    TunnelError,
)
from edgeward.tunnel.frames import ErrorCode
from edgeward.tunnel.messages import (
    Auth,
    AuthExtra,
    AuthResp,
    AuthRespExtra,
    Bind,
    BindExtra,
    BindResp,
    EdgeType,
    HttpOpts,
    ProxyHeader,
    StopTunnel,
    StreamType,
    TcpOpts,
    TlsOpts,
    Unbind,
)
from edgeward.tunnel.mux import DEFAULT_WINDOW, Session
from edgeward.tunnel.server import ServerSession

__all__ = [
    "DEFAULT_WINDOW",
    "Auth",
    "AuthExtra",
    "AuthResp",
    "AuthRespExtra",
    "Bind",
    "BindExtra",
    "BindResp",
    "ClientSession",
    "EdgeType",
    "ErrorCode",
    "FlowControlError",
    "FrameError",
    "HttpOpts",
    "MessageError",
    "ProxyHeader",
    "RpcError",
    "ServerSession",
    "Session",
    "SessionClosedError",
    "StopTunnel",
    "StreamClosedError",
    "StreamResetError",
    "StreamType",
    "TcpOpts",
    "TlsOpts",
    "TunnelError",
    "Unbind",
]

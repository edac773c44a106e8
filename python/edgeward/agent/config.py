"""The agent's configuration: the agent config file (version 3, the shape of
ngrok's agent config), the command line and the environment, merged into
`AgentSettings` and a list of `EndpointSpec`s.

    version: 3
    agent:
      authtoken: ewt_...
      connect_url: edge.example.com:4443
      connect_cas: /etc/edgeward/ca.pem
      heartbeat_interval: 10s
      heartbeat_tolerance: 15s
    endpoints:
      - name: app
        url: https://alice.internal
        pooling_enabled: false
        traffic_policy: {on_http_request: [...]}
        upstream: {url: 8080, protocol: http1}

Precedence: command line, then ``EDGEWARD_AUTHTOKEN`` (the authtoken only),
then the file. The default file is ``$XDG_CONFIG_HOME/edgeward/agent.yml``
(``~/.config/edgeward/agent.yml``); `edgeward agent config add-authtoken`
writes the token there.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from edgeward.document import Document, load_document
from edgeward.errors import ConfigError, EdgewardError

ENV_AUTHTOKEN = "EDGEWARD_AUTHTOKEN"
ENV_CONFIG = "EDGEWARD_AGENT_CONFIG"
DEFAULT_SERVER = "localhost:4443"

Kind = Literal["http", "https", "tcp", "tls"]
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_AGENT_KEYS = {
    "authtoken",
    "connect_url",
    "connect_cas",
    "heartbeat_interval",
    "heartbeat_tolerance",
}
_ENDPOINT_KEYS = {"name", "url", "bindings", "traffic_policy", "upstream", "pooling_enabled"}


class AgentConfigError(EdgewardError):
    pass


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the agent sends what comes through the tunnel."""

    scheme: Literal["http", "https", "tcp"]  # tcp: raw bytes (tcp and tls endpoints)
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One endpoint the agent binds and serves."""

    name: str
    kind: Kind  # the Bind's Proto
    url: str  # "" lets the edge choose
    upstream: Upstream
    traffic_policy: str | None = None  # YAML or JSON text, sent as is
    pooling_enabled: bool = False
    bindings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentSettings:
    authtoken: str
    server: str  # host:port of the edge's agent ingress
    ca_file: Path | None = None  # None: the system's trusted CAs
    heartbeat_interval: float = 10.0
    heartbeat_tolerance: float = 15.0
    endpoints: tuple[EndpointSpec, ...] = ()
    file: Path | None = None

    @property
    def server_host(self) -> str:
        return self.server.rpartition(":")[0].strip("[]")

    @property
    def server_port(self) -> int:
        return int(self.server.rpartition(":")[2])


@dataclass(slots=True)
class FileConfig:
    """What the config file says (everything optional)."""

    path: Path | None = None
    authtoken: str = ""
    server: str = ""
    ca_file: Path | None = None
    heartbeat_interval: float | None = None
    heartbeat_tolerance: float | None = None
    endpoints: dict[str, EndpointSpec] = field(default_factory=dict)


def default_path() -> Path:
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "edgeward" / "agent.yml"


def read_file(path: Path | None, *, required: bool) -> FileConfig:
    """The config file (`path`, else the default one if it exists)."""
    explicit = path is not None
    path = path if path is not None else default_path()
    if not path.exists():
        if required or explicit:
            raise AgentConfigError(f"{path}: no such agent config file")
        return FileConfig()
    doc = load_document(path, what="agent config")
    return _parse(doc, path)


def _parse(doc: Document, path: Path) -> FileConfig:
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError("an agent config is a mapping", doc.locate(()))
    for key in data:
        if key not in ("version", "agent", "endpoints"):
            raise ConfigError(f"unknown key {key!r}", doc.locate((key,)))
    if str(data.get("version", "3")) != "3":
        raise ConfigError("only version 3 agent configs are supported", doc.locate(("version",)))
    out = FileConfig(path=path)
    agent = data.get("agent") or {}
    if not isinstance(agent, dict):
        raise ConfigError("must be a mapping", doc.locate(("agent",)))
    for key in agent:
        if key not in _AGENT_KEYS:
            raise ConfigError(f"unknown key {key!r}", doc.locate(("agent", key)))
    out.authtoken = _text(doc, ("agent", "authtoken"), agent.get("authtoken"))
    out.server = _text(doc, ("agent", "connect_url"), agent.get("connect_url"))
    if out.server:
        out.server = _server(out.server, doc.locate(("agent", "connect_url")).__str__())
    cas = _text(doc, ("agent", "connect_cas"), agent.get("connect_cas"))
    if cas and cas not in ("host", "trusted"):
        out.ca_file = (path.parent / cas).resolve()
    for key in ("heartbeat_interval", "heartbeat_tolerance"):
        if agent.get(key) is not None:
            setattr(out, key, _duration(doc, ("agent", key), agent[key]))
    endpoints = data.get("endpoints") or []
    if not isinstance(endpoints, list):
        raise ConfigError("must be a list", doc.locate(("endpoints",)))
    for i, raw in enumerate(endpoints):
        spec = _endpoint(doc, ("endpoints", i), raw)
        if spec.name in out.endpoints:
            raise ConfigError(
                f"duplicate endpoint name {spec.name!r}", doc.locate(("endpoints", i))
            )
        out.endpoints[spec.name] = spec
    return out


def _endpoint(doc: Document, at: tuple[str | int, ...], raw: Any) -> EndpointSpec:
    if not isinstance(raw, dict):
        raise ConfigError("an endpoint is a mapping", doc.locate(at))
    for key in raw:
        if key not in _ENDPOINT_KEYS:
            raise ConfigError(f"unknown key {key!r}", doc.locate((*at, key)))
    name = _text(doc, (*at, "name"), raw.get("name")) or f"endpoint-{at[-1]}"
    url = _text(doc, (*at, "url"), raw.get("url"))
    upstream_raw = raw.get("upstream")
    if not isinstance(upstream_raw, dict) or "url" not in upstream_raw:
        raise ConfigError("needs upstream: {url: ...}", doc.locate((*at, "upstream")))
    for key in upstream_raw:
        if key not in ("url", "protocol"):
            raise ConfigError(f"unknown key {key!r}", doc.locate((*at, "upstream", key)))
    protocol = upstream_raw.get("protocol", "http1")
    if protocol != "http1":
        raise ConfigError(
            f"upstream protocol {protocol!r} is not supported (http1)",
            doc.locate((*at, "upstream", "protocol")),
        )
    try:
        kind = kind_of_url(url) if url else "https"
        upstream = parse_upstream(str(upstream_raw["url"]), kind)
    except AgentConfigError as exc:
        raise ConfigError(str(exc), doc.locate((*at, "url"))) from None
    policy = raw.get("traffic_policy")
    if policy is not None and not isinstance(policy, dict | str):
        raise ConfigError("a policy mapping or text", doc.locate((*at, "traffic_policy")))
    text = json.dumps(policy) if isinstance(policy, dict) else policy
    pooling = raw.get("pooling_enabled", False)
    if not isinstance(pooling, bool):
        raise ConfigError("must be true or false", doc.locate((*at, "pooling_enabled")))
    bindings = raw.get("bindings") or []
    if not isinstance(bindings, list) or not all(isinstance(b, str) for b in bindings):
        raise ConfigError("a list of strings", doc.locate((*at, "bindings")))
    return EndpointSpec(name, kind, url, upstream, text, pooling, tuple(bindings))


def _text(doc: Document, at: tuple[str | int, ...], value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise ConfigError("must be text", doc.locate(at))
    return str(value)


def _duration(doc: Document, at: tuple[str | int, ...], value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    seconds = parse_duration(str(value))
    if seconds is None or seconds <= 0:
        raise ConfigError(f"not a duration: {value!r} (e.g. 10s)", doc.locate(at))
    return seconds


def parse_duration(text: str) -> float | None:
    """Seconds in "10s", "1m30s", "500ms"; a bare number is seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if not m:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if text else None


def _server(text: str, where: str = "--server") -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AgentConfigError(f"{where}: must be host:port, not {text!r}")
    return text


def kind_of_url(url: str) -> Kind:
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in ("http", "https", "tcp", "tls"):
        raise AgentConfigError(
            f"not an endpoint URL: {url!r} (http://, https://, tcp://, tls:// with a host)"
        )
    return scheme  # type: ignore[return-value]


def parse_upstream(text: str, kind: Kind) -> Upstream:
    """`8080`, `host:8080`, `http://host:8080`, `https://host`, `tcp://host:22`."""
    default_scheme: Literal["http", "tcp"] = "http" if kind in ("http", "https") else "tcp"
    if text.isdigit():
        return Upstream(default_scheme, "localhost", _port(text, text))
    if "://" not in text:
        text = f"{default_scheme}://{text}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "tcp"):
        raise AgentConfigError(f"upstream {text!r}: scheme must be http, https or tcp")
    if kind in ("tcp", "tls") and scheme != "tcp":
        raise AgentConfigError(f"a {kind} endpoint forwards raw bytes: upstream tcp://host:port")
    try:
        port = parts.port
    except ValueError:
        raise AgentConfigError(f"upstream {text!r}: bad port") from None
    if parts.path not in ("", "/") or not parts.hostname:
        raise AgentConfigError(f"upstream {text!r}: must be scheme://host[:port]")
    if port is None:
        if scheme == "tcp":
            raise AgentConfigError(f"upstream {text!r}: needs a port")
        port = 443 if scheme == "https" else 80
    return Upstream(scheme, parts.hostname, port)  # type: ignore[arg-type]


def _port(text: str, shown: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise AgentConfigError(f"not a port: {shown!r}")
    return port


def settings(
    file: FileConfig,
    *,
    authtoken: str | None = None,
    server: str | None = None,
    ca: str | None = None,
    endpoints: tuple[EndpointSpec, ...] = (),
) -> AgentSettings:
    token = authtoken or os.environ.get(ENV_AUTHTOKEN, "") or file.authtoken
    if not token:
        raise AgentConfigError(
            "no authtoken: pass --authtoken, set EDGEWARD_AUTHTOKEN, or run"
            " `edgeward agent config add-authtoken TOKEN`"
        )
    return AgentSettings(
        authtoken=token,
        server=_server(server) if server else (file.server or DEFAULT_SERVER),
        ca_file=Path(ca).resolve() if ca else file.ca_file,
        heartbeat_interval=file.heartbeat_interval or 10.0,
        heartbeat_tolerance=file.heartbeat_tolerance or 15.0,
        endpoints=endpoints,
        file=file.path,
    )


def add_authtoken(token: str, path: Path | None = None) -> Path:
    """Store the authtoken in the agent config file (created, mode 0600)."""
    path = path or default_path()
    data: dict[str, Any] = {"version": 3}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise AgentConfigError(f"{path}: not an agent config (a mapping)")
        data = loaded
    agent = data.get("agent")
    if not isinstance(agent, dict):
        agent = data["agent"] = {}
    agent["authtoken"] = token
    data.setdefault("version", 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(data, out, sort_keys=False)
    os.chmod(path, 0o600)
    return path

"""What a destination and a subscription are, validated: the same checks
for the admin API's bodies, the store's rows and the edge config.

A destination (`event_destinations`, shaped like the public API's) has a
`format` (`json`: the envelope; `ocsf`: the OCSF class the event maps to)
and a `target` with exactly one kind:

    {"file":   {"path": "stdout" | "stderr" | "/abs/file.jsonl"}}
    {"syslog": {"address": "host:port", "tls": {"ca": "/ca.pem", "server_name": "..."} | null,
                "app_name": "edgeward", "facility": "audit"}}
    {"http":   {"url": "https://siem/services/collector/event", "shape": "hec" | "json",
                "token": "...", "ca": "/ca.pem" | null}}

A subscription names event types (exact or globs: `credential_*`, `*`)
and optionally a CEL `filter` over the envelope; matching events go to
its destinations.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeward import native
from edgeward.events.errors import SpecError

FORMATS = ("json", "ocsf")
KINDS = ("file", "syslog", "http")
HTTP_SHAPES = ("hec", "json")
FACILITIES = {
    name: code
    for code, name in enumerate(
        [
            "kern",
            "user",
            "mail",
            "daemon",
            "auth",
            "syslog",
            "lpr",
            "news",
            "uucp",
            "cron",
            "authpriv",
            "ftp",
            "ntp",
            "audit",
            "alert",
            "clock",
            "local0",
            "local1",
            "local2",
            "local3",
            "local4",
            "local5",
            "local6",
            "local7",
        ]
    )
}
_TYPE = re.compile(r"^[a-z0-9_*?\[\]]+(\.[a-z0-9*?]+)?$")

# What a filter sees: the envelope's fields as variables (and all of it as `event`).
FILTER_ENV = native.Env(
    {
        "event": "map(string, dyn)",
        "event_id": "string",
        "event_type": "string",
        "event_timestamp": "string",
        "object": "map(string, dyn)",
        "principal": "map(string, dyn)",
    }
)


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    id: str
    kind: str  # file, syslog, http
    options: Mapping[str, Any]  # the kind's object, defaults filled in
    format: str = "json"
    description: str = ""

    def key(self) -> tuple[Any, ...]:
        """Equal keys: the same delivery (a change of description restarts nothing)."""
        return (self.kind, sorted(self.options.items(), key=str), self.format)


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    id: str
    types: tuple[str, ...]  # exact names or globs; () matches nothing
    destination_ids: tuple[str, ...]
    filter: str = ""
    program: Any = field(default=None, compare=False)  # the compiled filter

    def matches(self, event: Mapping[str, Any]) -> bool:
        """The event's type is one of `types` and the filter (if any) is
        true; a filter that fails at run time does not match."""
        kind = event.get("event_type", "")
        if not any(fnmatch.fnmatchcase(kind, t) for t in self.types):
            return False
        if self.program is None:
            return True
        try:
            return self.program.evaluate({**event, "event": event}) is True
        except native.EvalError:
            return False


def _str(data: Mapping[str, Any], name: str, where: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}.{name}", "must be a non-empty string")
    return value


def _known(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(
            f"{where}.{unknown[0]}", f"unknown field; known: {', '.join(sorted(allowed))}"
        )


def _host_port(value: str, where: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(where, f"must be host:port, not {value!r}")
    return host, int(port)


def _ca(data: Mapping[str, Any], where: str) -> str | None:
    value = data.get("ca")
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        raise SpecError(f"{where}.ca", "must be an absolute path to a PEM file of CA certificates")
    return value


def destination(id: str, format: Any, target: Any, description: str = "") -> DestinationSpec:
    """Validate a destination's `format` and `target`; SpecError names the field."""
    if format is None:
        format = "json"
    if format not in FORMATS:
        raise SpecError("format", f"must be one of {', '.join(FORMATS)}, not {format!r}")
    if not isinstance(target, Mapping) or len(target) != 1:
        raise SpecError("target", f"must be an object with exactly one of {', '.join(KINDS)}")
    ((kind, options),) = target.items()
    where = f"target.{kind}"
    if kind not in KINDS:
        raise SpecError("target", f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if not isinstance(options, Mapping):
        raise SpecError(where, "must be an object")
    out: dict[str, Any]
    if kind == "file":
        _known(options, {"path"}, where)
        path = _str(options, "path", where)
        if path not in ("stdout", "stderr") and not path.startswith("/"):
            raise SpecError(f"{where}.path", "must be stdout, stderr or an absolute path")
        out = {"path": path}
    elif kind == "syslog":
        _known(options, {"address", "tls", "app_name", "facility"}, where)
        address = _str(options, "address", where)
        _host_port(address, f"{where}.address")
        tls = options.get("tls")
        if tls is not None:
            if not isinstance(tls, Mapping):
                raise SpecError(f"{where}.tls", "must be an object or null")
            _known(tls, {"ca", "server_name"}, f"{where}.tls")
            server_name = tls.get("server_name")
            if server_name is not None and not isinstance(server_name, str):
                raise SpecError(f"{where}.tls.server_name", "must be a string")
            tls = {"ca": _ca(tls, f"{where}.tls"), "server_name": server_name}
        facility = options.get("facility", "audit")
        if facility not in FACILITIES:
            raise SpecError(f"{where}.facility", f"must be one of {', '.join(FACILITIES)}")
        app_name = _str(options, "app_name", where, "edgeward")
        if (
            len(app_name) > 48
            or not app_name.isascii()
            or not app_name.isprintable()
            or " " in app_name
        ):
            raise SpecError(f"{where}.app_name", "must be 1-48 printable ASCII characters")
        out = {"address": address, "tls": tls, "app_name": app_name, "facility": facility}
    else:
        _known(options, {"url", "shape", "token", "ca"}, where)
        url = _str(options, "url", where)
        if not re.match(r"^https?://[^/\s]+", url):
            raise SpecError(f"{where}.url", "must be an http:// or https:// URL")
        shape = options.get("shape", "json")
        if shape not in HTTP_SHAPES:
            raise SpecError(f"{where}.shape", f"must be one of {', '.join(HTTP_SHAPES)}")
        token = options.get("token")
        if token is not None and not isinstance(token, str):
            raise SpecError(f"{where}.token", "must be a string")
        out = {"url": url, "shape": shape, "token": token or None, "ca": _ca(options, where)}
    return DestinationSpec(id, kind, out, format, description)


def subscription(id: str, types: Any, destination_ids: Any, filter: Any = None) -> SubscriptionSpec:
    """Validate a subscription; a CEL error is located (line, column)."""
    if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
        raise SpecError("sources", "must be a list of event types")
    for i, t in enumerate(types):
        if not _TYPE.match(t):
            raise SpecError(
                f"sources[{i}].type",
                f"{t!r} is not an event type or a glob (like credential_created.v0, credential_*)",
            )
    if not isinstance(destination_ids, list | tuple) or not all(
        isinstance(d, str) for d in destination_ids
    ):
        raise SpecError("destination_ids", "must be a list of event destination ids")
    program = None
    if filter:
        if not isinstance(filter, str):
            raise SpecError("filter", "must be a CEL expression (a string)")
        try:
            program = native.compile(filter, env=FILTER_ENV)
        except native.PolicyExprError as exc:
            raise SpecError(
                "filter",
                f"{exc.line}:{exc.column}: {exc.message}",
                line=exc.line,
                column=exc.column,
            ) from None
        if program.result_type not in ("bool", "dyn"):
            raise SpecError("filter", f"must be a bool expression, not {program.result_type}")
    return SubscriptionSpec(id, tuple(types), tuple(destination_ids), filter or "", program)


def configured(
    items: Sequence[Mapping[str, Any]],
) -> list[tuple[DestinationSpec, SubscriptionSpec]]:
    """The edge config's `api.events` (already validated by the config
    loader): each a destination `cfg_<name>` with its subscription."""
    out = []
    for item in items:
        id = f"cfg_{item['name']}"
        out.append(
            (
                destination(id, item.get("format"), item.get("target"), item["name"]),
                subscription(id, list(item.get("sources", ["*"])), [id], item.get("filter")),
            )
        )
    return out


__all__ = [
    "FACILITIES",
    "FILTER_ENV",
    "FORMATS",
    "KINDS",
    "DestinationSpec",
    "SubscriptionSpec",
    "configured",
    "destination",
    "subscription",
]

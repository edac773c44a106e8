"""One record per exchange: time, request id, client ip, host, method, path,
protocol, status, bytes in/out, duration, endpoint, upstream, error code.

Logging costs a dict and a queue put per request: the output's writer
thread formats and writes (`edgeward.linefile`), so a slow or blocked
stdout never holds a request up. Lines are JSON, or readable text on a
terminal.

The path is logged as the traffic inspector keeps it (`edgeward.redaction`):
query parameters whose name says they carry a secret (`token`, `code`,
`signature`, `api_key`...) and the password of a `user:password@` target
lose their value. Access logs are shipped and kept where credentials must
not be: an OAuth callback's `?code=`, a webhook's `?token=`. Done by the
writer thread, off the request path."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from edgeward.linefile import Output, json_line, open_output, printable, release, rfc3339
from edgeward.redaction import Redactor

log = logging.getLogger("edgeward.proxy")
WHAT = "access log"


_REDACT = Redactor()  # by name: no secret values are known here


def _kept(path: str) -> str:
    """The path as logged: its secret-looking query parameters redacted."""
    if "?" not in path and "@" not in path:
        return path
    return _REDACT.target(path.encode("latin-1")).decode("latin-1")


class _AccessFormat:
    def json(self, record: dict[str, Any]) -> str:
        kept = {**record, "time": rfc3339(record["time"])}
        if "path" in record:
            kept["path"] = _kept(record["path"])
        return json_line(kept)

    def console(self, record: dict[str, Any]) -> str:
        get = record.get
        if "method" not in record:  # rejected before the request could be parsed
            return (
                f"{rfc3339(record['time'])} {get('status')} {get('client_ip')}"
                f" {get('error')} {printable(str(get('detail', '')))}"
            )
        error = f" {get('error')}" if get("error") else ""
        return (
            f"{rfc3339(record['time'])} {get('status')} {printable(get('method', ''))}"
            f" {printable(get('host', ''))}{printable(_kept(get('path', '')))} {get('protocol')}"
            f" {get('duration_ms')}ms in={get('bytes_in')} out={get('bytes_out')}"
            f" client={get('client_ip')} endpoint={get('endpoint')}{error}"
            f" id={get('request_id')}"
        )


ACCESS_FORMAT = _AccessFormat()


class AccessLog:
    def __init__(self, path: Path | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._output: Output | None = _open(path) if enabled else None
        self._path = path

    def write(self, **record: Any) -> None:
        if self._output is not None:
            self._output.write({"time": time.time(), **record}, ACCESS_FORMAT)

    def reconfigure(self, path: Path | None, *, enabled: bool) -> None:
        """Apply a reloaded config: another target releases the old one."""
        if enabled == self.enabled and path == self._path:
            return
        self.close()
        self.enabled, self._path = enabled, path
        self._output = _open(path) if enabled else None

    def close(self) -> None:
        if self._output is not None:
            release(self._output, WHAT)
            self._output = None


def _open(path: Path | None) -> Output:
    return open_output(path or "stdout", what=WHAT, log=log)

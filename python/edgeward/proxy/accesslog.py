"""One JSON line per request: time, client ip, host, method, path, status,
bytes in/out, duration, upstream, error code, request id.

Lines are buffered and flushed at most every second (and at shutdown), so
logging costs a `json.dumps` and an append per request, not a write."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("edgeward.proxy")


class AccessLog:
    def __init__(self, path: Path | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._path = path
        self._out: IO[str] | None = None
        self._lines: list[str] = []
        self._failed = False

    def write(self, **record: Any) -> None:
        if self.enabled:
            record = {"time": round(time.time(), 3), **record}
            self._lines.append(json.dumps(record, separators=(",", ":")))
            if len(self._lines) >= 512:
                self.flush()

    def flush(self) -> None:
        """Write the buffered lines. A log that cannot be written (a full
        disk) drops them and says so once: logging never stops the edge."""
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            if self._out is None:
                self._out = open(self._path, "a", encoding="utf-8") if self._path else sys.stdout  # noqa: SIM115
            self._out.write("\n".join(lines) + "\n")
            self._out.flush()
        except (OSError, ValueError) as exc:
            if not self._failed:
                log.error("access log: cannot write to %s: %s", self._path or "stdout", exc)
            self._failed = True
        else:
            self._failed = False

    def reconfigure(self, path: Path | None, *, enabled: bool) -> None:
        """Apply a reloaded config: a new path closes the old file."""
        self.enabled = enabled
        if path != self._path:
            self.close()
            self._path = path

    def close(self) -> None:
        self.flush()
        if self._out is not None and self._out is not sys.stdout:
            with contextlib.suppress(OSError):  # a failed write was logged already
                self._out.close()
        self._out = None

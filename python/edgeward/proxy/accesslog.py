"""One JSON line per request: time, client ip, host, method, path, status,
bytes in/out, duration, upstream, error code, request id.

Lines are buffered and flushed at most every second (and at shutdown), so
logging costs a `json.dumps` and an append per request, not a write."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from edgeward.linefile import LineFile

log = logging.getLogger("edgeward.proxy")


class AccessLog:
    def __init__(self, path: Path | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._file = _open(path)
        self._lines: list[str] = []

    def write(self, **record: Any) -> None:
        if self.enabled:
            record = {"time": round(time.time(), 3), **record}
            self._lines.append(json.dumps(record, separators=(",", ":")))
            if len(self._lines) >= 512:
                self.flush()

    def flush(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._file.write("\n".join(lines) + "\n")

    def reconfigure(self, path: Path | None, *, enabled: bool) -> None:
        """Apply a reloaded config: a new path closes the old file."""
        self.enabled = enabled
        if path != self._file.path:
            self.close()
            self._file = _open(path)

    def close(self) -> None:
        self.flush()
        self._file.close()


def _open(path: Path | None) -> LineFile:
    return LineFile(path or sys.stdout, what="access log", log=log)

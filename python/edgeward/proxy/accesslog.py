"""One JSON line per request: time, client ip, host, method, path, status,
bytes in/out, duration, upstream, error code, request id.

Lines are buffered and flushed at most every second (and at shutdown), so
logging costs a `json.dumps` and an append per request, not a write."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO, Any


class AccessLog:
    def __init__(self, path: Path | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._path = path
        self._out: IO[str] | None = None
        self._lines: list[str] = []

    def write(self, **record: Any) -> None:
        if self.enabled:
            record = {"time": round(time.time(), 3), **record}
            self._lines.append(json.dumps(record, separators=(",", ":")))
            if len(self._lines) >= 512:
                self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        if self._out is None:
            self._out = open(self._path, "a", encoding="utf-8") if self._path else sys.stdout  # noqa: SIM115
        self._out.write("\n".join(self._lines) + "\n")
        self._out.flush()
        self._lines.clear()

    def close(self) -> None:
        self.flush()
        if self._out is not None and self._out is not sys.stdout:
            self._out.close()
        self._out = None

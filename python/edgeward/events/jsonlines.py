"""The `file` destination: one JSON object per line to stdout, stderr or a
file (appended to, created at the first batch with mode 0600)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from edgeward.events.errors import DeliveryError
from edgeward.linefile import json_line


class FileDestination:
    def __init__(self, options: Mapping[str, Any]) -> None:
        self.path: str = options["path"]
        self._fd = {"stdout": 1, "stderr": 2}.get(self.path, -1)

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        data = "".join(json_line(e) + "\n" for e in events).encode("utf-8", "backslashreplace")
        try:
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise DeliveryError(f"{self.path}: {exc.strerror}") from None

    def close(self) -> None:
        if self._fd > 2:
            os.close(self._fd)
        self._fd = -1


__all__ = ["FileDestination"]

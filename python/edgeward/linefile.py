"""Where the access log and policy decision events are written: a file,
or stdout/stderr, that text lines are appended to.

A file is opened at the first write, so loading a config (`edgeward
check`) creates nothing. A write that fails (a full disk, a closed stream)
is dropped and logged once, until a write succeeds again: recording traffic
must never stop the edge from serving it."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TextIO


class LineFile:
    def __init__(self, target: TextIO | Path, *, what: str, log: logging.Logger) -> None:
        self.path = target if isinstance(target, Path) else None
        self._stream = None if isinstance(target, Path) else target
        self.name = str(target if self.path else getattr(target, "name", target))
        self._what = what  # for the log: "access log", "policy events"
        self._log = log
        self._failing = False

    def write(self, text: str) -> None:
        """Append `text` (whole lines) and flush."""
        try:
            if self._stream is None:
                assert self.path is not None
                self._stream = self.path.open("a", encoding="utf-8")
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: closed, or cannot encode
            if not self._failing:
                self._log.error("%s: cannot write to %s (dropped): %s", self._what, self.name, exc)
            self._failing = True
        else:
            self._failing = False

    def close(self) -> None:
        """Close a file this opened (never stdout/stderr). Closing flushes
        what a failed write left buffered; when that fails too (the disk is
        still full) the loss was logged already."""
        if self.path is not None and self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
            self._stream = None

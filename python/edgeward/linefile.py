"""Where the server log, the access log and policy decision events are
written: stdout, stderr or a file, one line per record.

Writing never blocks the caller. `Output.write` formats the record and puts
the line on a queue; a writer thread of the output writes what gathered,
so a disk that stalls or a stdout pipe nobody reads never stops the event
loop. The queue is bounded (`MAX_PENDING` lines): past it, records are dropped and
counted, and the drop is logged once when it starts and once when the
output catches up. A write that fails (a full disk, a closed pipe) is
dropped and logged once, until a write succeeds again: recording traffic
must never stop the edge from serving it.

Every user of one target shares one `Output` (`open_output`), so the
access log and the events of a request that go to the same place keep
their order. A file is opened at the first write, so loading a config
(`edgeward check`) creates nothing. Records go out as JSON lines, or as
readable one-line text on a terminal (`set_format`).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

LogFormat = Literal["auto", "json", "console"]
MAX_PENDING = 16384
"""Records an output holds while its writer is behind; past this they are dropped."""
LINGER = 0.05
"""Seconds the writer waits after a write before taking the next batch."""
CLOSE_WAIT = 2.0
"""Seconds `close` waits for the writer to write what is queued."""


# --- timestamps ---------------------------------------------------------------------

_last_second: list[Any] = [-1, ""]  # one strftime per second, not per line


def rfc3339(t: float) -> str:
    """`t` (Unix time) as RFC 3339 in UTC with milliseconds:
    ``2026-12-06T23:10:57.123Z``, the one timestamp format of every log."""
    second = int(t)
    millis = int((t - second) * 1000)
    cached = _last_second
    if second != cached[0]:
        cached[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        cached[0] = second
    return f"{cached[1]}.{millis:03d}Z"


def json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, default=str, ensure_ascii=False, separators=(",", ":"))


def printable(text: str) -> str:
    """`text` with control characters escaped: console lines show
    client-supplied values, which must not forge extra lines."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


# --- formats ------------------------------------------------------------------------


class LineFormat(Protocol):
    """How one kind of record becomes a line; runs on the writer thread."""

    def json(self, record: Any) -> str: ...

    def console(self, record: Any) -> str: ...


_settings: dict[str, LogFormat] = {"format": "auto"}


def set_format(kind: LogFormat) -> None:
    """JSON or console lines for stdout and stderr (files are always JSON);
    ``auto``: console on a terminal, JSON otherwise. Applies to outputs
    that start writing after the call."""
    _settings["format"] = kind


# --- outputs ------------------------------------------------------------------------

_STOP = object()


class Output:
    """One target and its writer thread; shared by all its users."""

    def __init__(self, key: str, target: TextIO | Path, *, log: logging.Logger) -> None:
        self.key = key  # "stdout", "stderr" or the file's path
        self.path = target if isinstance(target, Path) else None
        self._stream = None if isinstance(target, Path) else target
        self.name = str(target if self.path else getattr(target, "name", target))
        self.users: list[str] = []  # "access log", "policy events": for messages
        self._log = log
        self._refs = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[str | object] = queue.SimpleQueue()
        self._queued = 0  # lines accepted (under the lock)
        self._written = 0  # lines taken by the writer (writer thread only)
        self._thread: threading.Thread | None = None
        self._console = False
        self._fd = -1
        self._failing = False
        self.dropped = 0  # records dropped because the writer was behind
        self._dropping_since = 0  # `dropped` when the current run of drops began
        self._dropping = False

    @property
    def what(self) -> str:
        return " and ".join(dict.fromkeys(self.users)) or "output"

    # --- producer side (any thread; the event loop in practice) ----------------------

    def write(self, record: Any, fmt: LineFormat) -> None:
        """Queue one record as a line; never blocks. Dropped (and counted)
        when the writer is `MAX_PENDING` lines behind.

        The line is formatted here, on the caller's thread: a writer thread
        that formatted (pure Python, holding the GIL for a whole batch)
        would make the event loop wait for the GIL after each of its system
        calls; the writer only joins, encodes and writes."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._start()
        try:
            line = fmt.console(record) if self._console else fmt.json(record)
        except Exception:  # a record that cannot be rendered is a bug: say so, go on
            self._log.exception("%s: cannot format a record (dropped)", self.what)
            return
        with self._lock:
            if self._queued - self._written >= MAX_PENDING:
                self.dropped += 1
                if self._dropping:
                    return
                self._dropping = True
                self._dropping_since = self.dropped - 1
                report = "start"
            else:
                self._queued += 1
                self._queue.put(line)
                if not self._dropping:
                    return
                self._dropping = False
                report = "end"
        if report == "start":
            self._log.error(
                "%s: %s is not keeping up: dropping records (%d queued)",
                self.what,
                self.name,
                MAX_PENDING,
            )
        else:
            self._log.warning(
                "%s: %d records dropped while %s was not keeping up",
                self.what,
                self.dropped - self._dropping_since,
                self.name,
            )

    def _start(self) -> None:
        if self._stream is not None:
            fmt = _settings["format"]
            self._console = fmt == "console" or (fmt == "auto" and _isatty(self._stream))
            try:
                self._stream.flush()  # what print() left buffered goes first
                self._fd = self._stream.fileno()
            except (OSError, ValueError, AttributeError):
                self._fd = -1  # no fd (a StringIO): write through the stream
        self._thread = threading.Thread(
            target=self._run, name=f"edgeward-output {self.name}", daemon=True
        )
        self._thread.start()

    # --- writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        while True:
            batch = [get()]
            try:
                while len(batch) < 1024:
                    batch.append(get_nowait())
            except queue.Empty:
                pass
            lines: list[str] = [i for i in batch if type(i) is str]
            if lines:
                self._put("\n".join(lines) + "\n")
            self._written += len(lines)
            for marker in batch:
                if isinstance(marker, threading.Event):  # a `flush` waiting for this point
                    marker.set()
            if any(i is _STOP for i in batch):
                return
            # let records gather: under load one write (and one wake-up of
            # this thread) per LINGER, not per record; a record after a
            # quiet spell is still written at once
            time.sleep(LINGER)

    def _put(self, text: str) -> None:
        try:
            if self._stream is None:
                if self._fd < 0:
                    assert self.path is not None
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                _write_all(self._fd, text.encode("utf-8", "backslashreplace"))
            elif self._fd >= 0:  # stdout/stderr: the fd, so no lock is shared with print()
                _write_all(self._fd, text.encode("utf-8", "backslashreplace"))
            else:
                self._stream.write(text)
                self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: a closed stream
            if not self._failing:
                self._log.error("%s: cannot write to %s (dropped): %s", self.what, self.name, exc)
            self._failing = True
        else:
            self._failing = False

    def flush(self, wait: float = CLOSE_WAIT) -> bool:
        """Wait (at most `wait` seconds) until what was queued before this
        call is written; False when the writer is stuck."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(wait)

    # --- lifetime -----------------------------------------------------------------------

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Write what is queued (waiting at most `wait` seconds: a stalled
        target loses it) and close a file this opened."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(wait)
        if thread.is_alive():
            lost = self._queued - self._written
            self._log.error("%s: %s is blocked, %d records not written", self.what, self.name, lost)
            return  # the daemon thread still owns the fd
        if self.path is not None and self._fd >= 0:
            os.close(self._fd)
        self._fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_outputs: dict[str, Output] = {}
_registry_lock = threading.Lock()


def open_output(target: str | Path | TextIO, *, what: str, log: logging.Logger) -> Output:
    """The shared output for ``"stdout"``, ``"stderr"``, a file path or
    another stream; `release` it when done."""
    stream: TextIO | Path
    if target is sys.stdout or target == "stdout":
        key, stream = "stdout", sys.stdout
    elif target is sys.stderr or target == "stderr":
        key, stream = "stderr", sys.stderr
    elif isinstance(target, str | Path):
        key, stream = str(target), Path(target)
    else:
        key, stream = f"stream-{id(target)}", target
    with _registry_lock:
        output = _outputs.get(key)
        if output is None:
            output = _outputs[key] = Output(key, stream, log=log)
        output.users.append(what)
        output._refs += 1
        return output


def release(output: Output, what: str) -> None:
    """Drop one use of `output`; the last one closes it."""
    with _registry_lock:
        if what in output.users:
            output.users.remove(what)
        output._refs -= 1
        if output._refs > 0:
            return
        if _outputs.get(output.key) is output:
            del _outputs[output.key]
    output.close()


def outputs() -> list[Output]:
    """The open outputs (for metrics: records dropped per output)."""
    with _registry_lock:
        return list(_outputs.values())


def flush_all(wait: float = CLOSE_WAIT) -> None:
    """Wait until every output has written what was queued before the call."""
    for output in outputs():
        output.flush(wait)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@atexit.register
def _close_all() -> None:
    for output in outputs():
        output.close(wait=1.0)


# --- the server log -----------------------------------------------------------------


class _LogFormat:
    def json(self, record: logging.LogRecord) -> str:
        out = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            out["exception"] = record.exc_text
        return json_line(out)

    def console(self, record: logging.LogRecord) -> str:
        line = f"{rfc3339(record.created)} {record.levelname:<7} {record.getMessage()}"
        return f"{line}\n{record.exc_text}" if record.exc_text else line


LOG_FORMAT = _LogFormat()


class LogHandler(logging.Handler):
    """`logging` through an `Output` (stderr for `edgeward serve`): a log
    line never blocks the event loop either."""

    def __init__(self, output: Output) -> None:
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        # resolve the message and the traceback now: the writer thread runs later
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        self.output.write(record, LOG_FORMAT)

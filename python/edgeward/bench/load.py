"""Load generators: wrk (HTTP/1.1) and h2load (HTTP/2), run as they are
installed, and what they report.

A missing tool is a `MissingTool` naming the Debian package that has it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from edgeward.bench.processes import cpu_seconds

# The Debian package of each load generator.
PACKAGES = {"wrk": "wrk", "h2load": "nghttp2-client", "nginx": "nginx"}

K = TypeVar("K", bound=Hashable)

Progress = Callable[[float], None]
"""Told the seconds elapsed, about four times a second, while a tool runs."""


class MissingTool(RuntimeError):
    """A load generator is not installed; the message says how to get it."""

    def __init__(self, tool: str, needed_for: str = "this bench") -> None:
        package = PACKAGES.get(tool, tool)
        super().__init__(
            f"{needed_for} needs {tool}, which is not installed (not on PATH):"
            f" install the Debian package {package!r} (apt-get install {package})"
        )
        self.tool = tool
        self.package = package


def require(tool: str, needed_for: str = "this bench") -> str:
    """The path of `tool`, or `MissingTool`."""
    path = shutil.which(tool)
    if path is None:
        raise MissingTool(tool, needed_for)
    return path


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float = float("nan")  # CPU time of the proxy (and its workers) per request
    requests: int = 0
    non_2xx: int = 0  # answers that were not 2xx/3xx (wrk's count)
    errors: int = 0  # socket errors (connect, read, write, timeout)


def _run(cmd: list[str], duration: float, progress: Progress | None) -> str:
    """Run a tool to the end, telling `progress` the time elapsed."""
    if progress is None:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    start = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        while proc.poll() is None:
            progress(min(time.monotonic() - start, duration))
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.25)
        out, err = proc.communicate()
    progress(duration)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out, err)
    return out


def wrk(
    url: str,
    duration: float,
    connections: int,
    pid: int | None = None,
    headers: tuple[str, ...] = (),
    *,
    strict: bool = True,
    progress: Progress | None = None,
) -> Result:
    """One wrk run; with `pid`, also the CPU that process tree spent per
    request. `strict`: a non-2xx answer or a socket error is an error."""
    tool = require("wrk")
    before = cpu_seconds(pid) if pid else 0.0
    extra = [arg for header in headers for arg in ("-H", header)]
    seconds = max(1, round(duration))
    cmd = [tool, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url]
    out = _run(cmd, seconds, progress)
    cpu = cpu_seconds(pid) - before if pid else float("nan")
    if strict and ("Non-2xx" in out or "Socket errors" in out):
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", out))
    requests = int(_search(r"(\d+) requests in", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return Result(
        rps,
        _latency(out, "50%"),
        _latency(out, "99%"),
        cpu * 1e6 / max(requests, 1),
        requests,
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(map(int, socket_errors.groups())) if socket_errors else 0,
    )


def _search(pattern: str, out: str) -> str:
    found = re.search(pattern, out)
    if found is None:
        raise RuntimeError(f"unexpected output (no {pattern!r}):\n{out}")
    return found.group(1)


def _latency(out: str, pct: str) -> float:
    found = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out)
    if found is None:
        return float("nan")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


WARM_UP = 1


def h2load(
    url: str,
    duration: float,
    connections: int,
    pid: int,
    headers: tuple[str, ...] = (),
    *,
    strict: bool = True,
    progress: Progress | None = None,
) -> Result:
    """h2load's rate and latency (mean and max: h2load reports no
    percentiles); the CPU per request is the proxy's CPU over the run
    (warm-up included) over the requests at the measured rate."""
    tool = require("h2load")
    cpu_before = cpu_seconds(pid)
    seconds = max(1, round(duration))
    extra = [arg for header in headers for arg in ("-H", header)]
    cmd = [tool, f"-c{connections}", "-m16", f"-D{seconds}", f"--warm-up-time={WARM_UP}"]
    out = _run([*cmd, *extra, url], seconds + WARM_UP, progress)
    cpu = cpu_seconds(pid) - cpu_before
    rps = float(_search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out))
    statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    errored = re.search(r"(\d+) errored", out)  # "failed" counts 4xx/5xx answers too
    errors = int(errored.group(1)) if errored else 0
    non_2xx = int(statuses.group(3)) + int(statuses.group(4)) if statuses else 0
    if strict and not re.search(r" 0 failed, 0 errored", out):
        raise RuntimeError(f"h2load saw errors:\n{out}")
    row = re.search(
        r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out
    )
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    mean = float(row.group(5)) * scale[row.group(6)] if row else 0.0
    peak = float(row.group(3)) * scale[row.group(4)] if row else 0.0
    requests = rps * (seconds + WARM_UP)
    return Result(
        rps, mean, peak, cpu * 1e6 / requests if requests else 0.0, round(requests), non_2xx, errors
    )


def median_run(fn: Callable[..., Result], repeat: int, *args: object) -> Result:
    """The run with the median rate of `repeat` runs of `fn(*args)`."""
    return median([fn(*args) for _ in range(repeat)])


def alternating(cases: dict[K, Callable[[], Result]], repeat: int) -> dict[K, Result]:
    """Each case's median run of `repeat` rounds in which every case runs
    once, in turn: a change in the machine's load (other processes) then
    weighs on all cases alike, and a ratio of two cases compares runs made
    close in time, not minutes apart."""
    runs: dict[K, list[Result]] = {who: [] for who in cases}
    for _ in range(repeat):
        for who, run in cases.items():
            runs[who].append(run())
    return {who: median(out) for who, out in runs.items()}


def median(runs: list[Result]) -> Result:
    """The run with the median rate."""
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]

"""`edgeward demo` (what `make run` shows) as a real process, on both backends."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("backend", ["rust", "python"])
def test_demo_prints_backend_and_verdicts(backend: str) -> None:
    if backend == "rust":
        pytest.importorskip("edgeward_native")
    env = {**os.environ, "EDGEWARD_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-m", "edgeward.cli", "demo"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"edgeward native backend: {backend}"
    assert "verified  (ok)" in lines[1]
    assert "rejected  (signature mismatch)" in lines[2]
    assert "verified  (ok)" in lines[3]
    assert "rejected  (stale timestamp)" in lines[4]

"""The builds under test are the ones asked for: ``EDGEWARD_BACKEND=rust``
(as `make test` runs the suite) must find the Rust module and the compiled
HTTP/1.1 fast path and the native HTTP/2 server, so the tests that need them cannot skip silently;
``EDGEWARD_BACKEND=python`` must run the pure-Python twins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeward import http1, http2, native

WANTED = os.environ.get("EDGEWARD_BACKEND", "").strip().lower()
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "backends"


@pytest.mark.skipif(WANTED != "rust", reason="EDGEWARD_BACKEND is not rust")
def test_rust_backend_runs_the_compiled_builds() -> None:
    assert native.BACKEND == "rust"
    assert http1.COMPILED, "the HTTP/1.1 fast path is not compiled (Cython build missing)"
    assert http2.NATIVE, "the native H2Server is not in the Rust module"


@pytest.mark.skipif(WANTED != "python", reason="EDGEWARD_BACKEND is not python")
def test_python_backend_runs_the_reference_twins() -> None:
    assert native.BACKEND == "python"
    assert not http1.COMPILED
    assert not http2.NATIVE


def test_backends_script_requires_the_compiled_builds() -> None:
    def run(backend: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "EDGEWARD_BACKEND": backend}
        command = [sys.executable, str(SCRIPT), "--require-compiled"]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    python = run("python")
    assert python.returncode == 1
    assert "matchers python, HTTP/1.1 fast path pure Python" in python.stdout
    assert "HTTP/2 server reference (h2)" in python.stdout
    assert "compiled builds are required" in python.stderr
    if native.BACKEND == "rust" and http1.COMPILED and http2.NATIVE:
        rust = run("rust")
        assert rust.returncode == 0, rust.stderr
        assert "matchers rust, HTTP/1.1 fast path compiled, HTTP/2 server native" in rust.stdout

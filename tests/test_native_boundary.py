"""The native boundary: a Rust panic reaches Python as `NativeError`, an
ordinary `Exception` (not PyO3's `PanicException`, a `BaseException`), the
module stays usable, and a policy whose evaluation panics costs its request
a 500 with the policy-failure code while the edge keeps serving.

Nothing in a production build can be made to panic on purpose: the test-only
entry point `edgeward_native._core._testing.panic` is reached from a served
edge through a `sitecustomize` that the test puts on the edge's PYTHONPATH
(it wraps `edgeward_native.compile` so that one marked rule panics when it
matches). The edge itself ships no such hook."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.policy.e2e import running_edge, serve

import edgeward.native


def native_module() -> ModuleType:
    if edgeward.native.BACKEND != "rust":
        pytest.skip("the native module is not in use (EDGEWARD_BACKEND=python or not built)")
    import edgeward_native

    return edgeward_native


# --- the conversion --------------------------------------------------------------------


def test_a_panic_is_a_native_error_with_its_message() -> None:
    native = native_module()
    with pytest.raises(native.NativeError) as caught:
        native._core._testing.panic("boom at the boundary")
    error = caught.value
    assert isinstance(error, Exception) and isinstance(error, RuntimeError)
    assert type(error).__name__ == "NativeError"  # not pyo3_runtime.PanicException
    assert "boom at the boundary" in str(error)
    assert "guard.rs" in str(error)  # where it panicked


def test_the_module_is_usable_after_a_panic() -> None:
    native = native_module()
    for _ in range(3):
        with pytest.raises(native.NativeError):
            native._core._testing.panic()
    assert native.compile("x + 1").evaluate({"x": 1}) == 2
    assert native.IpPolicy(allow=["10.0.0.0/8"]).decide("10.1.2.3")


def test_a_panic_inside_a_nested_native_call_comes_out_of_evaluate() -> None:
    """A Mapping of the activation that calls into the native module, which
    panics: the inner call's guard converts it, and `evaluate` passes the
    host's exception on unchanged."""
    native = native_module()

    class Panicking(dict[str, Any]):
        def __getitem__(self, key: str) -> Any:
            native._core._testing.panic(f"reading {key}")

    with pytest.raises(native.NativeError, match="reading x"):
        native.compile("x == 1").evaluate(Panicking())
    assert native.compile("x == 1").evaluate({"x": 1}) is True


def test_a_panic_does_not_print_to_stderr() -> None:
    """The caller logs the exception; the panic hook stays quiet (run in a
    child process to see its stderr)."""
    native_module()
    code = (
        "import edgeward_native as n\n"
        "try:\n    n._core._testing.panic('quiet')\n"
        "except n.NativeError as e:\n    print('caught', e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "caught native panic" in run.stdout and "quiet" in run.stdout
    assert run.stderr == ""


def test_the_facade_exports_native_error_on_both_backends() -> None:
    assert issubclass(edgeward.native.NativeError, Exception)
    assert "NativeError" in edgeward.native.__all__
    if edgeward.native.BACKEND == "rust":
        import edgeward_native

        assert edgeward.native.NativeError is edgeward_native.NativeError


# --- the public namespace -----------------------------------------------------------------


def test_public_namespace_is_all() -> None:
    native = native_module()
    public = {name for name in dir(native) if not name.startswith("_")}
    assert public == set(native.__all__) - {"__version__"}
    facade = {name for name in dir(edgeward.native) if not name.startswith("_")}
    assert set(edgeward.native.__all__) <= facade
    for name in edgeward.native.__all__:
        assert getattr(edgeward.native, name) is not None


def test_the_stub_matches_the_module() -> None:
    native_module()
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "edgeward_native"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


# --- through a running edge -----------------------------------------------------------------

SITECUSTOMIZE = '''
"""Test-only (tests/test_native_boundary.py): a compiled rule whose source
holds the marker panics in Rust when it matches."""
import edgeward_native
from edgeward_native import _core

_compile = edgeward_native.compile


class _PanicsWhenMatched:
    def __init__(self, program):
        self._program = program

    def __getattr__(self, name):
        return getattr(self._program, name)

    def evaluate(self, activation):
        result = self._program.evaluate(activation)
        if result is True:
            _core._testing.panic("injected by the boundary test")
        return result


def compile(source, *, env=None):
    program = _compile(source, env=env)
    return _PanicsWhenMatched(program) if "native_panic" in source else program


edgeward_native.compile = compile
'''

# Reading `vars` keeps the rule out of the chained program (one compile per rule).
POLICY = """
on_http_request:
  - name: boom
    expressions: ["req.url.path == '/boom' && !has(vars.native_panic)"]
    actions: [{type: deny}]
"""


def get(url: str) -> tuple[int, str | None, bytes]:
    """Status, `edgeward-error` code and body."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["edgeward-error"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["edgeward-error"], error.read()


def test_a_panicking_policy_answers_500_and_the_edge_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    native_module()
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    monkeypatch.setenv("PYTHONPATH", str(hook))
    ok = {"/ok": lambda _h: (200, [], b"upstream\n")}
    with serve(ok) as upstream, running_edge(tmp_path, POLICY, upstream.url, "rust") as edge:
        for _ in range(2):
            status, code, body = get(edge.url("/boom"))
            assert (status, code) == (500, "ERR_EDGEWARD_3500")
            assert b"panic" not in body  # details stay in the log
            assert get(edge.url("/ok")) == (200, None, b"upstream\n")
        assert edge.proc.poll() is None
        log = edge.log_text()
    assert upstream.hits.get("/boom") is None and upstream.hits["/ok"] == 2
    assert log.count("edgeward_native.NativeError: native panic") == 2
    assert "injected by the boundary test" in log
    assert "PanicException" not in log and "panicked at" not in log

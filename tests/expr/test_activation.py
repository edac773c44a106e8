"""The activation protocol (docs/cel.md §7) and `Program.references` (§9)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest


class Recording(Mapping[str, Any]):
    """A Mapping that records every key read and whether it was iterated."""

    def __init__(self, data: dict[str, Any], log: list[str], path: str = "") -> None:
        self._data = data
        self._log = log
        self._path = path

    def __getitem__(self, key: str) -> Any:
        self._log.append(f"{self._path}{key}")
        value = self._data[key]
        if isinstance(value, dict):
            return Recording(value, self._log, f"{self._path}{key}.")
        return value

    def __iter__(self) -> Iterator[str]:
        self._log.append(f"{self._path}<iter>")
        return iter(self._data)

    def __len__(self) -> int:
        self._log.append(f"{self._path}<len>")
        return len(self._data)


REQUEST = {
    "req": {
        "method": "GET",
        "url": {"": "https://example.com/admin?x=1", "path": "/admin", "query": "x=1"},
        "headers": {"host": ["example.com"], "x-token": ["a", "b"]},
        "cookies": {"session": [{"name": "session", "value": "s1"}]},
    },
    "conn": {"client_ip": {"": "10.1.2.3", "geo": {"country_code": "FR"}}},
    "unused": {"deep": {"er": 1}},
}

VARIABLES = {
    "req": {
        "method": "string",
        "url": {"": "string", "path": "string", "query": "string"},
        "headers": "map(string, list(string))",
        "cookies": "map(string, list(map(string, dyn)))",
    },
    "conn": {"client_ip": {"": "string", "geo": {"country_code": "string"}}},
    "unused": "dyn",
}


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        ("req.url.path.startsWith('/admin')", ["req", "req.url", "req.url.path"]),
        ("req.url.startsWith('https')", ["req", "req.url", "req.url."]),
        (
            "req.method == 'POST' && req.url.path == '/'",
            ["req", "req.method"],  # false at once: the right side is never read
        ),
        ("has(req.url.query)", ["req", "req.url", "req.url.query"]),
        ("getReqHeader('X-Token')", ["req", "req.headers", "req.headers.x-token"]),
        (
            "inCidrRange(conn.client_ip, '10.0.0.0/8') && conn.client_ip.geo.country_code == 'FR'",
            ["conn", "conn.client_ip", "conn.client_ip.", "conn", "conn.client_ip",
             "conn.client_ip.geo", "conn.client_ip.geo.country_code"],
        ),
        ("'host' in req.headers", ["req", "req.headers", "req.headers.host"]),
        ("size(req.headers)", ["req", "req.headers", "req.headers.<len>"]),
    ],
)  # fmt: skip
def test_only_the_needed_keys_are_read(cel: Any, source: str, reads: list[str]) -> None:
    program = cel.compile(source, env=cel.Env(VARIABLES))
    log: list[str] = []
    program.evaluate(Recording(REQUEST, log))
    assert log == reads


def test_unbound_and_absent_fields(cel: Any) -> None:
    env = cel.Env(VARIABLES)
    with pytest.raises(cel.EvalError) as info:
        cel.compile("req.method", env=env).evaluate({})
    assert info.value.kind == "unbound"
    with pytest.raises(cel.EvalError) as info:
        cel.compile("req.method", env=env).evaluate({"req": {}})
    assert info.value.kind == "no_such_field"
    with pytest.raises(cel.EvalError) as info:
        cel.compile("req.url == ''", env=env).evaluate({"req": {"url": {"path": "/"}}})
    assert info.value.kind == "no_such_field"  # the own value ("") is absent
    assert cel.compile("has(req.method)", env=env).evaluate({"req": {}}) is False
    # A plain value where an object with an own value is declared is used as is.
    assert cel.compile("req.url + '#'", env=env).evaluate({"req": {"url": "u"}}) == "u#"


def test_objects_as_values(cel: Any) -> None:
    env = cel.Env(VARIABLES)
    assert cel.compile("req.url", env=env).evaluate(REQUEST) == REQUEST["req"]["url"][""]
    # An object without an own value is the map of its fields.
    assert cel.compile("conn.client_ip.geo", env=env).evaluate(REQUEST) == {"country_code": "FR"}
    assert cel.compile("[req.url][0].size()", env=env).evaluate(REQUEST) == 29


def test_exceptions_of_the_callers_mapping_propagate(cel: Any) -> None:
    class Broken(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise RuntimeError("backend down")

        def __iter__(self) -> Iterator[str]:
            return iter(())

        def __len__(self) -> int:
            return 0

    with pytest.raises(RuntimeError, match="backend down"):
        cel.compile("x.y").evaluate({"x": Broken()})


@pytest.mark.parametrize(
    ("source", "references"),
    [
        (
            "req.url.path.startsWith('/a') && req.headers['x'] == ['y']",
            {"req.url.path", "req.headers"},
        ),
        ("has(req.url.query)", {"req.url.query"}),
        ("req.url", {"req.url"}),
        ("req.headers.exists(h, h.startsWith(req.method))", {"req.headers", "req.method"}),
        ("getReqHeader('a') + getQueryParam('b')", {"req.headers", "req.url.query_params"}),
        ("[1].map(req, req + 1)", set()),
        ("int == type(1) && google.protobuf.Duration != int", set()),
        ("secrets.get('v', 'n')", set()),
        ("http.path() + http.request_method()", {"req.url.path", "req.method"}),
        ("unused", {"unused"}),
    ],
)  # fmt: skip
def test_references(cel: Any, source: str, references: set[str]) -> None:
    variables = {
        **VARIABLES,
        "req": {**VARIABLES["req"], "url": {"": "string", "path": "string", "query": "string",
                                            "query_params": "map(string, list(string))"}},
    }  # fmt: skip
    program = cel.compile(source, env=cel.Env(variables))
    assert program.references == frozenset(references)
    assert program.source == source

"""Rule expressions are conditions: a static type other than `bool` is a
load error; `dyn` results are checked at run time (test_engine.py)."""

from __future__ import annotations

import pytest

from .helpers import load, load_error


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("req.url.path", "string"),
        ("res.status_code", "int"),
        ("req.headers", "map(string, list(string))"),
        ("conn.client_ip", "string"),
        ("null", "null"),
    ],
)
def test_an_expression_that_is_not_a_bool_is_a_load_error(expression: str, kind: str) -> None:
    err = load_error(
        f"""
        on_http_response:
          - name: typed
            expressions:
              - "req.method == 'GET'"
              - "{expression}"
            actions: [{{type: deny}}]
        """.replace("deny", "add-headers, config: {headers: {x: y}}")
    )
    (error,) = err.errors
    assert error.location.file == "policy.yml" and error.location.line == 6
    assert error.rule == "on_http_response[0] 'typed'"
    assert f"has type {kind}, not bool" in error.message
    assert "(line 1, column 1)" in error.message
    assert "policy.yml:6:9: on_http_response[0].expressions[1]: error: expression" in str(err)


def test_dyn_and_bool_expressions_load() -> None:
    load(
        """
        on_http_request:
          - expressions: ["vars.flag", "json.decode('true')", "req.url.path == '/'"]
            actions: [{type: deny}]
        """
    )

from __future__ import annotations

from .helpers import load, load_error, one, request


def test_vars_keep_types_and_chain() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: set-vars
                config:
                  vars:
                    - is_admin: "${req.url.path.startsWith('/admin')}"
                    - limit: 5
                    - label: "path=${req.url.path}"
                    - doubled: "${vars.limit * 2}"
                    - list: ["${req.method}", "static"]
          - expressions: ["vars.is_admin && vars.doubled == 10 && vars.list == ['GET', 'static']"]
            actions:
              - type: custom-response
                config: {body: "${vars.label}"}
        """
    )
    r = request(h, "/admin")
    assert r.body == b"path=/admin"
    assert request(h, "/x").forwarded is not None


def test_vars_are_scoped_to_their_phase() -> None:
    h = load(
        """
        on_http_request:
          - actions: [{type: set-vars, config: {vars: [{x: "1"}]}}]
        on_http_response:
          - expressions: ["has(vars.x)"]
            actions: [{type: add-headers, config: {headers: {x-leaked: "1"}}}]
        """
    )
    assert request(h).header("x-leaked") == []


def test_load_errors() -> None:
    assert "one name" in str(load_error(one("set-vars", "vars: [{a: 1, b: 2}]")))
    assert "interpolation" in str(load_error(one("set-vars", "vars: [{a: '${1 +}'}]")))

from __future__ import annotations

from .helpers import load, load_error, one, request


def test_adds_request_headers_with_interpolation() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: add-headers
                config:
                  headers:
                    X-Client-IP: "${conn.client_ip}"
                    x-static: "yes"
        """
    )
    r = request(h, headers=[("x-static", "client")])
    assert r.upstream_header("x-client-ip") == ["192.0.2.10"]
    assert r.upstream_header("x-static") == ["client", "yes"]  # appended, not replaced


def test_req_variables_show_the_request_as_received() -> None:
    h = load(
        """
        on_http_request:
          - actions: [{type: add-headers, config: {headers: {x-added: "1"}}}]
          - expressions: ["'x-added' in req.headers"]
            actions: [{type: deny}]
          - expressions: ["actions.ngrok.add_headers.headers_added['x-added'] == '1'"]
            actions: [{type: add-headers, config: {headers: {x-seen: "1"}}}]
        """
    )
    r = request(h)
    assert r.forwarded is not None
    assert r.upstream_header("x-seen") == ["1"]


def test_host_replaces_the_authority() -> None:
    h = load(one("add-headers", "headers: {host: internal.example}"))
    r = request(h)
    assert r.forwarded is not None and r.forwarded.head.authority == b"internal.example"


def test_response_headers() -> None:
    h = load(
        """
        on_http_response:
          - actions:
              - type: add-headers
                config:
                  headers:
                    strict-transport-security: max-age=63072000
                    x-status: "${string(res.status_code)}"
        """
    )
    r = request(h, upstream_status=201)
    assert r.header("strict-transport-security") == ["max-age=63072000"]
    assert r.header("x-status") == ["201"]


def test_load_errors() -> None:
    assert "at least 1" in str(load_error(one("add-headers", "headers: {}")))
    headers = ", ".join(f"h{i}: v" for i in range(11))
    assert "at most 10" in str(load_error(one("add-headers", f"headers: {{{headers}}}")))
    assert "not a valid header name" in str(
        load_error(one("add-headers", "headers: {'bad name': v}"))
    )
    assert "missing required field 'headers'" in str(load_error(one("add-headers")))

from __future__ import annotations

from .helpers import load, load_error, one, request


def test_removes_request_headers_case_insensitively() -> None:
    h = load(one("remove-headers", "headers: [X-Secret, cookie]"))
    r = request(h, headers=[("x-secret", "1"), ("cookie", "a=b"), ("x-keep", "2")])
    assert r.upstream_header("x-secret") == [] and r.upstream_header("cookie") == []
    assert r.upstream_header("x-keep") == ["2"]


def test_removes_response_headers_and_records_them() -> None:
    h = load(
        """
        on_http_response:
          - actions: [{type: remove-headers, config: {headers: [server, x-powered-by]}}]
          - expressions: ["'server' in actions.ngrok.remove_headers.headers_removed"]
            actions: [{type: add-headers, config: {headers: {x-cleaned: "1"}}}]
        """
    )
    r = request(h, upstream_headers=[("server", "nginx"), ("x-powered-by", "php"), ("etag", "1")])
    assert r.header("server") == [] and r.header("x-powered-by") == []
    assert r.header("etag") == ["1"] and r.header("x-cleaned") == ["1"]


def test_replace_is_remove_then_add() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: remove-headers
                config: {headers: [x-user]}
              - type: add-headers
                config: {headers: {x-user: edge}}
        """
    )
    assert request(h, headers=[("x-user", "spoofed")]).upstream_header("x-user") == ["edge"]


def test_load_errors() -> None:
    assert "cannot be removed" in str(
        load_error(one("remove-headers", "headers: [transfer-encoding]"))
    )
    assert "must be a list" in str(load_error(one("remove-headers", "headers: x-a")))

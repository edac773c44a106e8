from __future__ import annotations

from .helpers import load, load_error, one, request


def test_rewrites_path_for_the_upstream_only() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: url-rewrite
                config:
                  from: "/products/([0-9]+)"
                  to: "/items?id=$1"
          - expressions: ["req.url.path.startsWith('/items')"]
            actions: [{type: deny}]
        """
    )
    r = request(h, "/products/42")
    assert r.forwarded is not None
    assert r.forwarded.head.target == b"/items?id=42"  # req.url still showed /products/42


def test_rewrite_result_variables_and_interpolated_pattern() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: url-rewrite
                config:
                  from: "${req.url.authority}/v1/"
                  to: "${req.url.authority}/v2/"
          - expressions: ["actions.ngrok.url_rewrite.url.endsWith('/v2/x')"]
            actions: [{type: add-headers, config: {headers: {x-rewritten: "1"}}}]
        """
    )
    r = request(h, "/v1/x")
    assert r.forwarded is not None and r.forwarded.head.target == b"/v2/x"
    assert r.upstream_header("x-rewritten") == ["1"]


def test_bad_interpolated_regex_fails_closed() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: url-rewrite
                config: {from: "${req.headers['x-pattern'][0]}", to: "/"}
        """
    )
    r = request(h, "/a", headers=[("x-pattern", "(")])
    assert r.status == 500 and h.events[-1].error_code == "ERR_EDGEWARD_3901"


def test_url_rewrite_only_in_request_phase() -> None:
    assert "cannot run in on_http_response" in str(
        load_error(one("url-rewrite", "to: /", phase="on_http_response"))
    )

from __future__ import annotations

from .helpers import load, load_error, one, request


def test_redirect_with_capture_groups() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: redirect
                config:
                  from: "^https://app.example.com/old/(?<rest>.*)$"
                  to: "https://app.example.com/new/$rest"
                  status_code: 301
                  headers:
                    x-redirected-by: edgeward
        """
    )
    r = request(h, "/old/a/b?q=1")
    assert r.status == 301
    assert r.header("location") == ["https://app.example.com/new/a/b?q=1"]
    assert r.header("x-redirected-by") == ["edgeward"]
    assert request(h, "/other").forwarded is not None  # no match: no redirect


def test_redirect_without_from_replaces_the_url_and_interpolates() -> None:
    h = load(
        """
        on_http_request:
          - expressions: ["req.url.scheme == 'https' && req.url.path == '/docs'"]
            actions:
              - type: redirect
                config: {to: "https://docs.example.com${req.url.path}"}
        """
    )
    r = request(h, "/docs")
    assert (r.status, r.header("location")) == (302, ["https://docs.example.com/docs"])
    assert h.events[-1].verdict == "redirect"


def test_identical_url_does_not_redirect() -> None:
    h = load(one("redirect", "from: '/a', to: '/a'"))
    assert request(h, "/a").forwarded is not None


def test_go_replacement_syntax() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: redirect
                config: {from: "/v([0-9]+)/", to: "/api/$${1}x/$$/"}
        """
    )
    # `$${1}` in YAML text is the template escape for a literal `${1}`; Go
    # expands `${1}x` to group 1 followed by x, and `$$` to `$`.
    assert request(h, "/v2/users").header("location") == ["https://app.example.com/api/2x/$/users"]


def test_load_errors() -> None:
    assert "invalid regular expression" in str(load_error(one("redirect", "from: '(', to: x")))
    assert "missing required field 'to'" in str(load_error(one("redirect", "from: 'a'")))
    assert "at least 300" in str(load_error(one("redirect", "to: x, status_code: 200")))

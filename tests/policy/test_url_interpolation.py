"""Interpolation into URL-valued fields (redirect and url-rewrite `to`,
http-request `url`): interpolated values are percent-encoded, what the
policy itself wrote is kept as written (docs/policy.md, "URL fields")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeward.expr.interpolate import escape_url_value, split_template
from edgeward.policy.expressions import UrlTemplate, compile_url_template
from edgeward.policy.model import Phase

from .helpers import load, load_error, request


def redirect_to(to: str, **kw: object) -> str:
    h = load(
        f"""
        on_http_request:
          - actions:
              - type: set-vars
                config:
                  vars:
                    - backend: "https://dc-osaka.internal:8443/a b"
                    - q: "zürich\\"<>"
              - type: redirect
                config: {{to: "{to}"}}
        """
    )
    r = request(h, **kw)  # type: ignore[arg-type]
    assert r.status == 302, r
    (location,) = r.header("location")
    return location


def test_the_redirect_page_example() -> None:
    location = redirect_to(
        "https://example.com/geo?city=${req.headers['x-city'][0]}",
        headers=[("x-city", "San Francisco")],
    )
    assert location == "https://example.com/geo?city=San%20Francisco"


def test_the_template_text_is_never_encoded_again() -> None:
    location = redirect_to(
        "https://example.com/a%20b/${req.headers['x-v'][0]}?x=%7E&y=${url.escape('a b&c')}",
        headers=[("x-v", "c d%2Fe 100%")],
    )
    # the template's own %20 and %7E stay; the value's space and lone % are
    # encoded, its %2F kept; url.escape's output is not encoded twice
    assert location == "https://example.com/a%20b/c%20d%2Fe%20100%25?x=%7E&y=a+b%26c"


def test_a_value_may_be_a_whole_url_or_path() -> None:
    assert redirect_to("${vars.backend}") == "https://dc-osaka.internal:8443/a%20b"
    assert redirect_to("https://new.example.com${req.url.path}", url="/x/y") == (
        "https://new.example.com/x/y"
    )


def test_non_ascii_and_control_characters_are_encoded() -> None:
    location = redirect_to("https://example.com/?q=${vars.q}")
    assert location == "https://example.com/?q=z%C3%BCrich%22%3C%3E"


def test_url_rewrite_to_is_escaped_too() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: url-rewrite
                config:
                  from: "/search"
                  to: "/find/${req.headers['x-q'][0]}"
        """
    )
    r = request(h, "/search", headers=[("x-q", "new york")])
    assert r.forwarded is not None
    assert r.forwarded.head.target == b"/find/new%20york"


def test_errors_are_located_in_the_field_as_written() -> None:
    err = load_error(
        """
        on_http_request:
          - actions:
              - type: redirect
                config:
                  to: "https://example.com/${req.nope}"
        """
    )
    (error,) = err.errors
    assert error.location.line == 6 and "req.nope" in error.message


def test_a_constant_url_is_a_plain_template() -> None:
    template = compile_url_template("https://example.com/a b", Phase.HTTP_REQUEST)
    assert template.is_constant and not isinstance(template, UrlTemplate)
    template = compile_url_template("https://x/${req.url.path}?", Phase.HTTP_REQUEST)
    assert isinstance(template, UrlTemplate) and template.references == {"req.url.path"}


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a${x}b", ["a", (3, 4), "b"]),
        ("$${x}${'}'}", ["${x}", (7, 10)]),
        ("${ {'a': 1}['a'] }", [(2, 17)]),
    ],
)
def test_split_template(text: str, parts: list[object]) -> None:
    assert split_template(text) == parts


@given(st.text())
def test_escaping_is_idempotent_and_leaves_only_url_characters(value: str) -> None:
    once = escape_url_value(value)
    assert escape_url_value(once) == once
    assert once.isascii() and not any(c in once for c in ' "<>\\^`{|}\r\n\0')
    assert all(once[i + 1 : i + 3].isalnum() for i, c in enumerate(once) if c == "%")

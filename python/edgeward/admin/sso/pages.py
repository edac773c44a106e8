"""The few server-rendered pages of the login (a console will have its
own): plain HTML, no script, no inline style, every value escaped, and the
headers every page carries: a strict Content-Security-Policy (nothing may
load, forms post only to us, no framing), no caching, no referrer."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

CSP = (
    "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none';"
    " img-src 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def page(title: str, *paragraphs: str, body_html: str = "") -> str:
    """A page; `paragraphs` are text (escaped), `body_html` is trusted HTML
    built by the helpers below."""
    text = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} · edgeward</title></head><body>"
        f"<h1>{escape(title)}</h1>{text}{body_html}</body></html>"
    )


def link(href: str, label: str, id: str = "") -> str:
    ident = f' id="{escape(id)}"' if id else ""
    return f'<p><a{ident} href="{escape(href)}">{escape(label)}</a></p>'


def form(action: str, fields: Iterable[tuple[str, str, str]], button: str, csrf: str) -> str:
    """A POST form: (name, type, label) fields and the CSRF token."""
    rows = "".join(
        f'<p><label>{escape(label)} <input name="{escape(name)}" type="{escape(kind)}"'
        f' autocomplete="off" required></label></p>'
        for name, kind, label in fields
    )
    return (
        f'<form method="post" action="{escape(action)}">{rows}'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
        f'<p><button type="submit">{escape(button)}</button></p></form>'
    )


__all__ = ["CSP", "SECURITY_HEADERS", "form", "link", "page"]

"""Request paths normalised once, before routing, policy and forwarding.

A policy that denies `/admin` must see the path the upstream will serve.
Upstreams normalise (`/x/../admin` is `/admin` to nginx, Express, Go's
`http.ServeMux`...), so the edge does it first and forwards the result:
whatever the upstream does to a normalised path changes nothing, and the
policy saw exactly what is served. On the path (the query is never touched):

1. percent-escapes: `%` must be followed by two hex digits; escapes of
   unreserved characters (RFC 3986 §2.3: letters, digits, `-._~`) are
   decoded (`%2e` is `.`, `%41` is `A`), the rest keep their escape with
   upper-case digits (`%c3%a9` → `%C3%A9`);
2. encoded slashes (`%2F`), encoded backslashes (`%5C`) and raw backslashes
   follow the endpoint's `escaped_slashes` rule: `reject` (the default: the
   request is refused), `keep` (forwarded as they are, not separators here),
   or `unescape` (all three become `/`, as browsers read a backslash);
3. runs of slashes are merged (`//admin` → `/admin`);
4. dot-segments are removed (RFC 3986 §5.2.4: `/a/./b` → `/a/b`,
   `/a/b/../c` → `/a/c`, never above the root).

The result is a fixed point: normalising it again changes nothing, and it
holds no `//`, no `.` or `..` segment and no escape of an unreserved
character. Sans-IO, bytes in and out.
"""

from __future__ import annotations

from typing import Literal, get_args

EscapedSlashes = Literal["reject", "keep", "unescape"]
ESCAPED_SLASH_ACTIONS: tuple[str, ...] = get_args(EscapedSlashes)

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SLASHES = (0x2F, 0x5C)  # "/" and "\" as escaped bytes


class PathError(ValueError):
    """The path cannot be normalised: `escaped_slash` (refused by the
    `reject` rule) or malformed (not `/...`, or a bad percent-escape)."""

    def __init__(self, message: str, *, escaped_slash: bool = False) -> None:
        super().__init__(message)
        self.escaped_slash = escaped_slash


def normalize_target(target: bytes, escaped_slashes: EscapedSlashes = "reject") -> bytes:
    """The origin-form request target `path[?query]` with its path
    normalised (the same object when nothing changes). `*` (OPTIONS) is
    left alone. Raises `PathError`."""
    if target == b"*":
        return target
    if target[:1] != b"/":
        raise PathError("the request path does not start with /")
    question = target.find(b"?")
    path = target if question < 0 else target[:question]
    # (find, not `in`: on Python 3.11 `bytes in bytes` first tries the
    # needle as an integer and formats a TypeError it then drops, ~2,000
    # instructions each, four times per request here.)
    if (
        path.find(b"%") < 0
        and path.find(b"//") < 0
        and path.find(b"/.") < 0
        and path.find(b"\\") < 0
    ):
        return target  # the common case: nothing to do
    normal = normalize_path(path, escaped_slashes)
    if normal == path:
        return target
    return normal if question < 0 else normal + target[question:]


def normalize_path(path: bytes, escaped_slashes: EscapedSlashes = "reject") -> bytes:
    """Steps 1-4 of the module's rule on a path that starts with `/`."""
    if b"\\" in path:
        if escaped_slashes == "reject":
            raise PathError("backslash in the path", escaped_slash=True)
        if escaped_slashes == "unescape":
            path = path.replace(b"\\", b"/")
    if b"%" in path:
        path = _percent(path, escaped_slashes)
    while b"//" in path:
        path = path.replace(b"//", b"/")
    if b"/." in path:
        path = remove_dot_segments(path)
    return path


def _percent(path: bytes, escaped_slashes: EscapedSlashes) -> bytes:
    parts = path.split(b"%")
    out = [parts[0]]
    for part in parts[1:]:
        if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
            raise PathError("a % in the path is not followed by two hex digits")
        byte = int(part[:2], 16)
        if byte in _UNRESERVED:
            out.append(bytes((byte,)))
        elif byte in _SLASHES:
            if escaped_slashes == "reject":
                raise PathError("an encoded slash or backslash in the path", escaped_slash=True)
            out.append(b"/" if escaped_slashes == "unescape" else b"%%%02X" % byte)
        else:
            out.append(b"%%%02X" % byte)
        out.append(part[2:])
    return b"".join(out)


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 §5.2.4 on an absolute path whose slashes are merged: `.`
    segments go, `..` removes the segment before it (never above the root);
    a dot-segment at the end leaves a trailing slash."""
    segments = path.split(b"/")[1:]
    last = len(segments) - 1
    out: list[bytes] = []
    for i, segment in enumerate(segments):
        if segment == b".":
            if i == last:
                out.append(b"")
        elif segment == b"..":
            if out:
                out.pop()
            if i == last:
                out.append(b"")
        else:
            out.append(segment)
    return b"/" + b"/".join(out)


__all__ = [
    "ESCAPED_SLASH_ACTIONS",
    "EscapedSlashes",
    "PathError",
    "normalize_path",
    "normalize_target",
    "remove_dot_segments",
]

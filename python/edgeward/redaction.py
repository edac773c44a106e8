"""Redaction of captured HTTP traffic (the traffic inspector), before it is
kept: what a developer debugging a webhook needs to see, without the
credentials that rode along.

- Credential headers keep their name and lose their value: Authorization
  and Proxy-Authorization (the scheme stays: `Bearer [REDACTED]`), Cookie,
  Set-Cookie, X-Api-Key, and any header whose name says it carries a
  credential or a signature (`...token...`, `...secret...`,
  `...signature...`, `...session...`, `x-hub-signature-256`,
  `stripe-signature`...).
- The password of `user:password@` in an absolute request target.
- Query parameters (and form fields, and JSON string members) whose name
  looks like a secret: token, key, secret, password, signature, auth,
  credential, session, code...
- Any of the given secret values (the vaults' and edge.yml's `secrets:`),
  as is or percent-encoded, wherever it appears: heads and bodies. Values
  shorter than 4 characters are left alone, as the policy engine's own
  redactor does: they would mangle any text.

Plain functions on bytes and str: no I/O, no edgeward imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from urllib.parse import quote, quote_plus

MARK = "[REDACTED]"
_MARK = MARK.encode()
MIN_SECRET = 4  # shorter secret values are not searched for

# Headers whose whole value is a credential (names lower-case).
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-amz-security-token",
        "x-goog-api-key",
    }
)
# Authorization-like headers: the scheme is kept (`Bearer [REDACTED]`).
_SCHEMED = frozenset({"authorization", "proxy-authorization"})
# A header or parameter whose name contains one of these carries a secret
# ("key" covers api-key, apikey, api_key), or is one of the short words
# (too short to look for inside other names).
_SECRET_PARTS = ("token", "secret", "passw", "pwd", "signature", "credential", "session",
                 "auth", "hmac", "cookie", "key")  # fmt: skip
_SECRET_WORDS = ("sig", "code", "pass", "jwt", "otp", "pin")
_SECRET_NAME = re.compile(
    "|".join(_SECRET_PARTS)
    + "|"
    + "|".join(rf"(?:^|[^a-z0-9]){w}(?:$|[^a-z0-9])" for w in _SECRET_WORDS)
)
_USERINFO = re.compile(rb"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:?#]*):([^/@?#]*)@")
_JSON_MEMBER = re.compile(rb'"([^"\\]{1,64})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')


@lru_cache(maxsize=4096)
def secret_name(name: str) -> bool:
    """Whether a header, parameter or field called `name` carries a secret
    (cached: the same few names come in every request)."""
    return _SECRET_NAME.search(name.lower()) is not None


class Redactor:
    """Redacts captured heads and bodies; made once per set of secret
    values (the control plane's snapshot), used for every capture."""

    __slots__ = ("_needles",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[bytes] = set()
        for value in secrets:
            if len(value) < MIN_SECRET:
                continue
            for form in (value, quote(value, safe=""), quote_plus(value)):
                forms.add(form.encode())
        # Longest first: a secret that contains another is redacted whole.
        self._needles = tuple(sorted(forms, key=len, reverse=True))

    def __bool__(self) -> bool:
        """Whether there is any secret value to take out."""
        return bool(self._needles)

    def values(self, data: bytes) -> bytes:
        """`data` with every secret value replaced."""
        for needle in self._needles:
            if needle in data:
                data = data.replace(needle, _MARK)
        return data

    def header(self, name: bytes, value: bytes) -> bytes:
        """One header's value as kept."""
        lowered = name.decode("latin-1").lower()
        if lowered in _SCHEMED:
            scheme, space, _ = value.partition(b" ")
            return scheme + b" " + _MARK if space else _MARK
        if lowered in CREDENTIAL_HEADERS or secret_name(lowered):
            return _MARK
        return self.values(value)

    def headers(self, headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return [(name, self.header(name, value)) for name, value in headers]

    def target(self, target: bytes) -> bytes:
        """A request target (origin or absolute form): the password of its
        userinfo and its secret-looking query parameters."""
        target = _USERINFO.sub(rb"\1:" + _MARK + b"@", target)
        path, question, query = target.partition(b"?")
        if question:
            query, hash_, fragment = query.partition(b"#")
            target = path + b"?" + _params(query) + hash_ + fragment
        return self.values(target)

    def body(self, body: bytes, content_type: bytes = b"") -> bytes:
        """A (possibly truncated) body: secret values anywhere; the secret
        fields of a form or of a JSON document by name."""
        kind = content_type.split(b";")[0].strip().lower()
        if kind == b"application/x-www-form-urlencoded":
            body = _params(body)
        elif kind == b"application/json" or kind.endswith(b"+json"):
            body = _JSON_MEMBER.sub(_json_member, body)
        return self.values(body)

    def text(self, text: str) -> str:
        """A message (a policy trace line) with secret values replaced."""
        return self.values(text.encode()).decode("utf-8", "replace")


def _params(query: bytes) -> bytes:
    """`a=1&token=x` -> `a=1&token=[REDACTED]`, byte for byte otherwise."""
    out = []
    for pair in query.split(b"&"):
        name, equals, _ = pair.partition(b"=")
        secret = equals and secret_name(name.decode("latin-1"))
        out.append(name + b"=" + _MARK if secret else pair)
    return b"&".join(out)


def _json_member(match: re.Match[bytes]) -> bytes:
    name = match.group(1)
    if not secret_name(name.decode("latin-1")):
        return match.group(0)
    return b'"' + name + b'"' + match.group(2) + b'"' + _MARK + b'"'


__all__ = ["CREDENTIAL_HEADERS", "MARK", "MIN_SECRET", "Redactor", "secret_name"]

"""`basic-auth`: HTTP Basic authentication (RFC 7617) at the edge.

The presented `user:password` is compared with every configured credential,
always all of them and in constant time (SHA-256 digests compared with
`hmac.compare_digest`), so neither timing nor an early exit tells which
username exists. Failures answer 401 with a `WWW-Authenticate` challenge
(unless `enforce: false`). Results: `actions.ngrok.basic_auth.credentials.
{presented, username, authorized}`. Passwords never reach results, events or
logs; the Authorization header itself is forwarded unchanged (remove it with
`remove-headers` when the upstream must not see it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from edgeward import native
from edgeward.policy.actions._http import error_decision
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    ActionError,
    CompileScope,
    ConfigReader,
    Decision,
    ErrorCode,
    Phase,
)
from edgeward.policy.config import constant

MIN_PASSWORD, MAX_PASSWORD = 8, 128  # characters, as the public gateway requires
MAX_REALM = 128


def _digest(data: bytes) -> bytes:
    # Equal-length inputs for compare_digest, whatever the lengths compared.
    return hashlib.sha256(data).digest()


def credential_problem(username: str, password: str) -> str | None:
    """Why a `username:password` is not acceptable (RFC 7617 §2.1 and the
    gateway's length rules), or None."""
    if not username:
        return "the username is empty"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in username + password):
        return "control characters are not allowed (RFC 7617 section 2.1)"
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters, not {len(password)}"
    return None


@dataclass(frozen=True, slots=True)
class _Dynamic:
    """A credential with `${...}`: rendered per request. Either one template
    for the whole `user:password`, or one per side of a literal colon."""

    index: int
    whole: native.Template | None
    username: native.Template | None
    password: native.Template | None

    def render(self, ctx: ActionContext) -> tuple[bytes, bytes]:
        if self.whole is not None:
            username, sep, password = ctx.render(self.whole).partition(":")
            if not sep:
                self._fail("renders without a ':' separator")
        else:
            assert self.username is not None and self.password is not None
            username, password = ctx.render(self.username), ctx.render(self.password)
            if ":" in username:
                self._fail("has a username that renders with a ':'")
        problem = credential_problem(username, password)
        if problem is not None:
            self._fail(f"renders an unusable credential: {problem}")
        return _digest(username.encode()), _digest(password.encode())

    def _fail(self, what: str) -> None:
        # Fails closed (500); the message names the entry, never its value.
        raise ActionError(ErrorCode.ACTION_FAILED, f"basic-auth credentials[{self.index}] {what}")


class BasicAuth(Action):
    type = "basic-auth"
    phases = frozenset({Phase.HTTP_REQUEST})

    def __init__(
        self,
        static: Sequence[tuple[bytes, bytes]],
        dynamic: Sequence[_Dynamic],
        realm: str,
        enforce: bool,
    ) -> None:
        self.static = tuple(static)  # (sha256(username), sha256(password))
        self.dynamic = tuple(dynamic)
        self.enforce = enforce
        challenge = f'Basic realm="{realm}", charset="UTF-8"'
        self.challenge = [(b"www-authenticate", challenge.encode("ascii"))]

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        items = config.items("credentials", required=True, min_items=1, max_items=10)
        assert items is not None
        static: list[tuple[bytes, bytes]] = []
        dynamic: list[_Dynamic] = []
        for index, (path, item) in enumerate(items):
            raw = _from_mapping(config, path, item) if isinstance(item, Mapping) else item
            if not isinstance(raw, str):
                config.fail("credentials", f"credentials[{index}] must be 'username:password'")
            template = config.compile_template(path, raw)
            if template.is_constant:
                username, sep, password = constant(template).partition(":")
                problem = (
                    "must be 'username:password'"
                    if not sep
                    else credential_problem(username, password)
                )
                if problem is not None:
                    config.fail("credentials", f"credentials[{index}]: {problem}")
                static.append((_digest(username.encode()), _digest(password.encode())))
            else:
                dynamic.append(_compile_dynamic(config, path, index, raw, template))
        realm = config.string("realm", default="ngrok", max_length=MAX_REALM)
        assert realm is not None
        if not all(0x20 <= ord(c) < 0x7F for c in realm) or '"' in realm or "\\" in realm:
            config.fail("realm", "realm must be printable ASCII without '\"' or '\\'")
        enforce = config.boolean("enforce", default=True)
        assert enforce is not None
        return cls(static, dynamic, realm, enforce)

    def apply(self, ctx: ActionContext) -> Decision | None:
        received = ctx.received
        assert received is not None
        values = [v for n, v in received.headers if n == b"authorization"]
        presented, username, password = _parse(values)
        authorized = False
        if presented and username is not None and password is not None:
            authorized = self._check(ctx, username, password)
        shown = username.decode("utf-8", "replace") if username is not None else ""
        ctx.record(
            "basic_auth",
            {"credentials": {"presented": presented, "username": shown, "authorized": authorized}},
        )
        if authorized or not self.enforce:
            return None
        return self.refused(ctx, presented, username)

    def refused(self, ctx: ActionContext, presented: bool, username: bytes | None) -> Decision:
        """The 401 and its challenge, for credentials absent (`presented`
        false), malformed (`username` None) or rejected; the native phase
        runner's refusals too (`native_phase.native_decision`)."""
        shown = username.decode("utf-8", "replace") if username is not None else ""
        if not presented:
            reason = "no Basic credentials presented"
        elif username is None:
            reason = "malformed Basic credentials"
        else:
            reason = f"credentials rejected for user {shown[:64]!r}"
        return error_decision(
            ctx,
            401,
            ErrorCode.UNAUTHORIZED,
            "Unauthorized",
            reason=f"basic-auth: {reason}",
            headers=self.challenge,
        )

    def _check(self, ctx: ActionContext, username: bytes, password: bytes) -> bool:
        """Compare with every credential, without an early exit."""
        user, secret = _digest(username), _digest(password)
        entries = [*self.static, *(d.render(ctx) for d in self.dynamic)]
        matched = 0
        for entry_user, entry_secret in entries:
            matched |= hmac.compare_digest(user, entry_user) & hmac.compare_digest(
                secret, entry_secret
            )
        return bool(matched)


def _parse(values: Sequence[bytes]) -> tuple[bool, bytes | None, bytes | None]:
    """(presented, username, password) from the Authorization header(s).
    Presented but unusable (bad base64, no colon, the header twice):
    username and password are None."""
    basic = [v for v in values if v[:6].lower() == b"basic " or v.lower() == b"basic"]
    if not basic:
        return False, None, None
    if len(values) > 1:  # which one would the upstream read? refuse to guess
        return True, None, None
    try:
        decoded = base64.b64decode(basic[0][6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return True, None, None
    username, sep, password = decoded.partition(b":")
    if not sep:
        return True, None, None
    return True, username, password


def _from_mapping(config: ConfigReader, path: tuple[str | int, ...], raw: Mapping[str, Any]) -> str:
    """`{username: ..., password: ...}`: a form seen in some guides."""
    entry = config.reader_at(path, raw)
    username = entry.string("username", required=True)
    password = entry.string("password", required=True)
    entry.warn(None, "write a credential as 'username:password'")
    return f"{username}:{password}"


def _compile_dynamic(
    config: ConfigReader,
    path: tuple[str | int, ...],
    index: int,
    raw: str,
    template: native.Template,
) -> _Dynamic:
    """Split at the first colon outside `${...}` (the separator must be
    literal, as the public docs require), unless one interpolation is the
    whole credential."""
    colon = _literal_colon(raw)
    if colon is not None:
        username = config.compile_template(path, raw[:colon])
        password = config.compile_template(path, raw[colon + 1 :])
        if password.is_constant:
            problem = credential_problem("-", constant(password))
            if problem is not None:
                config.fail("credentials", f"credentials[{index}]: {problem}")
        return _Dynamic(index, None, username, password)
    spans = _interpolations(raw)
    if spans != [(0, len(raw))]:
        config.fail(
            "credentials",
            f"credentials[{index}] needs a literal ':' between username and password "
            "(or one ${...} that gives the whole credential)",
        )
    return _Dynamic(index, template, None, None)


def _literal_colon(text: str) -> int | None:
    """The index of the first ':' outside every `${...}`, or None."""
    spans = _interpolations(text)
    for i, c in enumerate(text):
        if c == ":" and not any(start <= i < end for start, end in spans):
            return i
    return None


def _interpolations(text: str) -> list[tuple[int, int]]:
    """The [start, end) spans of the `${...}` parts, skipping braces inside
    CEL string literals."""
    spans: list[tuple[int, int]] = []
    i = 0
    while (start := text.find("${", i)) != -1:
        if start and text[start - 1] == "$":  # `$${` is a literal `${`
            i = start + 2
            continue
        depth, j, quote = 0, start + 1, ""
        while j < len(text):
            c = text[j]
            if quote:
                if c == "\\":
                    j += 1
                elif c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        spans.append((start, j + 1))
        i = j + 1
    return spans

"""Sealed values: what the edge hands a browser (session and transaction
cookies, login tickets) and must get back unchanged and unread.

A sealed value is AES-256-GCM (`cryptography`) over compact JSON, with the
key id in clear so keys can rotate: the first key of the `Keyring` seals,
every key unseals. The *purpose* ("session", "tx", "ticket") is
authenticated data, so a value sealed for one use is refused for another
(a ticket pasted into the session cookie fails). Every sealed payload has
an `exp` (unix time) checked on unsealing.

Wire form (base64url, no padding):
``version(1) | len(kid)(1) | kid | nonce(12) | ciphertext+tag``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
MAX_SEALED = 3000  # characters; a cookie must stay under the browsers' 4 KiB
UNSEALED_CACHE = 4096  # values remembered as unsealed (per keyring)
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class SealError(ValueError):
    """A value that does not unseal: tampered, expired, for another purpose,
    or sealed with a key the keyring no longer has. The message is safe to
    log (it never contains the value)."""


class KeyFileError(ValueError):
    """A keys file that cannot be used (the message says why and where)."""


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class SealKey:
    kid: str
    secret: bytes  # 32 bytes

    def __repr__(self) -> str:  # never the secret
        return f"SealKey(kid={self.kid!r})"


class Keyring:
    """The sealing keys: the first seals, all unseal (rotation: add the new
    key first, keep the old ones until their cookies have expired)."""

    def __init__(self, keys: Sequence[SealKey]) -> None:
        if not keys:
            raise KeyFileError("no keys")
        kids = [k.kid for k in keys]
        if len(set(kids)) != len(kids):
            raise KeyFileError("two keys have the same kid")
        self.keys = tuple(keys)
        self._aead = {k.kid: AESGCM(k.secret) for k in keys}
        self._current = keys[0]
        # (purpose, sealed value) -> payload: the same session cookie comes
        # with every request of a browser; a value already authenticated by
        # this keyring is not decrypted again (its `exp` is still checked).
        # A new keyring (reload, rotation) starts empty.
        self._unsealed: dict[tuple[str, str], dict[str, Any]] = {}

    @classmethod
    def generate(cls, kid: str = "k1") -> Keyring:
        """A keyring with one random key (tests, `policy test`)."""
        return cls([SealKey(kid, os.urandom(KEY_BYTES))])

    @property
    def kid(self) -> str:
        return self._current.kid

    def seal(self, purpose: str, payload: Mapping[str, Any]) -> str:
        kid = self._current.kid.encode()
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        sealed = self._aead[self._current.kid].encrypt(nonce, plain, _aad(purpose, kid))
        return b64e(bytes([VERSION, len(kid)]) + kid + nonce + sealed)

    def unseal(self, purpose: str, value: str, now: float) -> dict[str, Any]:
        """The payload, or `SealError`. Checks the tag (any change to any
        byte fails), the purpose and the `exp`."""
        known = self._unsealed.get((purpose, value))
        if known is not None:
            if now >= known["exp"]:
                raise SealError("expired")
            return dict(known)
        payload = self._unseal(purpose, value)
        if now >= payload["exp"]:
            raise SealError("expired")
        if len(self._unsealed) >= UNSEALED_CACHE:
            del self._unsealed[next(iter(self._unsealed))]
        self._unsealed[(purpose, value)] = payload
        return dict(payload)

    def _unseal(self, purpose: str, value: str) -> dict[str, Any]:
        if not value or len(value) > MAX_SEALED:
            raise SealError("missing or oversized value")
        try:
            raw = b64d(value)
        except (binascii.Error, ValueError):
            raise SealError("not base64url") from None
        if len(raw) < 2 or raw[0] != VERSION:
            raise SealError("unknown format version")
        n = raw[1]
        kid = raw[2 : 2 + n]
        body = raw[2 + n :]
        if len(kid) != n or len(body) < NONCE_BYTES + 16:
            raise SealError("truncated value")
        aead = self._aead.get(kid.decode("ascii", "replace"))
        if aead is None:
            raise SealError("sealed with an unknown key")
        try:
            plain = aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], _aad(purpose, kid))
        except InvalidTag:
            raise SealError("authentication failed (tampered, or another purpose)") from None
        try:
            payload = json.loads(plain)
        except ValueError:
            raise SealError("not JSON") from None
        if not isinstance(payload, dict):
            raise SealError("not an object")
        exp = payload.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise SealError("expired")
        return payload


def _aad(purpose: str, kid: bytes) -> bytes:
    return b"edgeward-identity:" + purpose.encode() + b":" + kid


def same(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality of two secrets (state, nonce, digests)."""
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def parse_keys(data: Any, where: str) -> Keyring:
    """Keys from a JWK Set of `oct` keys, the form of the keys file:
    ``{"keys": [{"kty": "oct", "kid": "2026-01", "k": "<base64url 32 bytes>"}]}``.
    The first key seals."""
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
        raise KeyFileError(f'{where}: must be a JSON object with a "keys" list (a JWK set)')
    out = []
    for i, jwk in enumerate(data["keys"]):
        at = f"{where}: keys[{i}]"
        if not isinstance(jwk, Mapping):
            raise KeyFileError(f"{at}: must be an object")
        if jwk.get("kty") != "oct":
            raise KeyFileError(f'{at}: "kty" must be "oct" (a symmetric key)')
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not _KID.match(kid):
            raise KeyFileError(f'{at}: "kid" must be 1-64 of A-Z a-z 0-9 _ . -')
        k = jwk.get("k")
        try:
            secret = b64d(k) if isinstance(k, str) else b""
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) != KEY_BYTES:
            raise KeyFileError(f'{at}: "k" must be {KEY_BYTES} random bytes, base64url-encoded')
        out.append(SealKey(kid, secret))
    if not out:
        raise KeyFileError(f"{where}: no keys")
    try:
        return Keyring(out)
    except KeyFileError as exc:
        raise KeyFileError(f"{where}: {exc}") from None


def load_keys(path: Path) -> Keyring:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not JSON ({exc})") from None
    return parse_keys(data, str(path))


def new_key_set(kid: str = "k1") -> dict[str, Any]:
    """A fresh keys file's content (`edgeward identity keygen`)."""
    return {"keys": [{"kty": "oct", "kid": kid, "k": b64e(os.urandom(KEY_BYTES))}]}


__all__ = [
    "KeyFileError",
    "Keyring",
    "SealError",
    "SealKey",
    "b64d",
    "b64e",
    "load_keys",
    "new_key_set",
    "parse_keys",
    "same",
]

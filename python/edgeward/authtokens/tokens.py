"""The authtoken format and how a token is hashed for storage.

    ewt_k3j5q2m7x4b6n8p2_Zm9vYmFyLi4uICAgIDMyIHJhbmRvbSBieXRlcyBiYXNlNjR1cmw

`ewt_` marks an edgeward token (secret scanners and people can recognise
it); 16 characters of lower-case base32 are the id part (80 random bits; the
authtoken's id is `at_` + that part, so lookup is by id and needs no scan);
then `_` and 43 characters of base64url: 256 random bits, the secret.

Only a keyed hash is stored: HMAC-SHA-256 of the whole token under a key
derived from the deployment's secret (`edgeward.store` keeps it outside the
database). The tokens are uniformly random 256-bit values, so a slow
password hash would add nothing: nobody can guess such a token, fast hash or
not. The key (a "pepper") means a copy of the database alone does not even
let one test a candidate token. Hashing the whole token binds the hash to its
id. Verification compares digests in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from edgeward.errors import EdgewardError

TOKEN_PREFIX = "ewt_"
ID_PREFIX = "at_"
ID_CHARS = 16  # base32 of 10 random bytes
SECRET_BYTES = 32  # 43 characters of unpadded base64url
TOKEN_LENGTH = len(TOKEN_PREFIX) + ID_CHARS + 1 + 43
_TOKEN = re.compile(
    rf"{TOKEN_PREFIX}(?P<id>[a-z2-7]{{{ID_CHARS}}})_(?P<secret>[A-Za-z0-9_-]{{43}})\Z"
)
_ID = re.compile(rf"{ID_PREFIX}[a-z2-7]{{{ID_CHARS}}}\Z")
_HASH_PURPOSE = b"edgeward authtoken hash v1"


class TokenError(EdgewardError):
    """A string that is not an edgeward authtoken. Says why, never echoes it."""


@dataclass(frozen=True, slots=True)
class Token:
    """A parsed token. `text` is the secret whole: print it once, never log it."""

    id: str  # "at_" + the id part
    text: str = ""

    def __repr__(self) -> str:  # keep the secret out of tracebacks and logs
        return f"Token(id={self.id!r})"


def generate() -> Token:
    """A new random token."""
    id_part = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return Token(ID_PREFIX + id_part, f"{TOKEN_PREFIX}{id_part}_{secret}")


def parse(text: str) -> Token:
    """Check the format (not the secret: see `TokenHasher.verify`)."""
    match = _TOKEN.match(text)
    if match is None:
        if not text.startswith(TOKEN_PREFIX):
            raise TokenError(f"not an edgeward authtoken: it does not start with {TOKEN_PREFIX!r}")
        raise TokenError(
            f"malformed edgeward authtoken: expected {TOKEN_LENGTH} characters,"
            f" {TOKEN_PREFIX}<16 base32>_<43 base64url>, got {len(text)}"
        )
    return Token(ID_PREFIX + match["id"], text)


def is_id(text: str) -> bool:
    return _ID.match(text) is not None


class TokenHasher:
    """Hashes tokens under a key derived from the deployment's secret."""

    __slots__ = ("_key",)

    def __init__(self, deployment_secret: bytes, purpose: bytes = _HASH_PURPOSE) -> None:
        # `purpose` separates the keys of different credentials (the admin
        # API's keys hash under their own), so one hash never verifies another.
        self._key = hmac.new(deployment_secret, purpose, hashlib.sha256).digest()

    def digest(self, token: Token) -> str:
        """Hex HMAC-SHA-256 of the whole token: the value stored."""
        return hmac.new(self._key, token.text.encode(), hashlib.sha256).hexdigest()

    def verify(self, token: Token, stored: str) -> bool:
        return hmac.compare_digest(self.digest(token), stored)


__all__ = ["Token", "TokenError", "TokenHasher", "generate", "is_id", "parse"]

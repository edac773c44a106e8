"""The break-glass local admin: a way in when the IdP is down. A username,
a password (scrypt, from the standard library: memory-hard, parameters
stored with the hash) and a TOTP second factor (RFC 6238 through `pyotp`),
so the way around SSO still needs two factors. Enrolled on the edge's own
store by `edgeward break-glass enroll`, which prints the TOTP secret and
its otpauth:// URI once; the secret is kept sealed (AES-256-GCM) under a
key derived from the deployment secret, so a copy of the database alone
does not give it. A code is good once (the last used time step is kept).
Every use is audited loudly (`break_glass_login.v0` and a warning log line).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from edgeward.authtokens.manage import InputError
from edgeward.store import Store
from edgeward.store.web_session_rows import (
    BreakGlassRow,
    get_break_glass,
    insert_break_glass,
    use_totp_step,
)

ISSUER = "edgeward"
MIN_PASSWORD = 12
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
_SEAL_PURPOSE = b"edgeward break-glass totp v1"
_DUMMY = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43  # equalises unknown-user timing


@dataclass(frozen=True, slots=True)
class Enrolled:
    username: str
    secret: str  # base32: shown once
    uri: str  # otpauth://totp/...: shown once (as a QR code by whoever wants)


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    derived = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(derived)}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, want = stored.split("$")
        if kind != "scrypt":
            return False
        got = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(got, _unb64(want))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=32
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aead(store: Store) -> object:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(hmac.new(store.secret, _SEAL_PURPOSE, hashlib.sha256).digest())


def _seal(store: Store, username: str, secret: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = _aead(store)
    assert isinstance(aead, AESGCM)
    nonce = os.urandom(12)
    return _b64(nonce + aead.encrypt(nonce, secret.encode(), username.encode()))


def _unseal(store: Store, username: str, sealed: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = _aead(store)
    assert isinstance(aead, AESGCM)
    raw = _unb64(sealed)
    return aead.decrypt(raw[:12], raw[12:], username.encode()).decode()


def enroll(store: Store, username: str, password: str) -> Enrolled:
    """Make (or replace) the local admin `username`."""
    import pyotp

    if not _NAME.match(username):
        raise InputError("username", "lower-case letters, digits, '.', '_', '-' (up to 64)")
    if len(password) < MIN_PASSWORD:
        raise InputError("password", f"at least {MIN_PASSWORD} characters")
    secret = pyotp.random_base32()
    row = BreakGlassRow(
        username, hash_password(password), _seal(store, username, secret), 0, datetime.now(UTC)
    )
    with store.write() as conn:
        insert_break_glass(conn, row)
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    return Enrolled(username, secret, uri)


def verify(store: Store, username: str, password: str, code: str, now: float) -> bool:
    """Password and a fresh TOTP code (this or an adjacent 30 s step, each
    step's code used once). Blocking (scrypt, a store write)."""
    import pyotp

    with store.read() as conn:
        row = get_break_glass(conn, username) if _NAME.match(username) else None
    if not check_password(password, row.password_hash if row else _DUMMY) or row is None:
        return False
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(_unseal(store, username, row.totp_secret))
    for offset in (0, -1, 1):
        at = now + offset * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            with store.write() as conn:
                return use_totp_step(conn, username, totp.timecode(datetime.fromtimestamp(at, UTC)))
    return False


def principal_id(username: str) -> str:
    return "bg_" + username


__all__ = ["Enrolled", "check_password", "enroll", "hash_password", "principal_id", "verify"]

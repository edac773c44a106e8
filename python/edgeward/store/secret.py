"""The deployment secret: 32 random bytes in `secret.key` (hex, mode 0600)
in the state directory, made at the first open. Keys for hashing secrets
(authtoken hashes; later API keys) are derived from it, so a copy of the
database without this file cannot test a guessed token. It must travel
with backups of the database and be shared by every node of a store; a
different file is refused at open (`store_state.secret_check`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from edgeward.store.errors import StoreError

SIZE = 32
_CHECK = b"edgeward store secret check"


def load_or_create(path: Path) -> bytes:
    """Read the secret, or make it: written to a temporary file, then linked
    into place, so a process racing us reads a whole file or makes none."""
    if path.exists():
        return read(path)
    value = secrets.token_bytes(SIZE)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".secret-", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(value.hex() + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.link(tmp, path)
        finally:
            os.unlink(tmp)
    except FileExistsError:
        return read(path)
    except OSError as exc:
        raise StoreError(f"cannot create the secret: {exc.strerror}", str(path)) from None
    return value


def check_value(secret: bytes) -> str:
    """What `store_state.secret_check` holds for this secret."""
    return hmac.new(secret, _CHECK, hashlib.sha256).hexdigest()


def read(path: Path) -> bytes:
    """An existing secret file's value."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise StoreError(f"cannot read the secret: {exc.strerror}", str(path)) from None
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) < SIZE:
        raise StoreError(f"not a secret: expected {SIZE * 2} hex digits", str(path))
    return value


# --- sealing values at rest (vault secrets) -----------------------------------------------------

_SEAL_PURPOSE = b"edgeward vault secrets v1"
_NONCE = 12


def _seal_key(secret: bytes) -> bytes:
    return hmac.new(secret, _SEAL_PURPOSE, hashlib.sha256).digest()


def seal(secret: bytes, value: str, context: str) -> str:
    """`value` encrypted with AES-256-GCM under a key derived from the
    deployment secret; `context` (e.g. the vault and secret ids) is bound
    as associated data, so a sealed value copied to another row does not
    open. Base64url text: nonce + ciphertext + tag."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(_NONCE)
    sealed = AESGCM(_seal_key(secret)).encrypt(nonce, value.encode(), context.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(secret: bytes, sealed: str, context: str) -> str:
    """The value `seal` sealed; `StoreError` when it does not open (another
    deployment secret, another row, or a damaged value)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = base64.urlsafe_b64decode(sealed)
        value = AESGCM(_seal_key(secret)).decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
    except (InvalidTag, ValueError):
        raise StoreError("a sealed secret does not open", context) from None
    return value.decode()


__all__ = ["check_value", "load_or_create", "read", "seal", "unseal"]

"""Resource ids: a prefix naming the kind (`ipp_`, `ipr_`, `ipx_`, `ep_`,
`vault_`, `sec_`) and 26 random base32 characters (130 bits), lower case."""

from __future__ import annotations

import base64
import secrets


def new_id(prefix: str) -> str:
    return prefix + "_" + base64.b32encode(secrets.token_bytes(17)).decode()[:26].lower()


__all__ = ["new_id"]

"""Secrets for `secrets.get(vault, name)`: the edge config's `secrets:`
section (and `policy check|test --secrets FILE`, the same shape alone).

    secrets:
      webhook-secrets:              # a vault
        stripe-secret: {file: secrets/stripe}   # a file (relative to the config)
        github-secret: {env: GITHUB_WEBHOOK_SECRET}

Values are read once, at load (and at every reload): a file's text without
one trailing newline, or an environment variable's value. A missing file or
variable, text that is not UTF-8, or an empty value is a `ConfigError` with
the file and line of the entry, naming the file or variable, never a value.

A `Secrets` never shows a value: its repr counts vaults and names. Below the
edge config and the policy layer (both import it), it does no I/O but read
the files its entries name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from edgeward.document import Document, PathKey, load_document
from edgeward.errors import ConfigError

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class Vault(Mapping[str, str]):
    """The secrets of one vault: name -> value (repr without values)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Vault({sorted(self._values)})"


class Secrets(Mapping[str, Vault]):
    """Vault name -> `Vault`. Immutable; the repr names no value."""

    __slots__ = ("__weakref__", "_vaults")

    def __init__(self, vaults: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._vaults = {name: Vault(values) for name, values in (vaults or {}).items()}

    def __getitem__(self, vault: str) -> Vault:
        return self._vaults[vault]

    def __iter__(self) -> Iterator[str]:
        return iter(self._vaults)

    def __len__(self) -> int:
        return len(self._vaults)

    def __repr__(self) -> str:
        count = sum(len(v) for v in self._vaults.values())
        return f"Secrets(<{len(self._vaults)} vault(s), {count} secret(s)>)"

    def values_to_hide(self) -> list[str]:
        """Every value, longest first (for redaction)."""
        return sorted({v for vault in self._vaults.values() for v in vault.values()}, key=len)[::-1]


def read_secrets(
    doc: Document,
    path: PathKey,
    data: Any,
    base: Path,
    environ: Mapping[str, str] | None = None,
) -> Secrets:
    """The `secrets:` mapping at `path` of `doc`; files are relative to
    `base`. Raises `ConfigError` located at the offending entry."""
    env = os.environ if environ is None else environ

    def error(at: PathKey, message: str) -> ConfigError:
        return ConfigError(message, doc.locate(at))

    if data is None:
        return Secrets()
    if not isinstance(data, Mapping):
        raise error(path, "secrets must be a mapping of vault names to secrets")
    vaults: dict[str, dict[str, str]] = {}
    for vault, entries in data.items():
        at = (*path, vault)
        if not isinstance(vault, str) or not _NAME.match(vault):
            raise error(at, f"vault name {vault!r}: letters, digits, '_', '.' or '-'")
        if not isinstance(entries, Mapping) or not entries:
            raise error(
                at, f"vault {vault!r} must map secret names to {{file: ...}} or {{env: ...}}"
            )
        vaults[vault] = {}
        for name, source in entries.items():
            where = (*at, name)
            if not isinstance(name, str) or not _NAME.match(name):
                raise error(where, f"secret name {name!r}: letters, digits, '_', '.' or '-'")
            vaults[vault][name] = _read_one(source, where, base, env, error)
    return Secrets(vaults)


def _read_one(source: Any, where: PathKey, base: Path, env: Mapping[str, str], error: Any) -> str:
    if not isinstance(source, Mapping) or len(source) != 1 or not source.keys() <= {"file", "env"}:
        raise error(where, "a secret is {file: PATH} or {env: VARIABLE}")
    ((kind, ref),) = source.items()
    if not isinstance(ref, str) or not ref:
        raise error((*where, kind), f"{kind} must be a non-empty string")
    if kind == "env":
        value = env.get(ref)
        if value is None:
            raise error((*where, kind), f"environment variable {ref} is not set")
        origin = f"environment variable {ref}"
    else:
        file = Path(os.path.abspath(base / os.path.expanduser(ref)))
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise error((*where, kind), f"cannot read {file}: {exc.strerror}") from None
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise error((*where, kind), f"{file} is not UTF-8 text") from None
        value = value.removesuffix("\n").removesuffix("\r")
        origin = str(file)
    if not value:
        raise error((*where, kind), f"the secret is empty ({origin})")
    return value


def load_secrets(path: str | Path, environ: Mapping[str, str] | None = None) -> Secrets:
    """A secrets file (`policy check|test --secrets FILE`): the shape of the
    edge config's `secrets:` section, or an edge config (its `secrets:`)."""
    file = Path(path)
    doc = load_document(file, what="secrets file")
    data = doc.data
    if isinstance(data, Mapping) and "secrets" in data:
        return read_secrets(doc, ("secrets",), data["secrets"], file.parent, environ)
    return read_secrets(doc, (), data, file.parent, environ)

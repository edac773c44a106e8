"""`/vaults` and `/secrets`: what the traffic policies of endpoints made
through the API read with `secrets.get(vault, name)`, beside edge.yml's
`secrets:` section (which wins where both name the same secret).

A secret's value is write-only: it is given on create or change and never
shown again (no field of any answer, no audit event carries it). The store
keeps it sealed (AES-256-GCM under a key derived from the deployment
secret, `store.secret.seal`), bound to its row. Admins write; auditors read
names and descriptions; developers see neither.

A vault's name does not change (policies name it); deleting a vault deletes
its secrets. Endpoints made through the API compile again after any
change, so a new value is in force within about 250 ms.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgeward.admin.control_base import Rows, admin_only, described, described_shape, not_developer
from edgeward.admin.errors import conflict, invalid
from edgeward.admin.resources import ref, timestamp
from edgeward.control import new_id
from edgeward.control.snapshot import secret_context
from edgeward.store import ApiKeyRow, Connection
from edgeward.store import control_rows as rows
from edgeward.store.secret import seal

if TYPE_CHECKING:
    from edgeward.admin.app import AdminApi

_NAME = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
)  # as edge.yml's secrets: (edgeward.secrets)
MAX_VALUE = 16 * 1024


def vault(base: str, row: rows.VaultRow) -> dict[str, Any]:
    return {**described_shape(base, "vaults", row), "name": row.name}


def secret(base: str, row: rows.SecretRow) -> dict[str, Any]:
    return {
        **described_shape(base, "secrets", row),
        "updated_at": timestamp(row.updated_at),
        "name": row.name,
        "vault": ref(base, "vaults", row.vault_id),
    }


def _name(data: dict[str, Any]) -> str | None:
    value = data.get("name")
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise invalid("name: letters, digits, '_', '.' or '-' (at most 128)", "name")
    return value


def _value(data: dict[str, Any]) -> str | None:
    value = data.get("value")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise invalid("value must be a non-empty string", "value")
    if len(value.encode()) > MAX_VALUE:
        raise invalid(f"value is longer than {MAX_VALUE} bytes", "value")
    return value


def routes(api: AdminApi) -> list[Route]:
    vaults = Rows(api, rows.VaultRow, "vaults", "vault", vault)
    secrets = Rows(api, rows.SecretRow, "secrets", "secret", secret)

    async def list_vaults(request: Request, key: ApiKeyRow) -> Response:
        not_developer(key, "vaults")
        return await vaults.list_handler(request, key)

    async def get_vault(request: Request, key: ApiKeyRow) -> Response:
        not_developer(key, "vaults")
        return await vaults.get_handler(request, key)

    async def create_vault(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "vaults")
        data = await api._body(request, {"name", "description", "metadata"})
        name = _name(data)
        if name is None:
            raise invalid("name is required", "name")
        text = described(data, create=True)
        row = rows.VaultRow(
            new_id("vault"), name, text["description"] or "", text["metadata"] or "", _now()
        )

        def add(conn: Connection) -> None:
            if any(v.name == name for v in rows.select_all(conn, rows.VaultRow)):
                raise conflict(f"there is already a vault named {name!r}", "name")
            rows.add(conn, row)

        await vaults.write(add)
        shown = vault(api._base(request), row)
        api._emit("vault_created.v0", shown, key)
        return api._json(shown, 201)

    async def update_vault(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "vaults")
        id = request.path_params["id"]
        text = described(await api._body(request, {"description", "metadata"}), create=False)

        def change(conn: Connection) -> rows.VaultRow:
            vaults.current(conn, request, id)
            changed = rows.change(conn, rows.VaultRow, id, **text)
            assert changed is not None
            return changed

        shown = vault(api._base(request), await vaults.write(change))
        api._emit("vault_updated.v0", shown, key)
        return api._json(shown)

    async def delete_vault(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "vaults")
        id = request.path_params["id"]

        def remove(conn: Connection) -> rows.VaultRow:
            row: rows.VaultRow = vaults.current(conn, request, id)
            rows.remove(conn, rows.VaultRow, id)
            return row

        row = await vaults.write(remove)
        api._emit("vault_deleted.v0", vault(api._base(request), row), key)
        return Response(status_code=204)

    async def vault_secrets(request: Request, key: ApiKeyRow) -> Response:
        not_developer(key, "secrets")
        id = request.path_params["id"]
        await vaults.one(id)
        return secrets.page(request, await secrets.all(vault_id=id))

    async def list_secrets(request: Request, key: ApiKeyRow) -> Response:
        not_developer(key, "secrets")
        return await secrets.list_handler(request, key)

    async def get_secret(request: Request, key: ApiKeyRow) -> Response:
        not_developer(key, "secrets")
        return await secrets.get_handler(request, key)

    async def create_secret(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "secrets")
        data = await api._body(request, {"name", "value", "vault_id", "description", "metadata"})
        name, value = _name(data), _value(data)
        vault_id = api._text(data, "vault_id")
        if name is None or value is None or not vault_id:
            missing = [
                f for f, v in (("name", name), ("value", value), ("vault_id", vault_id)) if not v
            ]
            raise invalid(f"{missing[0]} is required", missing[0])
        text = described(data, create=True)
        now = _now()
        id = new_id("sec")

        def add(conn: Connection) -> rows.SecretRow:
            if rows.get(conn, rows.VaultRow, vault_id) is None:
                raise invalid(f"vault_id: no vault {vault_id!r}", "vault_id")
            if rows.select_all(conn, rows.SecretRow, vault_id=vault_id, name=name):
                raise conflict(f"vault {vault_id!r} already has a secret {name!r}", "name")
            draft = rows.SecretRow(
                id, vault_id, name, "", text["description"] or "", text["metadata"] or "", now, now
            )
            sealed = seal(api.store.store.secret, value, secret_context(draft))
            row = rows.SecretRow(
                id,
                vault_id,
                name,
                sealed,
                draft.description,
                draft.metadata,
                now,
                now,
            )
            rows.add(conn, row)
            return row

        shown = secret(api._base(request), await secrets.write(add))
        api._emit("secret_created.v0", shown, key)
        return api._json(shown, 201)

    async def update_secret(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "secrets")
        id = request.path_params["id"]
        data = await api._body(request, {"value", "description", "metadata"})
        value = _value(data)
        text = described(data, create=False)

        def change(conn: Connection) -> rows.SecretRow:
            current: rows.SecretRow = secrets.current(conn, request, id)
            sealed = (
                seal(api.store.store.secret, value, secret_context(current))
                if value is not None
                else None
            )
            changed = rows.change(
                conn, rows.SecretRow, id, sealed_value=sealed, updated_at=_now(), **text
            )
            assert changed is not None
            return changed

        shown = secret(api._base(request), await secrets.write(change))
        api._emit("secret_updated.v0", shown, key)
        return api._json(shown)

    async def delete_secret(request: Request, key: ApiKeyRow) -> Response:
        admin_only(key, "secrets")
        id = request.path_params["id"]

        def remove(conn: Connection) -> rows.SecretRow:
            row: rows.SecretRow = secrets.current(conn, request, id)
            rows.remove(conn, rows.SecretRow, id)
            return row

        row = await secrets.write(remove)
        api._emit("secret_deleted.v0", secret(api._base(request), row), key)
        return Response(status_code=204)

    return [
        *vaults.routes(
            list_=list_vaults,
            get=get_vault,
            create=create_vault,
            update=update_vault,
            delete=delete_vault,
        ),
        Route("/vaults/{id}/secrets", api._wrap(vault_secrets), methods=["GET"]),
        *secrets.routes(
            list_=list_secrets,
            get=get_secret,
            create=create_secret,
            update=update_secret,
            delete=delete_secret,
        ),
    ]


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = ["routes", "secret", "vault"]

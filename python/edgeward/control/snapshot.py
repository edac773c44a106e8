"""What the edge applies of the control plane, read in one transaction: the
IP restrictions (compiled), the endpoints made through the API, the
traffic inspector's opt-ins, and the vaults' secrets (unsealed, for
`secrets.get`). Built by the store's watcher after every change
(`store.trio_adapter.AsyncStore.watch`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from edgeward.control.restrictions import Restrictions
from edgeward.store import Connection, Store, current_revision
from edgeward.store import control_rows as rows
from edgeward.store.secret import unseal


def secret_context(row: rows.SecretRow) -> str:
    """What a secret's sealed value is bound to (`store.secret.seal`)."""
    return f"{row.vault_id}/{row.id}"


@dataclass(frozen=True, slots=True)
class ControlSnapshot:
    revision: int = 0
    restrictions: Restrictions = field(default_factory=Restrictions)
    endpoints: tuple[rows.CloudEndpointRow, ...] = ()
    inspections: tuple[rows.InspectionRow, ...] = ()  # the traffic inspector's opt-ins
    # vault name -> secret name -> value; never shown (repr hides it)
    vaults: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)

    def same_endpoints(self, other: ControlSnapshot) -> bool:
        """Whether the endpoints (and the secrets their policies read) are
        unchanged: else the edge compiles them again."""
        return self.endpoints == other.endpoints and self.vaults == other.vaults


def load(store: Store) -> ControlSnapshot:
    """Read a snapshot (blocking: under trio, through `AsyncStore`)."""
    with store.read() as conn:
        revision = current_revision(conn)
        restrictions = read_restrictions(conn)
        endpoints = tuple(rows.select_all(conn, rows.CloudEndpointRow))
        inspections = tuple(rows.select_all(conn, rows.InspectionRow))
        vault_rows = {v.id: v.name for v in rows.select_all(conn, rows.VaultRow)}
        secret_rows = rows.select_all(conn, rows.SecretRow)
    vaults: dict[str, dict[str, str]] = {name: {} for name in vault_rows.values()}
    for secret in secret_rows:
        value = unseal(store.secret, secret.sealed_value, secret_context(secret))
        vaults[vault_rows[secret.vault_id]][secret.name] = value
    return ControlSnapshot(revision, restrictions, endpoints, inspections, vaults)


def read_restrictions(conn: Connection) -> Restrictions:
    """The restrictions as a transaction sees them (the admin API's guard
    against locking its caller out checks the state a change leaves)."""
    return Restrictions.build(
        rows.select_all(conn, rows.IpRestrictionRow), rows.select_all(conn, rows.IpPolicyRuleRow)
    )


__all__ = ["ControlSnapshot", "load", "read_restrictions", "secret_context"]

"""What the control plane's resources mean (issue 14, docs/control-plane.md):
IP policies and restrictions compiled to decisions, endpoints made through
the API, vaults and their secrets. Rows live in the store
(`store.control_rows`); the admin API writes them; the edge reads a
`ControlSnapshot` through the store's watcher and applies it.

Trio-free and below the proxy and the admin API, which both import it.
"""

from edgeward.control.ids import new_id
from edgeward.control.restrictions import (
    RESTRICTION_TYPES,
    Restrictions,
    RuleError,
    check_cidr,
)
from edgeward.control.snapshot import ControlSnapshot, load

__all__ = [
    "RESTRICTION_TYPES",
    "ControlSnapshot",
    "Restrictions",
    "RuleError",
    "check_cidr",
    "load",
    "new_id",
]

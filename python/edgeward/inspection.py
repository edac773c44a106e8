"""The traffic inspector's settings, as both the admin API (which stores
them) and the edge (which captures) read them: their bounds and defaults,
which data-plane endpoint an API endpoint id names, and the one error a
replay can end in.

An endpoint's inspection is opt-in (`store.control_rows.InspectionRow`,
migration 0006); the captures themselves are kept in the edge's memory
only (`edgeward.proxy.inspector`), never in the store. A bottom-row
module: it imports nothing of edgeward's but the error root, so the proxy
can import it without the store.
"""

from __future__ import annotations

from edgeward.errors import EdgewardError

DEFAULT_MAX_REQUESTS = 50  # captures kept per endpoint, as the ngrok agent's inspector
MAX_REQUESTS = 500
DEFAULT_MAX_BODY_BYTES = 64 * 1024  # of each body: the rest is cut, marked truncated
MAX_BODY_BYTES = 1024 * 1024
MAX_RING_BYTES = 32 * 1024 * 1024  # per endpoint: the oldest captures go first
STATIC_PREFIX = "cfg_"  # the API's ids of edge.yml's endpoints


def endpoint_names(endpoint_id: str) -> tuple[str, ...]:
    """The names (`edgeward.config.Endpoint.name`) the data plane may know
    the endpoint `endpoint_id` by: edge.yml's `cfg_<name>` is `<name>`; an
    `ep_...` id is a cloud endpoint's (`cloud:<id>`) or an agent's
    (`agent:<id>`), ids being unique across both."""
    if endpoint_id.startswith(STATIC_PREFIX):
        return (endpoint_id.removeprefix(STATIC_PREFIX),)
    return (f"cloud:{endpoint_id}", f"agent:{endpoint_id}")


class ReplayRefused(EdgewardError):
    """A capture that cannot be replayed (its body was cut, its endpoint
    has no listener, the edge's own request failed): the message says why."""


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_REQUESTS",
    "MAX_BODY_BYTES",
    "MAX_REQUESTS",
    "MAX_RING_BYTES",
    "STATIC_PREFIX",
    "ReplayRefused",
    "endpoint_names",
]

"""Endpoints made through the admin API (cloud-style): a URL and a traffic
policy, kept in the store, served by the listeners whose scheme (and port,
when the URL names one) the URL has. They have no upstream: the policy
answers (custom-response, redirect) or forwards (forward-internal to an
agent's internal endpoint); a request it lets through gets 502 from the
edge, as the unreachable upstream `unix:/dev/null`.

One reading of a URL for both the API (which refuses what the edge could
not serve) and the edge (which builds `edgeward.config.Endpoint`s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from edgeward.config import EdgeConfig, Endpoint, PolicySource, Upstream, is_internal
from edgeward.errors import EdgewardError
from edgeward.hooks import PolicyHooks
from edgeward.store.control_rows import CloudEndpointRow

NO_UPSTREAM = Upstream("unix:/dev/null", "unix", "/dev/null", 0)
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(\*\.)?({_LABEL}\.)*{_LABEL}$")


class UrlError(EdgewardError):
    """A URL this edge cannot serve (the message says why)."""


@dataclass(frozen=True, slots=True)
class CloudUrl:
    scheme: str  # http, https
    host: str  # lower case; "*.x" for a wildcard
    port: int | None  # None: every listener of the scheme

    def listeners(self, config: EdgeConfig) -> tuple[str, ...]:
        return tuple(
            ln.name
            for ln in config.listeners
            if ln.scheme == self.scheme and (self.port is None or ln.port == self.port)
        )


def parse_url(text: str, config: EdgeConfig) -> CloudUrl:
    """`text` as an endpoint URL this edge can serve: http or https, a host
    name (or `*.name`), an optional port, no path; at least one listener
    with that scheme (and port)."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlError("the scheme must be http or https (tcp and tls endpoints come from agents)")
    host = (parts.hostname or "").lower()
    if text.count("*") and not host.startswith("*."):
        host = ""
    if not host or not _HOST.match(host):
        raise UrlError(f"{text!r} has no valid host name")
    if is_internal(host):
        raise UrlError("internal (.internal) endpoints come from agents, not from the API")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise UrlError("a URL of an endpoint is scheme://host[:port], with no path or query")
    url = CloudUrl(parts.scheme, host, port)
    if not url.listeners(config):
        where = f"{parts.scheme} listener" + (f" on port {port}" if port else "")
        raise UrlError(f"this edge has no {where} to serve {text}")
    return url


def conflicts(
    url: CloudUrl, config: EdgeConfig, others: list[CloudEndpointRow], id: str | None
) -> str | None:
    """What already serves `url`'s host on one of its listeners: a static
    endpoint of edge.yml or another endpoint made through the API."""
    mine = set(url.listeners(config))
    for endpoint in config.endpoints:
        if endpoint.hostname == url.host and mine & set(endpoint.listeners):
            return f"the edge config's endpoint {endpoint.name!r}"
    for row in others:
        if row.id == id:
            continue
        try:
            other = parse_url(row.url, config)
        except UrlError:
            continue
        if other.host == url.host and mine & set(other.listeners(config)):
            return f"endpoint {row.id} ({row.url})"
    return None


def name(row: CloudEndpointRow) -> str:
    """The name of its `Endpoint` (routing, pools, events)."""
    return f"cloud:{row.id}"


def build(
    row: CloudEndpointRow,
    config: EdgeConfig,
    source: PolicySource | None,
    policy: PolicyHooks | None,
) -> Endpoint:
    """The `Endpoint` serving `row` with its compiled policy; `UrlError`
    when the config has no listener for it any more."""
    url = parse_url(row.url, config)
    return Endpoint(
        name=name(row),
        hostname=url.host,
        upstream=NO_UPSTREAM,
        listeners=url.listeners(config),
        metadata={"id": row.id},
        policy_source=source,
        policy=policy,
    )


__all__ = ["NO_UPSTREAM", "CloudUrl", "UrlError", "build", "conflicts", "name", "parse_url"]

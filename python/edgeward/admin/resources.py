"""How each resource looks in the API (JSON objects shaped like the public
ngrok API's), strong ETags of those shapes, and list pages.

Lists are newest first and paged by `limit` (1-100, default 100) and
`before_id` (the last id of the previous page); a page carries
`next_page_uri` (null on the last one), as the public API's lists do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from edgeward.admin.errors import invalid
from edgeward.agents.registry import AgentSession, Published
from edgeward.config import EdgeConfig, Endpoint
from edgeward.store import ApiKeyRow, AuthtokenRow

MAX_LIMIT = 100


def timestamp(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, float | int):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def ref(base: str, collection: str, id: str) -> dict[str, str]:
    return {"id": id, "uri": f"{base}/{collection}/{id}"}


def credential(base: str, row: AuthtokenRow, token: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "uri": f"{base}/credentials/{row.id}",
        "created_at": timestamp(row.created_at),
        "description": row.description,
        "metadata": row.metadata,
        "token": token,
        "acl": list(row.acl),
        "owner_id": row.owner_id,
        "revoked_at": timestamp(row.revoked_at),
    }


def api_key(base: str, row: ApiKeyRow, token: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "uri": f"{base}/api_keys/{row.id}",
        "created_at": timestamp(row.created_at),
        "description": row.description,
        "metadata": row.metadata,
        "token": token,
        "owner_id": row.owner_id,
        "role": row.role,
        "acl": list(row.acl),
    }


def tunnel_session(base: str, session: AgentSession[Any]) -> dict[str, Any]:
    extra = session.auth.extra
    return {
        "id": session.id,
        "uri": f"{base}/tunnel_sessions/{session.id}",
        "agent_version": extra.version,
        "credential": ref(base, "credentials", session.authtoken.id),
        "ip": session.client_addr.rpartition(":")[0],
        "metadata": extra.metadata,
        "os": extra.os,
        "region": "",
        "started_at": timestamp(session.started_at),
        "transport": "ngrok/2",
        "endpoints": [
            ref(base, "endpoints", b.published.name.removeprefix("agent:"))
            for b in session.bindings.values()
        ],
    }


def static_endpoint(base: str, config: EdgeConfig, endpoint: Endpoint) -> dict[str, Any]:
    id = "cfg_" + endpoint.name
    urls = []
    for listener in config.listeners:
        if listener.name in endpoint.listeners:
            scheme = "https" if listener.tls is not None else "http"
            default = 443 if scheme == "https" else 80
            port = "" if listener.port == default else f":{listener.port}"
            urls.append(f"{scheme}://{endpoint.hostname}{port}")
    if endpoint.internal:
        urls.append(f"https://{endpoint.hostname}")
    source = endpoint.policy_source
    return {
        "id": id,
        "uri": f"{base}/endpoints/{id}",
        "type": "static",
        "name": endpoint.name,
        "url": urls[0] if urls else None,
        "urls": urls,
        "proto": urls[0].partition(":")[0] if urls else None,
        "hostport": None,
        "bindings": ["internal"] if endpoint.internal else ["public"],
        "traffic_policy": json.dumps(source.document.data) if source is not None else "",
        "metadata": json.dumps(dict(endpoint.metadata)) if endpoint.metadata else "",
        "online": True,
        "pooling_enabled": False,
        "credential": None,
        "tunnel_sessions": [],
    }


def agent_endpoint(base: str, published: Published[Any]) -> dict[str, Any]:
    id = published.name.removeprefix("agent:")
    return {
        "id": id,
        "uri": f"{base}/endpoints/{id}",
        "type": "agent",
        "name": published.name,
        "url": published.url,
        "urls": [published.url],
        "proto": published.kind,
        "hostport": f"{published.host}:{published.port}" if published.port else None,
        "bindings": ["internal"] if published.internal else ["public"],
        "traffic_policy": published.policy_text or "",
        "metadata": "",
        "online": published.online,
        "pooling_enabled": published.pooling,
        "credential": ref(base, "credentials", published.authtoken_id),
        "tunnel_sessions": [ref(base, "tunnel_sessions", b.session.id) for b in published.members],
    }


def etag(resource: dict[str, Any]) -> str:
    """A strong ETag of what the API shows (never of a token; not of an
    endpoint's traffic inspector setting, which is not the endpoint's)."""
    shown = {k: v for k, v in resource.items() if k not in ("token", "inspect")}
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def page(
    base: str,
    collection: str,
    items: Sequence[dict[str, Any]],
    query: dict[str, str],
) -> dict[str, Any]:
    """One page of `items` (already newest first) as `{collection: [...],
    "uri", "next_page_uri"}`."""
    raw_limit = query.get("limit", str(MAX_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise invalid(f"limit must be a number from 1 to {MAX_LIMIT}, not {raw_limit!r}", "limit")
    limit = int(raw_limit)
    start = 0
    before = query.get("before_id")
    if before:
        ids = [item["id"] for item in items]
        if before not in ids:
            raise invalid(f"before_id {before!r} is not in this list", "before_id")
        start = ids.index(before) + 1
    chunk = list(items[start : start + limit])
    more = start + limit < len(items)
    next_uri = (
        f"{base}/{collection}?before_id={chunk[-1]['id']}&limit={limit}" if more and chunk else None
    )
    return {collection: chunk, "uri": f"{base}/{collection}", "next_page_uri": next_uri}


__all__ = [
    "MAX_LIMIT",
    "agent_endpoint",
    "api_key",
    "credential",
    "etag",
    "page",
    "static_endpoint",
    "timestamp",
    "tunnel_session",
]

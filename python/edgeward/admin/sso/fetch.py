"""Performs the `Fetch` effects of the OIDC login flow (discovery, the
token endpoint, the key set) with the standard library's urllib in a worker
thread: the admin API makes a few such requests per login, and the data
plane's fetcher belongs to the proxy, which the admin package never
imports. Redirects are not followed (as `Fetch` says); failures come back
as a `FetchResult`, never raised into the flow."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Generator
from typing import Any

from edgeward.hooks import Effect, EffectResult, Fetch, FetchResult

MAX_BYTES = 1024 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def perform(fetch: Fetch) -> FetchResult:
    """Blocking: one request, its answer (or why there is none)."""
    headers = dict(fetch.headers)
    headers.setdefault("user-agent", "edgeward")
    request = urllib.request.Request(
        fetch.url, data=fetch.body or None, method=fetch.method, headers=headers
    )
    limit = min(fetch.max_bytes or MAX_BYTES, MAX_BYTES)
    try:
        with _OPENER.open(request, timeout=fetch.timeout_s) as answer:
            body = answer.read(limit + 1)
            status = answer.status
            got = tuple((k.lower(), v) for k, v in answer.headers.items())
    except urllib.error.HTTPError as exc:
        body = exc.read(limit + 1)
        status = exc.code
        got = tuple((k.lower(), v) for k, v in exc.headers.items())
    except (OSError, ValueError) as exc:
        return FetchResult(0, error=f"{type(exc).__name__}: {exc}", failure="failed")
    if len(body) > limit:
        return FetchResult(0, error=f"more than {limit} bytes", failure="too_large")
    return FetchResult(status, got, body)


async def drive(op: Generator[Effect, EffectResult, Any]) -> Any:
    """Run a flow to its end, performing its fetches in worker threads."""
    from starlette.concurrency import run_in_threadpool

    result: Any = None
    while True:
        try:
            effect = op.send(result)
        except StopIteration as stop:
            return stop.value
        if not isinstance(effect, Fetch):
            raise TypeError(f"the login flow yielded {type(effect).__name__}")
        result = await run_in_threadpool(perform, effect)


__all__ = ["drive", "perform"]

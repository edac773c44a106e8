"""Building the shared `Runtime` from the edge config's `identity:` section,
the auth host's hooks, and the load-time discovery probe.

`Runtimes` keeps one runtime per auth host across reloads, so sessions in
the memory store survive a SIGHUP; the keys file is re-read at every load
(rotation is: add a key first in the file, reload).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Generator
from pathlib import Path
from typing import Protocol

from edgeward.errors import ConfigError, Location
from edgeward.hooks import (
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    ExchangeSummary,
    LocalResponse,
    PassResponse,
    RequestHead,
    ResponseHead,
)
from edgeward.identity.flow import Reply, Request, Runtime, auth_host
from edgeward.identity.oidc import Discovery, discovery_url
from edgeward.identity.seal import KeyFileError, load_keys
from edgeward.identity.store import CachedStore, MemoryStore, SessionStore, SqliteStore

log = logging.getLogger("edgeward.identity")
PROBE_TIMEOUT = 3.0


class IdentitySettings(Protocol):
    """The edge config's `identity:` section (`edgeward.config.IdentityConfig`)."""

    @property
    def auth_host(self) -> str: ...
    @property
    def keys_file(self) -> Path: ...
    @property
    def session_store(self) -> str: ...
    @property
    def allow_insecure_loopback_issuer(self) -> bool: ...
    @property
    def providers(self) -> tuple[tuple[str, str | None, str | None], ...]: ...
    @property
    def location(self) -> Location: ...


class Runtimes:
    """Runtimes by auth host, kept across config generations."""

    def __init__(self) -> None:
        self._by_host: dict[str, tuple[str, Runtime]] = {}

    def get(self, settings: IdentitySettings) -> Runtime:
        try:
            keyring = load_keys(settings.keys_file)
        except KeyFileError as exc:
            raise ConfigError(f"identity.keys_file: {exc}", settings.location) from None
        found = self._by_host.get(settings.auth_host)
        if found is not None and found[0] == settings.session_store:
            runtime = found[1]
            runtime.keyring = keyring
        else:
            store = open_store(settings.session_store, settings.location)
            runtime = Runtime(auth_host=settings.auth_host, keyring=keyring, store=store)
            self._by_host[settings.auth_host] = (settings.session_store, runtime)
        runtime.allow_insecure_loopback = settings.allow_insecure_loopback_issuer
        runtime.provider_bases = {name: (web, api) for name, web, api in settings.providers}
        return runtime


def open_store(spec: str, location: Location) -> SessionStore:
    """`memory`, `sqlite:<path>` or `redis://...`; the shared ones behind
    a short read cache of sessions (`CachedStore`)."""
    if spec == "memory":
        return MemoryStore()
    if spec.startswith("sqlite:"):
        try:
            return CachedStore(SqliteStore(spec.removeprefix("sqlite:")))
        except Exception as exc:  # sqlite3.Error, OSError
            raise ConfigError(f"identity.session_store: {exc}", location) from None
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from edgeward.identity.redis_store import RedisStore

        try:
            return CachedStore(RedisStore(spec))
        except Exception as exc:  # a URL coredis refuses
            raise ConfigError(f"identity.session_store: {exc}", location) from None
    raise ConfigError(
        f"identity.session_store: {spec!r}: use memory, sqlite:<file> or redis://host:port/db",
        location,
    )


def probe(discovery: Discovery) -> None:
    """Fetch a discovery document at load, blocking (a few seconds at
    most): a missing one is a warning now rather than a surprise at the
    first login; the runtime keeps retrying with backoff either way."""
    if discovery.metadata is not None or discovery.probed:
        return
    discovery.probed = True
    url = discovery_url(discovery.issuer)
    now = _now()
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            discovery.update(response.status, response.read(4 * 1024 * 1024), None, now)
    except urllib.error.HTTPError as exc:
        discovery.update(exc.code, b"", None, now)
    except (OSError, ValueError) as exc:
        discovery.update(0, b"", f"{type(exc).__name__}: {exc}", now)
    if discovery.metadata is None:
        # Logins answer 503 until it works; retried with backoff from the first request.
        discovery.next_attempt = 0.0
        log.warning(
            "identity: no OpenID discovery document for issuer %s (%s); logins will answer"
            " 503 ERR_EDGEWARD_2227 until it can be fetched",
            discovery.issuer,
            discovery.failure,
        )


def _now() -> float:
    import time

    return time.time()


# --- the auth host, through the hook seam -------------------------------------------


class AuthHostHooks:
    """The `PolicyHooks` of the auth host's built-in endpoint: every request
    is answered by the edge (`/oauth2/start`, `/oauth2/callback`, else 404)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_tcp_connect(self, conn: ConnectionInfo, endpoint: EndpointInfo | None = None) -> bool:
        return True

    def on_tls_connect(self, conn: ConnectionInfo, endpoint: EndpointInfo) -> bool:
        return True

    def begin(
        self, conn: ConnectionInfo, endpoint: EndpointInfo, head: RequestHead, request_id: str
    ) -> AuthHostExchange:
        return AuthHostExchange(self.runtime)


class AuthHostExchange:
    __slots__ = ("runtime",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_http_request(self, head: RequestHead) -> Generator[Effect, EffectResult, LocalResponse]:
        req = request_of(head)
        reply: Reply = yield from auth_host(self.runtime, req)
        if reply.status >= 400 and reply.reason:
            log.info("identity auth host: %s %s: %s", reply.status, req.path, reply.reason)
        return LocalResponse(reply.status, reply.headers, reply.body, reply.error_code)

    def on_http_response(self, head: ResponseHead) -> PassResponse:
        return PassResponse(head)

    def on_complete(self, summary: ExchangeSummary) -> None:
        pass


def request_of(head: RequestHead) -> Request:
    return Request(
        head.method.decode("latin-1"),
        head.target.decode("latin-1"),
        head.authority.decode("latin-1").lower(),
        head.scheme.decode("latin-1"),
        head.headers,
    )


__all__ = ["AuthHostHooks", "IdentitySettings", "Runtimes", "open_store", "probe", "request_of"]

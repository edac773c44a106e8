"""The admin API's listener inside `edgeward serve`: the Starlette app served
by hypercorn's trio worker on a socket bound at start (so an address in use
is a startup error, as for every listener), in the edge's own trio loop,
where the handlers read the agents' registry directly.

The API opens its own connection pool on the state store; credential
changes reach the data plane through the store's revision watcher, as the
CLI's do. It also runs the event bus (`edgeward.events.service`): audit
events, agent events and policy denies go to the event destinations."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Awaitable, Callable

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve

from edgeward.admin.app import AdminApi
from edgeward.admin.audit import Audit, static_destinations
from edgeward.admin.dataplane import DataPlane
from edgeward.config import ApiListener, EdgeConfig
from edgeward.events import spec
from edgeward.events.service import SPOOL, EventService
from edgeward.store import Store, statedir
from edgeward.store.trio_adapter import AsyncStore

log = logging.getLogger("edgeward.admin")


class _Config(Config):
    """hypercorn's config with our TLS context (SNI-chosen certificates, as
    the edge's listeners), not one built from certfile/keyfile."""

    context: ssl.SSLContext | None = None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self.context


class ApiService:
    """Built at start (a store or port problem is a one-line error), served
    by `serve` until `stop` returns."""

    def __init__(
        self,
        api: ApiListener,
        config: EdgeConfig,
        sock: socket.socket,
        ssl_context: ssl.SSLContext | None,
        dataplane: DataPlane,
    ) -> None:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        directory = statedir.resolve(config.state_dir)
        self.store = Store.open(directory, url=config.store_url)
        self.sock = sock
        self.address: tuple[str, int] = sock.getsockname()[:2]
        # the event bus: the process's (agents and policy denies publish to it too)
        static = static_destinations(api.audit_log) + spec.configured(api.events)
        self.events = EventService(self.store, directory / SPOOL, static)
        self.audit = Audit(self.events.bus)
        self.api = AdminApi(AsyncStore(self.store), dataplane, self.audit, api.sso)
        self.config = _Config()
        self.config.context = ssl_context
        server_log = logging.getLogger("edgeward.admin.server")  # hypercorn's own lines
        server_log.setLevel(logging.WARNING)  # not its "Running on ..." (serve logs the address)
        self.config.errorlog = server_log
        self.config.accesslog = None
        self.config.graceful_timeout = 1.0
        self.config.keep_alive_timeout = 30.0
        self.config.read_timeout = 30  # a client that stops sending is dropped
        self.scheme = "https" if ssl_context is not None else "http"

    async def serve(
        self,
        stop: Callable[[], Awaitable[None]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self.sock.listen(128)  # from here a client's connection waits in the backlog
        task_status.started()
        secure = [self.sock] if self.scheme == "https" else []
        insecure = [] if secure else [self.sock]
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.events.run)  # destinations follow the store
                await worker_serve(
                    ASGIWrapper(self.api.app),  # type: ignore[arg-type]  # ASGI types of two libraries
                    self.config,
                    sockets=Sockets(secure, insecure, []),
                    shutdown_trigger=stop,
                )
                nursery.cancel_scope.cancel()
        finally:
            self.close()

    def close(self) -> None:
        self.sock.close()
        self.events.close()
        self.store.close()


__all__ = ["ApiService"]

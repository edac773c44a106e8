"""The Redis session store (`session_store: redis://host:port/db`), for
several edges sharing sessions. Through coredis, which runs on trio via
anyio.

Each operation is one `edgeward.hooks.Await` effect: the proxy awaits the
command in its own loop, the flow stays sans-IO. coredis keeps its
connection pool inside an `async with` block, and the proxy has no
service task to hold one open, so each operation opens a connection, runs
one command and closes it (a loopback round trip is ~0.3 ms; a request
with a valid session makes one `GET`). All commands are single atomic
Redis commands: `SET NX PX` for `add`, `GETDEL` for `take`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from edgeward.hooks import Await
from edgeward.identity.store import Op, StoreError, Value


class RedisStore:
    name = "redis"

    def __init__(self, url: str, *, prefix: str = "edgeward:identity:") -> None:
        import coredis  # imported only when configured

        self.url = url
        self.prefix = prefix
        self._coredis = coredis
        # Parsed once, so a bad URL fails the load.
        self._client: Any = coredis.Redis.from_url(url, decode_responses=True)

    def _op(self, command: Callable[[Any], Awaitable[Any]]) -> Op[Any]:
        async def call() -> Any:
            client = self._coredis.Redis.from_url(self.url, decode_responses=True)
            async with client:
                return await command(client)

        result = yield Await(call)
        if isinstance(result, BaseException):
            raise StoreError(f"redis store: {type(result).__name__}: {result}")
        return result

    def get(self, key: str, now: float) -> Op[Value | None]:
        raw = yield from self._op(lambda c: c.get(self.prefix + key))
        return _value(raw)

    def put(self, key: str, value: Value, ttl: float, now: float) -> Op[None]:
        data = json.dumps(value)
        yield from self._op(lambda c: c.set(self.prefix + key, data, px=_ms(ttl)))

    def add(self, key: str, value: Value, ttl: float, now: float) -> Op[bool]:
        data = json.dumps(value)
        pure = self._coredis.PureToken.NX
        done = yield from self._op(
            lambda c: c.set(self.prefix + key, data, condition=pure, px=_ms(ttl))
        )
        return bool(done)

    def take(self, key: str, now: float) -> Op[Value | None]:
        raw = yield from self._op(lambda c: c.getdel(self.prefix + key))
        return _value(raw)

    def delete(self, key: str) -> Op[None]:
        yield from self._op(lambda c: c.delete([self.prefix + key]))

    def forget(self, key: str) -> None:
        pass


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def _value(raw: object) -> Value | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise StoreError("redis store: a value that is not JSON") from None
    if not isinstance(value, dict):
        raise StoreError("redis store: a value that is not an object")
    return value


__all__ = ["RedisStore"]

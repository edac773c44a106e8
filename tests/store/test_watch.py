"""The revision watcher under trio: a revocation made by another process
(the real CLI) reaches the published snapshot; nothing is republished
without a change; a store that fails for a while is retried."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from edgeward.authtokens import Acl, manage, snapshot
from edgeward.authtokens.snapshot import Snapshot
from edgeward.store import Store, StoreError
from edgeward.store.trio_adapter import AsyncStore

INTERVAL = 0.02
HANG_GUARD = 60  # seconds: only so that a broken watcher fails instead of hanging


class Published:
    """Collects what the watcher publishes; `until(pred)` waits for a match."""

    def __init__(self) -> None:
        self.values: list[Snapshot] = []
        self._changed = trio.Event()

    def __call__(self, value: Snapshot) -> None:
        self.values.append(value)
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, pred: Callable[[Snapshot], bool]) -> Snapshot:
        with trio.fail_after(HANG_GUARD):
            while not (self.values and pred(self.values[-1])):
                await self._changed.wait()
        return self.values[-1]


def run(tmp_path: Path, body: Callable[[Store, AsyncStore, Published], Awaitable[None]]) -> None:
    async def main() -> None:
        with Store.open(tmp_path / "state") as store:
            astore = AsyncStore(store)
            published = Published()
            await body(store, astore, published)

    trio.run(main)


def test_a_revocation_by_the_cli_reaches_the_snapshot(tmp_path: Path) -> None:
    async def body(store: Store, astore: AsyncStore, published: Published) -> None:
        alice = manage.create(store, acl=Acl.parse(["bind:alice.internal"]))
        async with trio.open_nursery() as nursery:
            first = await nursery.start(
                lambda task_status: astore.watch(
                    snapshot.load, published, interval=INTERVAL, task_status=task_status
                )
            )
            assert first.authenticate(alice.token.text) is not None
            command = [sys.executable, "-m", "edgeward.cli", "authtoken", "revoke"]
            command += [alice.row.id, "--state-dir", str(tmp_path / "state")]
            done = await trio.run_process(command, capture_stdout=True)
            assert done.returncode == 0
            after = await published.until(lambda s: s.authenticate(alice.token.text) is None)
            assert after.revision > first.revision
            bob = await astore.run(lambda s: manage.create(s, acl=Acl.parse(["*"])))
            await published.until(lambda s: s.authenticate(bob.token.text) is not None)
            nursery.cancel_scope.cancel()

    run(tmp_path, body)


def test_nothing_is_republished_without_a_change(tmp_path: Path) -> None:
    polls = 0

    class Counting(AsyncStore):
        async def revision(self) -> int:
            nonlocal polls
            polls += 1
            return await super().revision()

    async def body(store: Store, _astore: AsyncStore, published: Published) -> None:
        astore = Counting(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: astore.watch(
                    snapshot.load, published, interval=INTERVAL, task_status=task_status
                )
            )
            with trio.fail_after(HANG_GUARD):
                while polls < 10:
                    await trio.sleep(INTERVAL)
            assert published.values == []
            nursery.cancel_scope.cancel()

    run(tmp_path, body)


def test_a_failing_store_is_retried_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures = 3

    class Flaky(AsyncStore):
        async def revision(self) -> int:
            nonlocal failures
            value = await super().revision()
            if value > 0 and failures:
                failures -= 1
                raise StoreError("database error: disk I/O error", "test")
            return value

    async def body(store: Store, _astore: AsyncStore, published: Published) -> None:
        astore = Flaky(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: astore.watch(
                    snapshot.load, published, interval=INTERVAL, task_status=task_status
                )
            )
            created = await astore.run(lambda s: manage.create(s, acl=Acl.parse(["*"])))
            await published.until(lambda s: s.authenticate(created.token.text) is not None)
            nursery.cancel_scope.cancel()

    with caplog.at_level(logging.WARNING, logger="edgeward.store"):
        run(tmp_path, body)
    messages = [r.getMessage() for r in caplog.records]
    assert failures == 0
    assert sum("disk I/O error" in m for m in messages) == 1, messages
    assert any("readable again" in m for m in messages)


def test_the_first_build_fails_loudly(tmp_path: Path) -> None:
    def broken(_store: Store) -> Snapshot:
        raise StoreError("cannot read", "test")

    async def body(store: Store, astore: AsyncStore, published: Published) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: astore.watch(broken, published, task_status=task_status)
            )

    with pytest.raises(ExceptionGroup) as caught:  # from the nursery
        run(tmp_path, body)
    assert caught.group_contains(StoreError, match="cannot read")

"""`Transport` on real socket pairs, with the edge-triggered reactor and with
trio's own waits (the fallback where there is no epoll): parking, waking,
closing and cancelling a parked task, and sends that must wait for room."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from edgeward.proxy import transport as tr
from edgeward.proxy.transport import Transport


@pytest.fixture(params=["reactor", "trio"])
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[], Awaitable[None]]], None]:
    """Runs a test body in a fresh trio run, with or without the reactor."""

    def runner(body: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            if request.param == "trio":
                tr._REACTOR.set(None)
            with trio.fail_after(10):  # a task nobody wakes fails, not hangs
                await body()
            assert (tr._reactor() is not None) == (request.param == "reactor")

        trio.run(main)

    return runner


def _pair() -> tuple[Transport, socket.socket]:
    a, b = socket.socketpair()
    return Transport(a), b


async def _error_of(call: Callable[[], Awaitable[object]], errors: list[BaseException]) -> None:
    try:
        await call()
    except Exception as exc:
        errors.append(exc)


def test_recv_parks_until_data_arrives(run: Callable[..., None]) -> None:
    async def body() -> None:
        ours, peer = _pair()
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                got.append(await ours.recv())
                got.append(await ours.recv())

            nursery.start_soon(reader)
            await trio.sleep(0.05)
            assert got == []
            peer.send(b"one")
            await trio.sleep(0.05)
            assert got == [b"one"]
            peer.close()
        assert got == [b"one", b""]
        ours.close()

    run(body)


def test_many_sockets_wake_their_own_tasks(run: Callable[..., None]) -> None:
    async def body() -> None:
        pairs = [_pair() for _ in range(20)]
        got: dict[int, bytes] = {}
        async with trio.open_nursery() as nursery:
            for i, (ours, _) in enumerate(pairs):

                async def reader(i: int = i, ours: Transport = ours) -> None:
                    got[i] = await ours.recv()

                nursery.start_soon(reader)
            await trio.sleep(0.02)
            for i, (_, peer) in reversed(list(enumerate(pairs))):
                peer.send(b"%d" % i)
        assert got == {i: b"%d" % i for i in range(20)}
        for ours, peer in pairs:
            ours.close()
            peer.close()

    run(body)


def test_closing_wakes_a_parked_reader(run: Callable[..., None]) -> None:
    async def body() -> None:
        ours, peer = _pair()
        errors: list[BaseException] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_error_of, ours.recv, errors)
            await trio.sleep(0.05)
            ours.close()  # what the watchdog does to a late upstream
        assert [type(e) for e in errors] == [ConnectionAbortedError]
        peer.close()

    run(body)


def test_a_cancelled_wait_can_be_waited_again(run: Callable[..., None]) -> None:
    async def body() -> None:
        ours, peer = _pair()
        with trio.move_on_after(0.05) as scope:
            await ours.recv()
        assert scope.cancelled_caught
        peer.send(b"later")
        with trio.fail_after(5):
            assert await ours.recv() == b"later"
        ours.close()
        peer.close()

    run(body)


def test_two_readers_of_one_socket_are_refused(run: Callable[..., None]) -> None:
    async def body() -> None:
        ours, peer = _pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ours.recv)
            await trio.sleep(0.02)
            with pytest.raises(trio.BusyResourceError):
                await ours.recv()
            peer.send(b"for the first reader")
        ours.close()
        peer.close()

    run(body)


def test_a_send_larger_than_the_buffers_waits_for_the_reader(run: Callable[..., None]) -> None:
    async def body() -> None:
        ours, peer = _pair()
        peer.setblocking(False)
        payload = bytes(range(256)) * 40_000  # ~10 MB: far beyond the socket buffers
        received = bytearray()
        async with trio.open_nursery() as nursery:

            async def drain() -> None:
                while len(received) < len(payload):
                    await trio.lowlevel.wait_readable(peer)
                    received.extend(peer.recv(1 << 20))

            nursery.start_soon(drain)
            await ours.send(payload)
        assert received == payload
        ours.close()
        peer.close()

    run(body)


def test_reset_of_a_blocked_sender_ends_its_send(run: Callable[..., None]) -> None:
    """A peer that reads nothing: the send timeout resets the socket, which
    wakes the parked sender with an error instead of leaving it blocked."""

    async def body() -> None:
        ours, peer = _pair()
        errors: list[BaseException] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_error_of, lambda: ours.send(b"x" * 10_000_000), errors)
            await trio.sleep(0.05)
            ours.reset()
        assert [type(e) for e in errors] == [ConnectionAbortedError]
        peer.close()

    run(body)


class _CountingSocket(socket.socket):
    """A real socket that counts its reads: the system calls `recv_reply`
    saves (a read that finds nothing costs one and a raised exception)."""

    reads = 0

    def recv(self, size: int, flags: int = 0) -> bytes:
        self.reads += 1
        return super().recv(size, flags)


async def _emptied_pair() -> tuple[Transport, _CountingSocket, socket.socket]:
    """A transport registered with the reactor whose last read emptied it."""
    a, peer = socket.socketpair()
    sock = _CountingSocket(a.family, a.type, fileno=a.detach())
    ours = Transport(sock)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ours.recv)  # nothing there: it parks (and registers)
        await trio.testing.wait_all_tasks_blocked()
        peer.send(b"request")
    assert sock.reads == 2
    return ours, sock, peer


def test_a_reply_after_a_read_that_emptied_the_socket_parks_without_a_failed_read() -> None:
    async def main() -> None:
        with trio.fail_after(10):  # a reply nobody wakes fails, not hangs
            await body()

    async def body() -> None:
        ours, sock, peer = await _emptied_pair()
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _append(got, ours.recv_reply()))
            await trio.testing.wait_all_tasks_blocked()
            assert sock.reads == 2  # parked at once: no read that finds nothing
            peer.send(b"answer")
        assert got == [b"answer"]
        assert sock.reads == 3
        assert ours.quiet() and sock.reads == 4  # a pooled connection's probe empties it too
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _append(got, ours.recv_reply()))
            await trio.testing.wait_all_tasks_blocked()
            assert sock.reads == 4
            peer.send(b"second")
        assert got == [b"answer", b"second"]
        ours.close()
        peer.close()

    trio.run(main)


def test_a_reply_that_is_already_there_is_read() -> None:
    async def main() -> None:
        with trio.fail_after(10):  # a reply nobody wakes fails, not hangs
            ours, sock, peer = await _emptied_pair()
            peer.send(b"early")  # its edge reaches the reactor before the read
            await trio.testing.wait_all_tasks_blocked()
            assert await ours.recv_reply() == b"early"
            assert sock.reads == 3
            peer.send(b"late")  # its edge is still in the kernel: it wakes the parked read
            assert await ours.recv_reply() == b"late"
            peer.shutdown(socket.SHUT_WR)  # and so does the end of the stream
            assert await ours.recv_reply() == b""
            assert await ours.recv_reply() == b""  # EOF stays EOF
        ours.close()
        peer.close()

    trio.run(main)


async def _append(got: list[bytes], reply: Awaitable[bytes]) -> None:
    got.append(await reply)

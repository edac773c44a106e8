"""Bytes in and out of one non-blocking socket (TCP, unix, or TLS), on trio.

Why not `trio.SocketStream`/`trio.SSLStream`: they reschedule the task after
every successful operation and run TLS through Python-level memory BIOs.
Here a send that fits into the kernel buffer and a recv whose data is
already there cost one system call and no trip through the scheduler; a
task only parks when the socket is not ready. Fairness is kept by a
checkpoint every few operations that did not park, so cancellation and other
tasks are never starved.

Why not `trio.lowlevel.wait_readable` for the parking either: trio registers
a socket one-shot and re-arms it (an `epoll_ctl` call) and allocates its
waiter bookkeeping on every wait; for a proxy that waits twice per request
that is most of trio's cost. On Linux the sockets of this module are
registered once, edge-triggered, in an epoll set of our own (`_Reactor`),
and one trio system task sleeps on that set and wakes the tasks whose
sockets became ready (`trio.lowlevel.reschedule`). Edge-triggered means a
task may only park once its system call said "not ready"; every method here
tries the call first. Without epoll, trio's own waits are used.

A read that returned less than it asked for, or found nothing, emptied the
socket: whatever arrives later brings a new edge. `recv_reply`, the read of
an answer to what was just sent (the upstream's response to our request, a
keep-alive client's next request after our response), therefore parks at
once unless such an edge came meanwhile, instead of first making the read
that would fail: a system call and a raised `BlockingIOError`, about 3 µs
here. Plain `recv` always tries first: a peer that streams (a body, an
HTTP/2 client with requests in flight) has usually sent more by then. Not
over TLS: a record is read at a time, so a short read says nothing about
what is left.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import struct
from typing import TYPE_CHECKING, Protocol

import trio
from trio.lowlevel import Abort, RunVar, Task, current_task, reschedule, wait_task_rescheduled

from edgeward.proxy.watchdog import Timer

if TYPE_CHECKING:
    from collections.abc import Callable

RECV_SIZE = 256 * 1024
_FAIR_EVERY = 16


class Meter(Protocol):
    """Where a transport counts its bytes (`edgeward.hooks.ConnectionInfo`
    for a client connection: `conn.bytes_in`/`bytes_out`)."""

    bytes_in: int
    bytes_out: int


class _Count:
    __slots__ = ("bytes_in", "bytes_out")

    def __init__(self) -> None:
        self.bytes_in = self.bytes_out = 0


class Transport:
    """One connected socket. `recv()` returns b"" at EOF; errors are `OSError`
    (`ConnectionAbortedError` when the socket is closed under a waiting task).
    The bytes received and sent are added to `meter` as they go."""

    __slots__ = (
        "_drained",
        "_fd",
        "_plain",
        "_reactor",
        "_ready_ops",
        "closed",
        "meter",
        "send_timeout",
        "sock",
    )

    def __init__(self, sock: socket.socket, meter: Meter | None = None) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.meter: Meter = meter if meter is not None else _Count()
        self.closed = False
        self._ready_ops = 0
        self._reactor: _Reactor | None = None  # registered with at the first wait
        self._fd = -1
        self._plain = not isinstance(sock, ssl.SSLSocket)
        self._drained = False  # the last read emptied it (only once registered)
        self.send_timeout: tuple[Timer, float] | None = None
        """When set, a send that stays blocked this long closes the socket
        (a peer that stopped reading). Armed only once a send has to wait."""

    async def recv(self, size: int = RECV_SIZE) -> bytes:
        sock = self.sock
        while True:
            try:
                data = sock.recv(size)
            except (BlockingIOError, ssl.SSLWantReadError):
                await self._wait(False)
                continue
            except ssl.SSLWantWriteError:
                await self._wait(True)
                continue
            except ssl.SSLZeroReturnError:
                return b""
            received = len(data)
            if 0 < received < size and self._plain and self._reactor is not None:
                self._emptied()
            else:
                self._drained = False
            self.meter.bytes_in += received
            self._ready_ops += 1
            if self._ready_ops >= _FAIR_EVERY:
                self._ready_ops = 0
                await trio.lowlevel.checkpoint()
            return data

    async def recv_reply(self, size: int = RECV_SIZE) -> bytes:
        """`recv` of the answer to what was just sent: when the last read
        emptied the socket and nothing came since, it cannot be here yet."""
        if self._drained and self._fd not in self._reactor.edges:  # type: ignore[union-attr]
            await self._wait(False)
        return await self.recv(size)

    def quiet(self) -> bool:
        """Whether nothing waits to be read and the peer has not closed: an
        idle pooled connection's check before reuse (one non-blocking read;
        EOF, an error or any byte say no). On TLS the read also processes
        records that carry no data (TLS 1.3 session tickets) and then says
        "want read"."""
        try:
            self.sock.recv(1)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            if self._plain and self._reactor is not None:
                self._emptied()
            return True
        except OSError:  # ssl.SSLError too
            return False
        return False

    def _emptied(self) -> None:
        """A read found the socket empty: edges from before are stale."""
        self._drained = True
        self._reactor.edges.discard(self._fd)  # type: ignore[union-attr]

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        sock = self.sock
        try:
            sent = sock.send(data)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            sent = 0
        self.meter.bytes_out += sent
        if sent == len(data):
            self._ready_ops += 1
            if self._ready_ops >= _FAIR_EVERY:
                self._ready_ops = 0
                await trio.lowlevel.checkpoint()
            return
        await self._send_rest(memoryview(data)[sent:])

    async def _send_rest(self, view: memoryview) -> None:
        """The slow path of `send`: wait for room, under the send timeout."""
        sock = self.sock
        timeout = self.send_timeout
        if timeout is not None:
            timeout[0].arm(timeout[1], self.reset)
        try:
            while view:
                try:
                    sent = sock.send(view)
                    self.meter.bytes_out += sent
                    view = view[sent:]
                except (BlockingIOError, ssl.SSLWantWriteError):
                    await self._wait(True)
                except ssl.SSLWantReadError:
                    await self._wait(False)
        finally:
            if timeout is not None:
                timeout[0].disarm()

    async def _wait(self, writable: bool) -> None:
        """Park until the socket is ready (after it said it is not, or a
        read emptied it)."""
        self._ready_ops = 0
        if self.closed:
            raise ConnectionAbortedError("closed locally")
        reactor = self._reactor
        if reactor is None:
            reactor = self._reactor = _reactor()
            if reactor is not None:
                self._fd = self.sock.fileno()
                reactor.register(self._fd)
        if reactor is None:
            try:
                if writable:
                    await trio.lowlevel.wait_writable(self.sock)
                else:
                    await trio.lowlevel.wait_readable(self.sock)
            except trio.ClosedResourceError:
                raise ConnectionAbortedError("closed locally") from None
            return
        await reactor.wait(self._fd, writable)
        if self.closed:
            raise ConnectionAbortedError("closed locally")

    def shutdown_write(self) -> None:
        """Half-close: the peer reads EOF, we can still read (WebSocket/upgrade)."""
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                return  # TLS has no half-close we can rely on
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._reactor is not None:
                self._reactor.closing(self._fd)
            with contextlib.suppress(Exception):  # never waited on / outside trio
                trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    def reset(self) -> None:
        """Abortive close (RST): what the kernel still holds for the peer is
        dropped, so a peer that stopped reading stops costing memory."""
        if not self.closed:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close()

    @property
    def tls(self) -> ssl.SSLSocket | None:
        return self.sock if isinstance(self.sock, ssl.SSLSocket) else None


class TransportStream:
    """A `Transport` as the byte stream a tunnel session runs on
    (`receive_some`, `send_all`, `aclose`: `tunnel.trio_session.Connection`).

    Over TLS one read returns at most one record (16 KiB), so a bulk
    transfer would cost the session a wake-up per record: `receive_some`
    also takes every record that is already waiting (without parking), up
    to `BATCH` bytes, and the session handles the burst in one call."""

    BATCH = 1024 * 1024

    __slots__ = ("_eof", "transport")

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._eof = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._eof:
            return b""
        data = await self.transport.recv(RECV_SIZE)
        sock = self.transport.sock
        if not data or not isinstance(sock, ssl.SSLSocket):
            return data
        parts = [data]
        size = len(data)
        while size < self.BATCH:
            try:
                more = sock.recv(RECV_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break  # drained: the next recv parks (the reactor's edge is still due)
            except ssl.SSLZeroReturnError:
                more = b""
            except OSError:
                break  # the next recv raises it
            if not more:
                self._eof = True
                break
            parts.append(more)
            size += len(more)
        return b"".join(parts) if len(parts) > 1 else data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport.send(data)

    async def aclose(self) -> None:
        self.transport.close()


# --- readiness ----------------------------------------------------------------------

_WAKES_READER = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_WAKES_WRITER = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_MAX_EVENTS = 1024


class _Reactor:
    """Edge-triggered readiness for the sockets of one trio run.

    A socket is registered once for both directions. A task parks with
    `wait` after its system call failed with EAGAIN (or a read emptied the
    socket); the next readiness edge of that direction reschedules it. A
    read edge without a parked task is kept in `edges`, for
    `Transport.recv_reply` (something came since the read that emptied the
    socket); a write edge without one is dropped. A stale edge at most wakes
    a task early: it retries and parks again."""

    __slots__ = ("_epoll", "_readers", "_writers", "edges")

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._readers: dict[int, Task] = {}
        self._writers: dict[int, Task] = {}
        self.edges: set[int] = set()

    def register(self, fd: int) -> None:
        flags = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
        try:
            self._epoll.register(fd, flags)
        except FileExistsError:  # a closed socket's number, reused
            self._epoll.modify(fd, flags)

    async def wait(self, fd: int, writable: bool) -> None:
        waiters = self._writers if writable else self._readers
        if fd in waiters:
            raise trio.BusyResourceError("another task is already waiting on this socket")
        waiters[fd] = current_task()

        def abort(_: Callable[[], BaseException]) -> Abort:
            del waiters[fd]
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def closing(self, fd: int) -> None:
        """The socket is about to close: wake whoever waits on it (they see
        `Transport.closed`). The kernel drops the registration on close."""
        self.edges.discard(fd)  # the number may be reused
        for waiters in (self._readers, self._writers):
            task = waiters.pop(fd, None)
            if task is not None:
                reschedule(task)

    async def run(self) -> None:
        epoll = self._epoll
        readers = self._readers
        writers = self._writers
        edges = self.edges
        try:
            while True:
                await trio.lowlevel.wait_readable(epoll.fileno())
                while True:
                    events = epoll.poll(0, _MAX_EVENTS)
                    for fd, flags in events:
                        if flags & _WAKES_READER:
                            if fd in readers:
                                reschedule(readers.pop(fd))
                            else:
                                edges.add(fd)
                        if flags & _WAKES_WRITER and fd in writers:
                            reschedule(writers.pop(fd))
                    if len(events) < _MAX_EVENTS:
                        break
        finally:
            epoll.close()


_REACTOR: RunVar[_Reactor | None] = RunVar("edgeward_reactor")


def _reactor() -> _Reactor | None:
    """This trio run's reactor (started on first use), or None without epoll."""
    try:
        return _REACTOR.get()
    except LookupError:
        reactor = _Reactor() if hasattr(select, "epoll") else None
        if reactor is not None:
            trio.lowlevel.spawn_system_task(reactor.run, name="edgeward reactor")
        _REACTOR.set(reactor)
        return reactor


async def _wait_readable(sock: socket.socket) -> None:
    try:
        await trio.lowlevel.wait_readable(sock)
    except trio.ClosedResourceError:
        raise ConnectionAbortedError("closed locally") from None


async def _wait_writable(sock: socket.socket) -> None:
    try:
        await trio.lowlevel.wait_writable(sock)
    except trio.ClosedResourceError:
        raise ConnectionAbortedError("closed locally") from None


async def tls_handshake(sock: ssl.SSLSocket) -> None:
    """Drive a non-blocking TLS handshake to completion."""
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            await _wait_readable(sock)
        except ssl.SSLWantWriteError:
            await _wait_writable(sock)


def tune(sock: socket.socket) -> None:
    """TCP_NODELAY: without it Nagle + delayed ACK stall keep-alive by ~40 ms."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def connect(family: int, address: object, timeout: float) -> socket.socket:
    """A non-blocking connect bounded by `timeout` (raises `trio.TooSlowError`)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        tune(sock)
        with trio.fail_after(timeout):
            try:
                sock.connect(address)  # type: ignore[arg-type]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, f"connect to {address}: {os.strerror(err)}") from None
    except BaseException:
        sock.close()
        raise
    return sock

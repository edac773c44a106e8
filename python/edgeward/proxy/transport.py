"""Bytes in and out of one non-blocking socket (TCP, unix, or TLS), on trio.

Why not `trio.SocketStream`/`trio.SSLStream`: they reschedule the task after
every successful operation and run TLS through Python-level memory BIOs.
Here a send that fits into the kernel buffer and a recv whose data is
already there cost one system call and no trip through the scheduler; a
task only parks when the socket is not ready. Fairness is kept by a
checkpoint every few operations that did not park, so cancellation and other
tasks are never starved.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl

import trio

RECV_SIZE = 256 * 1024
_FAIR_EVERY = 16


class Transport:
    """One connected socket. `recv()` returns b"" at EOF; errors are `OSError`."""

    __slots__ = ("_ready_ops", "closed", "sock")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.closed = False
        self._ready_ops = 0

    async def _fair(self) -> None:
        self._ready_ops += 1
        if self._ready_ops >= _FAIR_EVERY:
            self._ready_ops = 0
            await trio.lowlevel.checkpoint()

    async def recv(self, size: int = RECV_SIZE) -> bytes:
        sock = self.sock
        try:
            data = sock.recv(size)
        except (BlockingIOError, ssl.SSLWantReadError):
            pass
        except ssl.SSLWantWriteError:
            await _wait_writable(sock)
            return await self.recv(size)
        except ssl.SSLZeroReturnError:
            return b""
        else:
            await self._fair()
            return data
        return await self.recv_when_ready(size)

    async def recv_when_ready(self, size: int = RECV_SIZE) -> bytes:
        """Park until the socket is readable, then recv. For when we know
        nothing can be there yet (we just sent a request), saving a syscall."""
        sock = self.sock
        self._ready_ops = 0
        while True:
            await _wait_readable(sock)
            try:
                return sock.recv(size)
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
            except ssl.SSLWantWriteError:
                await _wait_writable(sock)
            except ssl.SSLZeroReturnError:
                return b""

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        sock = self.sock
        view = memoryview(data)
        parked = False
        while view:
            try:
                sent = sock.send(view)
            except (BlockingIOError, ssl.SSLWantWriteError):
                parked = True
                self._ready_ops = 0
                await _wait_writable(sock)
                continue
            except ssl.SSLWantReadError:
                parked = True
                await _wait_readable(sock)
                continue
            view = view[sent:]
        if not parked:
            await self._fair()

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
            with contextlib.suppress(Exception):  # never waited on / outside trio
                trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    @property
    def tls(self) -> ssl.SSLSocket | None:
        return self.sock if isinstance(self.sock, ssl.SSLSocket) else None


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

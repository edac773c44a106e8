"""The `syslog` destination: RFC 5424 messages over TCP with octet-counting
framing (RFC 6587 §3.4.1), or over TLS (RFC 5425, the same framing),
verifying the server's certificate against a configured CA.

    <PRI>1 2026-12-07T03:01:02.345Z host edgeward 4242 credential_created.v0
      [edgeward@32473 event_id="ev_..."] {"event_id": ...}

MSGID is the event type, the structured data carries the event id (a
receiver can drop a repeat), MSG is the event as JSON. 32473 is the
enterprise number RFC 5612 reserves for examples.

Syslog over TCP has no acknowledgements: a batch written into a connection
the receiver has just closed can be lost. The sender checks the connection
for an EOF from the receiver before each batch and reconnects, so a
receiver that went away and came back loses nothing it closed cleanly.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

from edgeward.events.errors import DeliveryError
from edgeward.events.spec import FACILITIES
from edgeward.linefile import json_line

CONNECT_TIMEOUT = 5.0
SEND_TIMEOUT = 10.0
NOTICE, INFO = 5, 6


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(value: str, size: int) -> str:
    """A header field: printable ASCII without spaces, at most `size`, or NILVALUE."""
    cleaned = "".join(c for c in value if "!" <= c <= "~")[:size]
    return cleaned or "-"


def severity(event_type: str) -> int:
    return NOTICE if ("refused" in event_type or "denied" in event_type) else INFO


def message(
    event: Mapping[str, Any], *, facility: int, hostname: str, app_name: str, procid: str
) -> bytes:
    """One RFC 5424 message (without its framing)."""
    kind = str(event.get("event_type") or event.get("metadata", {}).get("event_code") or "")
    pri = facility * 8 + severity(kind)
    stamp = str(event.get("event_timestamp") or "-")
    event_id = str(event.get("event_id") or event.get("metadata", {}).get("uid") or "")
    sd = f'[edgeward@32473 event_id="{_sd_value(event_id)}"]' if event_id else "-"
    header = (
        f"<{pri}>1 {_token(stamp, 64)} {_token(hostname, 255)} {_token(app_name, 48)}"
        f" {_token(procid, 128)} {_token(kind, 32)} {sd} "
    )
    return header.encode("ascii") + json_line(event).encode("utf-8", "backslashreplace")


def frame(msg: bytes) -> bytes:
    return str(len(msg)).encode("ascii") + b" " + msg


class SyslogDestination:
    def __init__(self, options: Mapping[str, Any]) -> None:
        host, _, port = options["address"].rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.facility = FACILITIES[options.get("facility", "audit")]
        self.app_name: str = options.get("app_name", "edgeward")
        self.hostname = socket.gethostname()
        self.procid = str(os.getpid())
        tls = options.get("tls")
        self.context: ssl.SSLContext | None = None
        self.server_name: str | None = None
        if tls is not None:
            self.context = ssl.create_default_context(cafile=tls.get("ca"))
            self.server_name = tls.get("server_name") or self.host
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.server_name)
            sock.settimeout(SEND_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        return sock

    def _alive(self, sock: socket.socket) -> bool:
        """False when the receiver closed (or reset) the connection: it never
        sends anything else on a syslog connection."""
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return True
        try:
            if isinstance(sock, ssl.SSLSocket):
                sock.setblocking(False)
                try:
                    return bool(sock.recv(1))
                except ssl.SSLWantReadError:
                    return True
                finally:
                    sock.setblocking(True)
                    sock.settimeout(SEND_TIMEOUT)
            return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except (BlockingIOError, InterruptedError):
            return True
        except (OSError, ssl.SSLError):
            return False

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        data = b"".join(
            frame(
                message(
                    e,
                    facility=self.facility,
                    hostname=self.hostname,
                    app_name=self.app_name,
                    procid=self.procid,
                )
            )
            for e in events
        )
        try:
            if self._sock is not None and not self._alive(self._sock):
                self.close()
            if self._sock is None:
                self._sock = self._connect()
            self._sock.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise DeliveryError(f"syslog {self.host}:{self.port}: {exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError, ValueError):
                if isinstance(self._sock, ssl.SSLSocket):  # close_notify, as TLS wants
                    self._sock.settimeout(1.0)
                    self._sock.unwrap()
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None


__all__ = ["SyslogDestination", "frame", "message"]

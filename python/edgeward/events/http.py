"""The `http` destination: a batch of events per POST, as a Splunk HTTP
Event Collector wants it (`shape: hec`: one `{"time", "host", "source",
"sourcetype", "event"}` object per event, concatenated, `Authorization:
Splunk <token>`) or as a generic JSON array (`shape: json`, `Authorization:
Bearer <token>` when a token is set).

Any answer but 2xx, and any connection error, fails the batch: it stays in
the spool and is sent again after a backoff, so a refusing receiver (a
wrong token) is seen in the log and loses nothing. Standard library only
(`http.client`, one kept-alive connection per destination).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from edgeward.events.errors import DeliveryError
from edgeward.linefile import json_line

TIMEOUT = 10.0


def hec_body(events: Sequence[Mapping[str, Any]], host: str, times: Sequence[float]) -> bytes:
    return "".join(
        json_line(
            {"time": t, "host": host, "source": "edgeward", "sourcetype": "_json", "event": e}
        )
        + "\n"
        for e, t in zip(events, times, strict=True)
    ).encode("utf-8", "backslashreplace")


class HttpDestination:
    def __init__(self, options: Mapping[str, Any]) -> None:
        url = urllib.parse.urlsplit(options["url"])
        self.url = options["url"]
        self.https = url.scheme == "https"
        self.host = url.hostname or ""
        self.port = url.port or (443 if self.https else 80)
        self.path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self.shape: str = options.get("shape", "json")
        self.token: str | None = options.get("token")
        self.context: ssl.SSLContext | None = (
            ssl.create_default_context(cafile=options.get("ca")) if self.https else None
        )
        self.hostname = socket.gethostname()
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=TIMEOUT, context=self.context
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        return self._conn

    def body(self, events: Sequence[Mapping[str, Any]]) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json", "User-Agent": "edgeward-events"}
        if self.shape == "hec":
            times = [_epoch(e) for e in events]
            if self.token:
                headers["Authorization"] = f"Splunk {self.token}"
            return hec_body(events, self.hostname, times), headers
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return json.dumps(list(events), ensure_ascii=False, default=str).encode(), headers

    def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        data, headers = self.body(events)
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more, fresh
            conn = self._connection()
            try:
                conn.request("POST", self.path, body=data, headers=headers)
                response = conn.getresponse()
                answer = response.read(4096)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 1 and isinstance(
                    exc, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
                ):
                    continue
                raise DeliveryError(f"POST {self.url}: {exc}") from None
            if response.will_close:
                self.close()
            if 200 <= response.status < 300:
                return
            text = answer.decode("utf-8", "replace")[:200]
            raise DeliveryError(f"POST {self.url}: {response.status} {response.reason}: {text}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


def _epoch(event: Mapping[str, Any]) -> float:
    """The event's time as Unix seconds (HEC's `time`)."""
    from datetime import datetime

    stamp = event.get("event_timestamp")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    t = event.get("time")
    return float(t) / 1000 if isinstance(t, int | float) else 0.0


__all__ = ["HttpDestination", "hec_body"]

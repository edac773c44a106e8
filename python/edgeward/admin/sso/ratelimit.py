"""Login attempts per client IP: at most N in any window of W seconds
(a sliding log, sans-IO: the caller passes the time). Failed and started
logins both count, so a password or TOTP guesser and a flood of IdP
redirects are both slowed."""

from __future__ import annotations

from collections import deque


class LoginLimiter:
    def __init__(self, attempts: int, window: float, *, max_clients: int = 10_000) -> None:
        self.attempts = attempts
        self.window = window
        self.max_clients = max_clients
        self._log: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float) -> bool:
        """Count an attempt by `client`; False when over the limit."""
        log = self._log.get(client)
        if log is None:
            if len(self._log) >= self.max_clients:
                self._prune(now)
            log = self._log[client] = deque()
        while log and log[0] <= now - self.window:
            log.popleft()
        if len(log) >= self.attempts:
            return False
        log.append(now)
        return True

    def retry_after(self, client: str, now: float) -> int:
        log = self._log.get(client)
        if not log:
            return 0
        return max(1, int(log[0] + self.window - now) + 1)

    def _prune(self, now: float) -> None:
        for client in [
            c for c, log in self._log.items() if not log or log[-1] <= now - self.window
        ]:
            del self._log[client]
        if len(self._log) >= self.max_clients:  # still full: forget the oldest
            del self._log[next(iter(self._log))]


__all__ = ["LoginLimiter"]

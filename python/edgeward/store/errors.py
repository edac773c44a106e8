"""The store's one error type."""

from __future__ import annotations

from edgeward.errors import EdgewardError


class StoreError(EdgewardError):
    """The store cannot be opened, read or written. `where` names the
    database (URL without password) or file concerned."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(f"{where}: {message}")
        self.message = message
        self.where = where


__all__ = ["StoreError"]

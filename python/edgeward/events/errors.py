"""The events package's errors: a located problem in a destination or a
subscription (the admin API answers it as a 400 naming `field`), and a
delivery that failed (the sender keeps the batch and retries)."""

from __future__ import annotations

from edgeward.errors import EdgewardError


class SpecError(EdgewardError):
    """An invalid destination or subscription. `field` is the dotted path
    of the value (`target.syslog.address`); `line`/`column` locate a CEL
    error inside `filter`."""

    def __init__(
        self, field: str, message: str, *, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.line = line
        self.column = column


class DeliveryError(EdgewardError):
    """The receiver did not take a batch (refused, unreachable, an error
    status): the batch stays in the spool and is sent again."""


__all__ = ["DeliveryError", "SpecError"]

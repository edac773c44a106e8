"""The exception root of edgeward. Each subclass carries the data a caller
acts on (a location in a file, an HTTP status), never just a string."""

from __future__ import annotations

from dataclasses import dataclass


class EdgewardError(Exception):
    """Root of every error edgeward raises on purpose."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a configuration or policy file something is."""

    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: str | None = None  # dotted key path, e.g. "on_http_request[2].actions[0].config.allow"

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}" if self.path else where


class ConfigError(EdgewardError):
    """The edge configuration is invalid."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.message = message
        self.location = location

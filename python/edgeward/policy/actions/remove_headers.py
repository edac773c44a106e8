"""`remove-headers`: remove headers from the request before it is forwarded
or from the response before the client gets it."""

from __future__ import annotations

from typing import Self

from edgeward.policy.actions._http import FRAMING_HEADERS
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)
from edgeward.policy.config import InvalidConfig


class RemoveHeaders(Action):
    type = "remove-headers"
    phases = frozenset({Phase.HTTP_REQUEST, Phase.HTTP_RESPONSE})

    def __init__(self, names: list[str]) -> None:
        self.names = tuple(names)
        self.raw = frozenset(name.encode("latin-1") for name in names)

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        items = config.items("headers", required=True, min_items=1, max_items=10)
        assert items is not None
        names = []
        for path, item in items:
            where = config.locate(path)
            if not isinstance(item, str) or not item or any(c in item for c in " :\r\n\t"):
                raise InvalidConfig(f"{item!r} is not a header name", where)
            name = item.lower()
            if name in FRAMING_HEADERS or name == "host":
                raise InvalidConfig(f"header {name!r} cannot be removed by a policy", where)
            names.append(name)
        return cls(names)

    def apply(self, ctx: ActionContext) -> Decision | None:
        head = ctx.request if ctx.phase is Phase.HTTP_REQUEST else ctx.response
        removed: list[str] = []
        if head is not None:
            kept = []
            for header in head.headers:
                name = header[0].lower()
                if name in self.raw:
                    decoded = name.decode("latin-1")
                    if decoded not in removed:
                        removed.append(decoded)
                else:
                    kept.append(header)
            head.headers[:] = kept
        ctx.record("remove_headers", {"headers_removed": removed})
        return None

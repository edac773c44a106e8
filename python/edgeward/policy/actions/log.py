"""`log`: add an event with interpolated metadata to the event stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from edgeward.document import describe
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)
from edgeward.policy.values import Evaluator, compile_value


class Log(Action):
    type = "log"
    phases = frozenset(Phase)

    def __init__(self, metadata: Evaluator) -> None:
        self.metadata = metadata

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        raw = config.value("metadata")
        if raw is None:
            config.missing("metadata")
        if not isinstance(raw, Mapping) or not raw:
            config.fail("metadata", f"metadata must be a non-empty mapping, not {describe(raw)}")
        return cls(compile_value(config, (*config.path, "metadata"), raw))

    def apply(self, ctx: ActionContext) -> Decision | None:
        self.tell(ctx, self.metadata(ctx))
        return None

    def tell(self, ctx: ActionContext, metadata: dict[str, Any]) -> None:
        """Record and emit the event of `metadata`: evaluated here, or by
        the native phase runner (`native_phase.tell_logged`)."""
        ctx.record("log", {"metadata": metadata})
        ctx.emit(self.type, "log", "log action", metadata=metadata)
